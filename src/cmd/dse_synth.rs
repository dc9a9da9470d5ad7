//! `dse --synth K` as units of work: one Yosys run per picked front design, each in its own
//! directory under `WORKDIR/synth/` with the model and the candidate it synthesises, run by
//! `--executor local` (two at a time) or `--executor slurm` (one job array).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use compiler::dse::{self, Exploration};
use serde_json::json;
use tools::executor::Unit;

use super::dse::SynthResult;
use super::executor_args::{run_units, unit_of, ExecutorArgs};
use super::unit::field;

/// The unit kind in unit.json.
pub const KIND: &str = "dse-synth";

/// Synthesises candidates `ids` of `x` through the executor `exec` asks for; the results in
/// the order of `ids`.
pub fn synth_all(
    model: &flip::model::Model,
    x: &Exploration,
    ids: &[usize],
    workdir: &Path,
    exec: &ExecutorArgs,
) -> anyhow::Result<Vec<SynthResult>> {
    let mut units = Vec::new();
    for &i in ids {
        let c = &x.candidates[i];
        let dir = workdir.join("synth").join(c.fold_label().replace(' ', "_"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // The unit reads its model from its own directory: the user's path may not exist on
        // a cluster node.
        let copy = dir.join("model.fcm");
        flip::model::format::save(model, &copy)
            .with_context(|| format!("writing {}", copy.display()))?;
        let bytes = std::fs::read(&copy).with_context(|| format!("reading {}", copy.display()))?;
        let mut key = testbenches::Key::new();
        key.add(&bytes);
        let spec = json!({
            "kind": KIND,
            "device": x.device.name,
            "candidate": i,
            "padded": x.padded,
            "folding": c.fold_label(),
            "model": "model.fcm",
            "model_key": key.hex(),
        });
        units.push(unit_of(
            format!("candidate {i} ({})", c.fold_label()),
            dir,
            serde_json::to_string_pretty(&spec)?,
            // Past the Yosys run's own limit (FLIPCHIP_TOOL_TIMEOUT may raise it): that one
            // stops a hung Yosys with a better message.
            tools::timeout_from_env()?
                .unwrap_or(tools::limits::SYNTH)
                .max(tools::limits::SYNTH)
                + Duration::from_secs(600),
        )?);
    }
    let executor = exec.executor(workdir, "flipchip-dse-synth", 2)?;
    let mut results: Vec<Option<anyhow::Result<SynthResult>>> = ids.iter().map(|_| None).collect();
    run_units(&*executor, &units, "synth", |j, skipped| {
        let r = read_result(&units[j].dir).map(|mut r| {
            r.cached |= skipped;
            // A unit's key is its model and candidate, not the estimator: a result from an
            // earlier run compares Yosys with this run's estimate, not the one it recorded.
            let e = &x.candidates[ids[j]].estimate;
            (r.est_luts, r.est_brams) = (e.luts, e.brams);
            r.lut_error = (e.luts as f64 - r.yosys_luts as f64) / r.yosys_luts.max(1) as f64;
            r
        });
        let line = match &r {
            Ok(r) => format!(
                "synth candidate {} ({}): yosys {} LUTs, {} BRAMs ({}); estimate {} LUTs, {} \
                 BRAMs ({:+.1}%)",
                r.id,
                r.folding,
                r.yosys_luts,
                r.yosys_brams,
                if r.cached {
                    "earlier run".to_string()
                } else {
                    format!("{:.0} s", r.seconds)
                },
                r.est_luts,
                r.est_brams,
                100.0 * r.lut_error
            ),
            Err(e) => format!("synth {}: {e:#}", units[j].name),
        };
        results[j] = Some(r);
        Some(line)
    })?;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| anyhow::bail!("a synthesis unit gave no result")))
        .collect()
}

/// Runs one synthesis unit in `dir` (see `flipchip unit`).
pub fn run_unit(dir: &Path, spec: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let file = dir.join(Unit::SPEC);
    let device_name = field(spec, "device", &file)?.as_str().unwrap_or_default();
    let i = field(spec, "candidate", &file)?
        .as_u64()
        .with_context(|| format!("{}: \"candidate\" is not a number", file.display()))?
        as usize;
    let folding = field(spec, "folding", &file)?.as_str().unwrap_or_default();
    let model_path = dir.join(field(spec, "model", &file)?.as_str().unwrap_or_default());
    let model = super::compile::load_model(&model_path)?;
    let device = dse::device(device_name)
        .with_context(|| format!("{}: unknown device {device_name:?}", file.display()))?;
    let padded = spec.get("padded").and_then(|v| v.as_bool()) == Some(true);
    let x = if padded {
        dse::explore_padded(&model, &device)
    } else {
        dse::explore(&model, &device)
    }
    .with_context(|| format!("exploring {}", model_path.display()))?;
    // The exploration is deterministic; a different binary could still number it otherwise.
    match x.candidates.get(i) {
        Some(c) if c.fold_label() == folding => {}
        other => anyhow::bail!(
            "{}: candidate {i} should be {folding:?}, this flipchip explores {:?}; run the \
             same flipchip on the nodes as on the submitting machine",
            file.display(),
            other.map(|c| c.fold_label())
        ),
    }
    let r = super::dse::synth(&model, &x, i, dir)?;
    Ok(r.to_json())
}

/// The result of a finished synthesis unit.
fn read_result(dir: &Path) -> anyhow::Result<SynthResult> {
    let v = super::unit::read_result(dir)?;
    let file = dir.join(Unit::RESULT);
    let u = |k: &str| -> anyhow::Result<u64> {
        field(&v, k, &file)?
            .as_u64()
            .with_context(|| format!("{}: {k:?} is not a count", file.display()))
    };
    let f = |k: &str| -> anyhow::Result<f64> {
        field(&v, k, &file)?
            .as_f64()
            .with_context(|| format!("{}: {k:?} is not a number", file.display()))
    };
    Ok(SynthResult {
        id: u("id")? as usize,
        folding: field(&v, "folding", &file)?
            .as_str()
            .unwrap_or_default()
            .to_string(),
        yosys_luts: u("yosys_luts")?,
        yosys_brams: u("yosys_brams")?,
        est_luts: u("est_luts")?,
        est_brams: u("est_brams")?,
        lut_error: f("lut_error")?,
        seconds: f("seconds")?,
        cached: v["cached"].as_bool().unwrap_or(false),
        dir: dir.display().to_string(),
    })
}
