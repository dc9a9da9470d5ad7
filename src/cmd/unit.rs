//! `flipchip unit DIR` (hidden): runs one unit of work of a heavy step from `DIR/unit.json`,
//! on this machine or on a cluster node, and leaves its result in `DIR/result.json`. The
//! commands that run heavy steps (`dse --synth`, `build`) write these directories and run this
//! through their executor (`--executor local|slurm`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tools::executor::Unit;

/// Run one unit of work (used by `--executor`; not for people).
#[derive(clap::Args)]
pub struct Args {
    /// The unit's directory, holding unit.json.
    pub dir: PathBuf,
}

/// Runs `flipchip unit`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let spec_path = a.dir.join(Unit::SPEC);
    let text = std::fs::read_to_string(&spec_path)
        .with_context(|| format!("reading {}", spec_path.display()))?;
    let spec: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", spec_path.display()))?;
    let result = match spec["kind"].as_str() {
        Some(super::dse_synth::KIND) => super::dse_synth::run_unit(&a.dir, &spec),
        Some(super::build_unit::KIND) => super::build_unit::run_unit(&a.dir, &spec),
        Some(super::regress::case::KIND) => super::regress::case::run_unit(&a.dir, &spec),
        Some(super::asic_unit::KIND) => super::asic_unit::run_unit(&a.dir, &spec),
        other => bail!(
            "{}: unknown unit kind {other:?} (expected {:?}, {:?}, {:?} or {:?})",
            spec_path.display(),
            super::dse_synth::KIND,
            super::build_unit::KIND,
            super::regress::case::KIND,
            super::asic_unit::KIND
        ),
    }
    .with_context(|| format!("unit {}", a.dir.display()))?;
    write_result(&a.dir, &result)
}

/// Writes `DIR/result.json` atomically: it is the unit's "finished" mark.
fn write_result(dir: &Path, v: &serde_json::Value) -> anyhow::Result<()> {
    let path = dir.join(Unit::RESULT);
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    tools::executor::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// `DIR/result.json` of a finished unit.
pub fn read_result(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let path = dir.join(Unit::RESULT);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

/// A field of a unit's spec or result, or an error naming it.
pub fn field<'a>(
    v: &'a serde_json::Value,
    key: &str,
    file: &Path,
) -> anyhow::Result<&'a serde_json::Value> {
    match v.get(key) {
        Some(x) if !x.is_null() => Ok(x),
        _ => bail!("{}: no {key:?}", file.display()),
    }
}
