//! `flipchip export`: a model file as a QONNX graph.

use std::path::PathBuf;

use anyhow::Context;

/// Write a model as a QONNX graph (standard ops + MultiThreshold in the QONNX domain).
#[derive(clap::Args)]
pub struct Args {
    /// The model file.
    pub model: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    pub qonnx: PathBuf,
}

/// Runs `flipchip export`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let model = flip::model::format::load(&a.model)?;
    let bytes =
        qonnx::export::to_bytes(&model).with_context(|| format!("{}", a.model.display()))?;
    std::fs::write(&a.qonnx, bytes).with_context(|| format!("writing {}", a.qonnx.display()))?;
    eprintln!(
        "{}: {} -> {}",
        a.model.display(),
        model.arch(),
        a.qonnx.display()
    );
    Ok(())
}
