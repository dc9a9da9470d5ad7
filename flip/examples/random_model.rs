//! Writes a random binary model of any architecture, for benchmarks and hardware experiments
//! before a trained model exists.
//!
//! `cargo run --release -p flip --example random_model -- ARCH WIDTH HEIGHT ENCODING OUT.fcm [SEED]`
//! e.g. `-- c32-c32-p-c64-c64-p-256-10 28 28 bitplanes:4 /tmp/cnn.fcm` (8-bit grey pixels).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, width, height, encoding, out, rest @ ..] = &args[..] else {
        return Err("usage: random_model ARCH WIDTH HEIGHT ENCODING OUT.fcm [SEED]".into());
    };
    let seed: u64 = rest.first().map_or(Ok(1), |s| s.parse())?;
    let input = flip::model::InputSpec {
        width: width.parse()?,
        height: height.parse()?,
        channels: 1,
        pixel_bits: 8,
        encoding: encoding.parse()?,
    };
    let specs = flip::model::arch::parse(arch, input.pixels())?;
    let classes = match specs.last() {
        Some(flip::model::arch::LayerSpec::Dense(c)) => *c,
        _ => return Err(format!("{arch}: the last layer must be dense").into()),
    };
    flip::model::arch::shapes(&specs, &input, classes)?;
    let model = flip::model::random::binary(seed, input, &specs, classes);
    flip::model::format::save(&model, out.as_ref())?;
    println!("{}: {} ({})", out, model.arch(), model.input.encoding);
    Ok(())
}
