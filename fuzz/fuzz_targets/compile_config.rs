//! Bytes -> `Json::parse` -> a compile config: the optimizer, loss and metric deserializers of
//! strata-train, `Model::compile_from_config` on a small model (what `compile_from_file` does with
//! a file's `compile_config` / `training_config`), the legacy `training_config` derivation, and one
//! evaluation with the compiled loss and metrics. None of it may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_format::json::{Json, JsonLimits};
use strata_model::layers::Dense;
use strata_model::{Registry, Sequential};
use strata_tensor::Tensor;

fuzz_target!(|data: &[u8]| {
    let Ok(cc) = Json::parse(data, &JsonLimits::default()) else {
        return;
    };
    if let Some(o) = cc.get("optimizer") {
        let _ = strata_train::optimizers::Optimizer::deserialize(o);
    }
    if let Some(l) = cc.get("loss") {
        let _ = strata_train::losses::Loss::deserialize(l);
    }
    if let Some(Json::Array(ms)) = cc.get("metrics") {
        for m in ms {
            let _ = strata_train::metrics::deserialize(m);
        }
    }
    let _ = strata_format::save::training_config_from_compile(&cc);
    let Ok(mut model) = Sequential::new("f").input(&[3]).add(Dense::new(2)).build(&Registry::new()) else {
        return;
    };
    if model.compile_from_config(&cc).is_ok() {
        let (Ok(x), Ok(y)) = (Tensor::zeros(&[2, 3]), Tensor::zeros(&[2, 2])) else { return };
        let _ = model.evaluate(&x, &y, 2);
        let _ = model.train_on_batch(&[x], &y, None);
    }
});
