//! A Keras 1 `Merge` of whole sub-models (`Sequential([Merge([model_a, model_b], mode=...), ...])`):
//! each branch runs on its own share of the model inputs, and the merge layer joins their outputs.

use crate::error::{Error, Result};
use crate::layers::{Layer, Masked};
use crate::model::Model;
use strata_tensor::Tensor;

/// The branches of a Keras 1 `Merge` layer and the merge they feed.
pub struct BranchMerge {
    branches: Vec<Model>,
    merge: Box<dyn Layer>,
}

impl BranchMerge {
    /// Branch models in config order and the merge layer built from the `Merge` config.
    pub fn new(branches: Vec<Model>, merge: Box<dyn Layer>) -> BranchMerge {
        BranchMerge { branches, merge }
    }

    /// How many model inputs the branches take together.
    pub fn input_count(&self) -> usize {
        self.branches.iter().map(Model::input_count).sum()
    }
}

impl Layer for BranchMerge {
    fn name(&self) -> &str {
        self.merge.name()
    }
    fn class_name(&self) -> &str {
        "Merge"
    }
    fn forward(&self, inputs: &[Tensor], training: bool) -> Result<Vec<Tensor>> {
        Ok(self.forward_masked(inputs, &[], training)?.0)
    }
    fn forward_masked(&self, inputs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> Result<Masked> {
        if inputs.len() != self.input_count() {
            return Err(Error::Arity {
                layer: self.merge.name().to_string(),
                class: "Merge".into(),
                expected: format!("{} (one per input of its branch models)", self.input_count()),
                got: inputs.len(),
            });
        }
        let mut outs = Vec::with_capacity(self.branches.len());
        let mut out_masks = Vec::with_capacity(self.branches.len());
        let mut at = 0usize;
        for b in &self.branches {
            let n = b.input_count();
            let ins = inputs.get(at..at + n).unwrap_or(&[]);
            let ms: Vec<Option<Tensor>> = (at..at + n).map(|i| masks.get(i).cloned().flatten()).collect();
            at += n;
            let (o, m) = b.forward_masked(ins, &ms, training)?;
            outs.extend(o);
            out_masks.extend(m);
        }
        self.merge.forward_masked(&outs, &out_masks, training)
    }
    fn take_state_updates(&self) -> Vec<crate::layers::StateUpdate> {
        // the branches' layers are bound under the merge's path
        let mut out: Vec<_> = self.branches.iter().flat_map(Model::take_state_updates).collect();
        out.extend(self.merge.take_state_updates());
        out
    }
}
