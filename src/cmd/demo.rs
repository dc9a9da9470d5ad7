//! `flipchip demo`: the main job on the embedded digits.

use std::path::PathBuf;

/// Train on the embedded 8x8 digits, evaluate, and run the later stages as they are available.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the demo's files.
    #[arg(long, default_value = "build/demo")]
    pub out: PathBuf,
}

/// Runs `flipchip demo`.
pub fn run(a: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out).map_err(|e| {
        anyhow::anyhow!("{}: cannot create the demo directory: {e}", a.out.display())
    })?;
    let model = a.out.join("digits.fcm");
    eprintln!("== 1. train: flip optimizer on the embedded 8x8 digits");
    super::train::run(super::train::Args {
        out: model.clone(),
        ..Default::default()
    })?;
    eprintln!("== 2. evaluate with the software reference");
    super::eval::run(super::eval::Args {
        model: model.clone(),
        data: None,
        json: false,
        repeat: 1,
    })?;
    let build = a.out.join("accelerator");
    eprintln!("== 3. compile to a streaming XNOR-popcount accelerator");
    super::compile::run(super::compile::Args {
        model: model.clone(),
        out: build.clone(),
        fold: "auto".into(),
        target_cycles: None,
        device: None,
        json: false,
    })?;
    eprintln!("== 4. run the test set through the cycle-accurate simulator");
    super::sim::run(super::sim::Args {
        model,
        build: build.clone(),
        data: None,
        frames: None,
        vcd: Some(a.out.join("accelerator.vcd")),
        seed: 0,
        bubbles: 0,
        stalls: 0,
        per_frame: false,
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
