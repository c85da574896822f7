//! Bytes -> `Json::parse` -> `ModelConfig::parse` -> `to_json` and `check_graph`. Also checks that
//! what the JSON writer prints parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_format::config::ModelConfig;
use strata_format::json::{Json, JsonLimits};

fuzz_target!(|data: &[u8]| {
    let limits = JsonLimits::default();
    let Ok(json) = Json::parse(data, &limits) else {
        return;
    };
    let text = json.to_string_python();
    let again = Json::parse(text.as_bytes(), &limits)
        .unwrap_or_else(|e| panic!("the writer's output does not parse: {e}\n{text}"));
    assert_eq!(again, json, "the writer's output parses to another value");
    std::hint::black_box(json.to_string_pretty());
    let Ok(config) = ModelConfig::parse(&json) else {
        return;
    };
    let back = config.to_json();
    std::hint::black_box(back.to_string_python());
    let _ = config.check_graph();
    let _ = config.model_layers();
    let _ = config.iter_layers_recursive().count();
});
