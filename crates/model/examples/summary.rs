//! `cargo run -p strata-model --example summary -- MODEL`: prints `Model::summary()`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("give a model file")?;
    let model = strata_model::Model::load(&path, &strata_model::Registry::new())?;
    print!("{}", model.summary());
    Ok(())
}
