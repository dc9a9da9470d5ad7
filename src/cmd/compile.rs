//! `flipchip compile`.

/// Arguments of `flipchip compile`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `flipchip compile`.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("flipchip compile is not implemented yet")
}
