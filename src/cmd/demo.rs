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
    std::fs::create_dir_all(&a.out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create the demo directory: {e}", a.out.display()))?;
    let model = a.out.join("digits.fcm");
    eprintln!("== 1. train: flip optimizer on the embedded 8x8 digits");
    super::train::run(super::train::Args {
        data: None,
        arch: None,
        optimizer: "flip".into(),
        epochs: None,
        seed: 1,
        out: model.clone(),
        resume: None,
        encoding: None,
        batch: None,
        patience: 0,
        min_delta: 0.001,
        set: Vec::new(),
        threads: None,
        json: false,
        quiet: false,
    })?;
    eprintln!("== 2. evaluate with the software reference");
    super::eval::run(super::eval::Args { model, data: None, json: false })?;
    Ok(())
}
