//! Names Keras derives from class names.
//!
//! Keras 3 addresses weights by *attribute and container names*, not layer names: inside a
//! list of layers each child is `to_snake_case(ClassName)`, deduplicated as `name`, `name_1`,
//! `name_2` in container order (`_save_container_state` in `keras/src/saving/saving_lib.py`).
//! [`to_snake_case`] reproduces `keras/src/utils/naming.py` exactly, including the
//! non-overlapping left-to-right behaviour of its three `re.sub` passes.

use std::collections::HashMap;

/// Keras's `to_snake_case`: drop non-word characters, then `(.)([A-Z][a-z]+)` -> `\1_\2`,
/// then `([a-z])([A-Z])` -> `\1_\2`, then lowercase.
pub fn to_snake_case(name: &str) -> String {
    // re.sub(r"\W+", "", name): Python's \w is Unicode letters, digits and underscore.
    let s: Vec<char> = name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    // re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    let mut out: Vec<char> = Vec::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        if i + 2 < s.len() && s[i] != '\n' && s[i + 1].is_ascii_uppercase() && s[i + 2].is_ascii_lowercase() {
            let mut j = i + 2;
            while j < s.len() && s[j].is_ascii_lowercase() {
                j += 1;
            }
            out.push(s[i]);
            out.push('_');
            out.extend_from_slice(&s[i + 1..j]);
            i = j;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    // re.sub("([a-z])([A-Z])", r"\1_\2", name)
    let s = out;
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && s[i].is_ascii_lowercase() && s[i + 1].is_ascii_uppercase() {
            out.push(s[i]);
            out.push('_');
            out.push(s[i + 1]);
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out.to_lowercase()
}

/// Names children of one Keras container (a list of layers) the way Keras 3's saver does.
#[derive(Debug, Default, Clone)]
pub struct ContainerNamer {
    used: HashMap<String, usize>,
    step: usize,
}

impl ContainerNamer {
    /// A fresh namer for one container.
    pub fn new() -> Self {
        ContainerNamer { used: HashMap::new(), step: 1 }
    }

    /// The namer of tf.keras 2.13-2.15 `.keras` files, whose duplicates count in twos
    /// (`dense`, `dense_2`, `dense_4`), as observed in files written by TF 2.13.1.
    pub fn tf213() -> Self {
        ContainerNamer { used: HashMap::new(), step: 2 }
    }

    /// The name of the next child whose Python class is `class_name`.
    pub fn next(&mut self, class_name: &str) -> String {
        let base = to_snake_case(class_name);
        match self.used.get_mut(&base) {
            Some(n) => {
                *n += self.step.max(1);
                format!("{base}_{n}")
            }
            None => {
                self.used.insert(base.clone(), 0);
                base
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_keras_rules() {
        // Each expectation follows from applying Keras's three regex passes by hand to the input.
        for (input, want) in [
            ("Dense", "dense"),
            ("BatchNormalization", "batch_normalization"),
            ("Conv2DTranspose", "conv2d_transpose"),
            ("MultiHeadAttention", "multi_head_attention"),
            ("LSTM", "lstm"),
            ("CustomDense", "custom_dense"),
            ("InputLayer", "input_layer"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("my-Layer!", "my_layer"),
            ("", ""),
        ] {
            assert_eq!(to_snake_case(input), want, "input {input:?}");
        }
    }

    #[test]
    fn tf213_names_count_in_twos() {
        let mut n = ContainerNamer::tf213();
        assert_eq!(n.next("Dense"), "dense");
        assert_eq!(n.next("Scale"), "scale");
        assert_eq!(n.next("Dense"), "dense_2");
        assert_eq!(n.next("Dense"), "dense_4");
    }

    #[test]
    fn container_names_deduplicate_in_order() {
        let mut n = ContainerNamer::new();
        assert_eq!(n.next("Dense"), "dense");
        assert_eq!(n.next("Dense"), "dense_1");
        assert_eq!(n.next("Conv2D"), "conv2d");
        assert_eq!(n.next("Dense"), "dense_2");
    }
}
