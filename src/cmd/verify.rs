//! `flipchip verify`.

/// Arguments of `flipchip verify`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `flipchip verify`.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("flipchip verify is not implemented yet")
}
