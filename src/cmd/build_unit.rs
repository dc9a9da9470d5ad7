//! `flipchip build`'s bitstream flow (wrapper, synthesis, place and route, packing) as one unit
//! of work, so that `--executor slurm` runs it as a cluster job: the compiled design goes to
//! the unit's directory, the unit runs `boards::flow::build` there and leaves build.json's
//! content as its result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tools::executor::Unit;

use super::executor_args::{run_flow_unit, ExecutorArgs};
use super::unit::field;

/// The unit kind in unit.json.
pub const KIND: &str = "build";

/// What the flow needs besides the compiled design.
pub struct Job<'a> {
    /// `--board`: a shipped board's name or a folder (made absolute: the unit may run
    /// elsewhere).
    pub board: &'a str,
    /// The flow's options.
    pub opts: &'a boards::flow::Options,
    /// What the design was compiled from (model, folding, options): a changed key makes an
    /// earlier result in the same directory stale.
    pub inputs_key: String,
}

/// Runs the flow on the design compiled into `dir` through the executor `exec` asks for; the
/// flow's report (build.json without the compile step).
pub fn build(
    job: &Job,
    dir: &Path,
    workdir: &Path,
    exec: &ExecutorArgs,
) -> anyhow::Result<serde_json::Value> {
    let board = match Path::new(job.board) {
        p if p.join("board.toml").is_file() => p
            .canonicalize()
            .with_context(|| format!("resolving {}", p.display()))?
            .display()
            .to_string(),
        _ => job.board.to_string(),
    };
    let o = job.opts;
    let spec = json!({
        "kind": KIND,
        "board": board,
        "freq_mhz": o.freq_mhz,
        "seeds": o.seeds,
        "nextpnr_args": o.nextpnr_args,
        "pnr_stall_seconds": o.pnr_stall.map(|d| d.as_secs_f64()),
        "timeout_seconds": o.timeout.map(|d| d.as_secs_f64()),
        "inputs_key": job.inputs_key,
    });
    // Every tool at its limit, and a margin: the unit's own limits stop a hung tool first.
    let env = tools::timeout_from_env()?;
    let per_tool = |d: Duration| o.timeout.unwrap_or(env.map_or(d, |e| e.max(d)));
    let limit = per_tool(tools::limits::SYNTH)
        + per_tool(tools::limits::PNR)
        + per_tool(tools::limits::PACK)
        + Duration::from_secs(600);
    run_flow_unit(
        exec,
        workdir,
        dir,
        &spec,
        format!("bitstream for {board}"),
        limit,
        "bitstream",
    )
}

/// Runs one flow unit in `dir` (see `flipchip unit`).
pub fn run_unit(dir: &Path, spec: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let file = dir.join(Unit::SPEC);
    let board = boards::Board::load(field(spec, "board", &file)?.as_str().unwrap_or_default())?;
    let secs = |k: &str| spec[k].as_f64().map(Duration::from_secs_f64);
    let opts = boards::flow::Options {
        freq_mhz: spec["freq_mhz"].as_f64(),
        seeds: spec["seeds"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default(),
        nextpnr_args: spec["nextpnr_args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        pnr_stall: secs("pnr_stall_seconds"),
        timeout: secs("timeout_seconds"),
    };
    boards::flow::build(&board, dir, &opts, &mut |line| eprintln!("{line}"))
        .with_context(|| format!("building for {} in {}", board.name, dir.display()))
}

/// Copies every file under `from` to `to` (the unit's directory to `--out`, when the work
/// directory is elsewhere).
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let entries = std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("reading {}", from.display()))?;
        let (src, dst): (PathBuf, PathBuf) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// Points the paths in `v` (the bitstream, the logs) that lie under `from` at the same files
/// under `to`, where [`copy_dir`] put them.
pub fn rebase_paths(v: &mut serde_json::Value, from: &Path, to: &Path) {
    match v {
        serde_json::Value::String(s) => {
            if let Ok(rest) = Path::new(s.as_str()).strip_prefix(from) {
                *s = to.join(rest).display().to_string();
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| rebase_paths(x, from, to)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| rebase_paths(x, from, to)),
        _ => {}
    }
}
