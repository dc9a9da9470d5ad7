//! `flipchip quantize`.

/// Arguments of `flipchip quantize`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `flipchip quantize`.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("flipchip quantize is not implemented yet")
}
