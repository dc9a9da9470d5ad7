//! `flipchip asic`'s flow (synthesis, timing, gate-level simulation, power, layout) as one
//! unit of work, so that `--executor slurm` runs it as a cluster job: the compiled design and
//! the stimulus go to the unit's directory, the unit runs `asic::run` there and leaves
//! asic.json's content as its result.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tools::executor::Unit;

use super::executor_args::{run_flow_unit, ExecutorArgs};
use super::unit::field;

/// The unit kind in unit.json.
pub const KIND: &str = "asic";

/// Runs the flow on the design compiled into `dir` through the executor `exec` asks for.
/// `inputs_key` says what the design was compiled from: a changed key makes an earlier result
/// in the same directory stale.
pub fn run(
    opts: &asic::Options,
    inputs_key: &str,
    dir: &Path,
    workdir: &Path,
    exec: &ExecutorArgs,
) -> anyhow::Result<serde_json::Value> {
    let spec = json!({
        "kind": KIND,
        "tech": opts.tech,
        "clock_mhz": opts.clock_mhz,
        "utilisation": opts.utilisation,
        "layout": opts.layout,
        "timeout_seconds": opts.timeout.map(|d| d.as_secs_f64()),
        "gate_sim": opts.gate_sim.map(|s| s.name()),
        "inputs_key": inputs_key,
    });
    let env = tools::timeout_from_env()?;
    let per_tool = |d: Duration| opts.timeout.unwrap_or(env.map_or(d, |e| e.max(d)));
    // Synthesis, and with layout place and route, each at its limit, and a margin.
    let mut limit = per_tool(tools::limits::SYNTH)
        + per_tool(tools::limits::SIMULATE)
        + Duration::from_secs(600);
    if opts.layout {
        limit += per_tool(tools::limits::PNR);
    }
    run_flow_unit(
        exec,
        workdir,
        dir,
        &spec,
        format!("asic flow for {}", opts.tech),
        limit,
        "asic",
    )
}

/// Runs one asic unit in `dir` (see `flipchip unit`).
pub fn run_unit(dir: &Path, spec: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let file = dir.join(Unit::SPEC);
    let opts = asic::Options {
        tech: field(spec, "tech", &file)?
            .as_str()
            .unwrap_or_default()
            .to_string(),
        clock_mhz: field(spec, "clock_mhz", &file)?.as_f64().unwrap_or(100.0),
        utilisation: field(spec, "utilisation", &file)?.as_f64().unwrap_or(0.7),
        layout: spec["layout"].as_bool().unwrap_or(false),
        timeout: spec["timeout_seconds"]
            .as_f64()
            .map(Duration::from_secs_f64),
        gate_sim: spec["gate_sim"]
            .as_str()
            .and_then(asic::gate::Simulator::from_name),
    };
    asic::run(dir, &opts, &mut |line| eprintln!("{line}"))
        .with_context(|| format!("the ASIC flow in {}", dir.display()))
}
