//! `flipchip demo`: the main job on the embedded digits, for an MLP and a convolutional net.

use std::path::{Path, PathBuf};

/// Train on the embedded 8x8 digits, evaluate, and run the later stages as they are available,
/// first for the default MLP, then for a small convolutional net.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the demo's files.
    #[arg(long, default_value = "build/demo")]
    pub out: PathBuf,
}

/// The convolutional net of the demo: 3x3 convolution (16 channels), 2x2 max-pool, 3x3
/// convolution (32 channels), dense 64, 10 classes.
pub const CONV_ARCH: &str = "c16-p-c32-64-10";

/// Runs `flipchip demo`.
pub fn run(a: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out).map_err(|e| {
        anyhow::anyhow!("{}: cannot create the demo directory: {e}", a.out.display())
    })?;
    eprintln!("==== the default MLP");
    pipeline(&a.out, "digits", None)?;
    eprintln!("==== a convolutional net: {CONV_ARCH}");
    pipeline(&a.out, "digits-conv", Some(CONV_ARCH))
}

/// Train, evaluate, compile, simulate and verify one model, files named after `name`.
fn pipeline(out: &Path, name: &str, arch: Option<&str>) -> anyhow::Result<()> {
    let model = out.join(format!("{name}.fcm"));
    eprintln!("== 1. train: flip optimizer on the embedded 8x8 digits");
    super::train::run(super::train::Args {
        out: model.clone(),
        arch: arch.map(str::to_string),
        ..Default::default()
    })?;
    eprintln!("== 2. evaluate with the software reference");
    super::eval::run(super::eval::Args {
        model: model.clone(),
        data: None,
        json: false,
        repeat: 1,
        activity: None,
    })?;
    let build = out.join(format!("{name}-accelerator"));
    eprintln!("== 3. compile to a streaming XNOR-popcount accelerator");
    super::compile::run(super::compile::Args {
        model: model.clone(),
        out: build.clone(),
        fold: "auto".into(),
        target_cycles: None,
        packed_input: false,
        device: None,
        clock: None,
        json: false,
    })?;
    eprintln!("== 4. run the test set through the cycle-accurate simulator");
    super::sim::run(super::sim::Args {
        model,
        build: build.clone(),
        data: None,
        frames: None,
        vcd: Some(out.join(format!("{name}-accelerator.vcd"))),
        seed: 0,
        bubbles: 0,
        stalls: 0,
        per_frame: false,
        replay: None,
        json: false,
    })?;
    eprintln!("== 5. verify: reference, simulator and Verilator, cycle by cycle");
    match testbenches::available(testbenches::Rtl::Verilator) {
        Ok(()) => super::verify::run(super::verify::Args {
            build,
            data: None,
            frames: 100,
            rtl: super::verify::RtlChoice::Verilator,
            seed: 1,
            bubbles: 10,
            stalls: 10,
            json: false,
        })?,
        Err(e) => eprintln!("skipped: {e}"),
    }
    Ok(())
}
