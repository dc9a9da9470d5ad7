//! `flipchip sim`.

/// Arguments of `flipchip sim`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `flipchip sim`.
pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("flipchip sim is not implemented yet")
}
