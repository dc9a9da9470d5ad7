//! One case of `flipchip regress` as a unit of work (`flipchip unit DIR`): one check of one
//! compiled design under one stimulus. A check that finds a fault is a result ("failed", with
//! the first divergence), kept like a pass; a case that cannot run (a missing tool, a crash) is
//! a failed unit, which the next run tries again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use sim::stimulus::Stimulus;
use tools::executor::Unit;

use super::suite::{Check, CycleBounds, ProveOptions, StimulusSpec};
use crate::cmd::unit::field;

/// The unit kind in unit.json.
pub const KIND: &str = "regress-case";

/// What a case unit needs; written to unit.json.
pub struct CaseSpec<'a> {
    /// `model/folding/check[/stimulus]`.
    pub name: &'a str,
    /// The compiled design's directory (absolute).
    pub build: &'a Path,
    /// The check.
    pub check: Check,
    /// The stimulus (for the cycles check: its frame count and seed only).
    pub stimulus: Option<StimulusSpec>,
    /// Bounds of the cycles check.
    pub cycles: &'a CycleBounds,
    /// Options of the prove check.
    pub prove: &'a ProveOptions,
    /// Covers the model and the compiled design: a changed design makes an earlier result
    /// stale.
    pub design_key: &'a str,
    /// Covers the flipchip binary: another build of the simulator or compiler checks anew.
    pub flipchip_key: &'a str,
}

impl CaseSpec<'_> {
    /// unit.json's text.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "kind": KIND,
            "case": self.name,
            "build": self.build.display().to_string(),
            "check": self.check.name(),
            "stimulus": self.stimulus,
            "cycles": self.cycles,
            "prove": self.prove,
            "design_key": self.design_key,
            "flipchip_key": self.flipchip_key,
        })
    }
}

/// How long one case may run on this machine: an RTL build of a large design takes minutes,
/// a proof its groups' timeouts.
pub fn limit(check: Check, prove: &ProveOptions) -> Duration {
    let groups = prove.groups.len().max(3) as u64;
    match check {
        Check::Prove => Duration::from_secs(prove.timeout * groups + 600),
        _ => Duration::from_secs(3600),
    }
}

/// What a check found.
struct Verdict {
    passed: bool,
    /// For a failure: the first divergence, in a line; for a pass: what was checked.
    message: String,
    details: serde_json::Value,
}

fn pass(message: String, details: serde_json::Value) -> Verdict {
    Verdict {
        passed: true,
        message,
        details,
    }
}

fn fail(message: String, details: serde_json::Value) -> Verdict {
    Verdict {
        passed: false,
        message,
        details,
    }
}

/// Runs one case unit in `dir` (see `flipchip unit`).
pub fn run_unit(dir: &Path, spec: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let file = dir.join(Unit::SPEC);
    let name = field(spec, "case", &file)?.as_str().unwrap_or_default();
    let build = PathBuf::from(field(spec, "build", &file)?.as_str().unwrap_or_default());
    let check_name = field(spec, "check", &file)?.as_str().unwrap_or_default();
    let check = Check::from_name(check_name)
        .with_context(|| format!("{}: unknown check {check_name:?}", file.display()))?;
    let stimulus: Option<StimulusSpec> = match spec.get("stimulus") {
        Some(v) if !v.is_null() => Some(
            serde_json::from_value(v.clone())
                .with_context(|| format!("{}: bad \"stimulus\"", file.display()))?,
        ),
        _ => None,
    };
    let cycles: CycleBounds = serde_json::from_value(spec["cycles"].clone())
        .with_context(|| format!("{}: bad \"cycles\"", file.display()))?;
    let prove: ProveOptions = serde_json::from_value(spec["prove"].clone())
        .with_context(|| format!("{}: bad \"prove\"", file.display()))?;
    eprintln!("case {name}: {} on {}", check.name(), build.display());
    let start = Instant::now();
    let v = match check {
        Check::Prove => prove_check(dir, &build, &prove)?,
        _ => {
            let model = crate::cmd::compile::load_model(&build.join("model.fcm"))?;
            let design = crate::cmd::sim::load_design(&model, &build)?;
            let st = stimulus.with_context(|| {
                format!(
                    "{}: the {check_name} check needs a stimulus",
                    file.display()
                )
            })?;
            let mut rng = compiler::random::Rng(st.seed);
            let images = compiler::random::random_pixels(&mut rng, &model, st.frames);
            let stim = Stimulus {
                seed: st.seed,
                bubble_pct: st.bubbles,
                stall_pct: st.stalls,
            };
            match check {
                Check::Reference => reference_check(&model, &design, &images, stim),
                Check::Verilator => {
                    rtl_check(&build, &design, &images, stim, testbenches::Rtl::Verilator)?
                }
                Check::Icarus => {
                    rtl_check(&build, &design, &images, stim, testbenches::Rtl::Icarus)?
                }
                Check::Cycles => cycles_check(&build, &design, &images, &cycles)?,
                Check::Prove => unreachable!("handled above"),
            }
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "case {name}: {} in {seconds:.2} s: {}",
        if v.passed { "passed" } else { "FAILED" },
        v.message
    );
    Ok(json!({
        "case": name,
        "check": check.name(),
        "status": if v.passed { "passed" } else { "failed" },
        "message": v.message,
        "details": v.details,
        "seconds": seconds,
    }))
}

/// The cycle limit of a run of `frames` frames: far beyond what a working design needs under
/// any stimulus the suite allows, so that only a lost frame reaches it.
fn max_cycles(design: &compiler::ir::Design, frames: usize) -> u64 {
    (frames as u64 + 2) * (design.latency_cycles() + design.cycles_per_frame()) * 100 + 1000
}

fn reference_check(
    model: &flip::model::Model,
    design: &compiler::ir::Design,
    images: &[u8],
    stim: Stimulus,
) -> Verdict {
    let pixels = model.input.pixels();
    let frames = images.len() / pixels;
    let run = match sim::run(design, images, stim, max_cycles(design, frames), None) {
        Ok(r) => r,
        Err(e) => return fail(format!("simulator: {e}"), json!({"frames": frames})),
    };
    let mut first = None;
    let mut mismatches = 0usize;
    for (f, out) in run.trace.outputs.iter().enumerate() {
        let want: Vec<i64> = flip::reference::binary_scores(model, &images[f * pixels..][..pixels])
            .into_iter()
            .map(i64::from)
            .collect();
        let class = flip::reference::argmax(&want) as u32;
        if out.scores != want || out.class != class {
            mismatches += 1;
            first.get_or_insert_with(|| {
                format!(
                    "frame {f} (cycle {}): reference class {class} scores {want:?}, simulator \
                     class {} scores {:?}",
                    out.cycle, out.class, out.scores
                )
            });
        }
    }
    let details = json!({"frames": frames, "mismatches": mismatches, "cycles": run.trace.cycles});
    match first {
        Some(d) => fail(
            format!("{mismatches} of {frames} frames differ; first: {d}"),
            details,
        ),
        None => pass(
            format!("{frames} frames bit-exact over {} cycles", run.trace.cycles),
            details,
        ),
    }
}

fn rtl_check(
    build: &Path,
    design: &compiler::ir::Design,
    images: &[u8],
    stim: Stimulus,
    rtl: testbenches::Rtl,
) -> anyhow::Result<Verdict> {
    let frames = images.len() / design.input().pixels;
    let limit = max_cycles(design, frames);
    let ours = match sim::run(design, images, stim, limit, None) {
        Ok(r) => r,
        Err(e) => return Ok(fail(format!("simulator: {e}"), json!({"frames": frames}))),
    };
    let ports = sim::ports(design);
    let stream = design.input().stream_bytes(images);
    let (trace, timeout) = match testbenches::run(build, &ports, rtl, &stream, stim, limit) {
        Ok(run) => {
            eprintln!(
                "{rtl}: {} cycles ({:.3e} cycles/s, testbench build {:.1} s)",
                run.trace.cycles, run.cycles_per_second, run.compile_seconds
            );
            (run.trace, None)
        }
        // A design that loses frames never finishes: compare what it did until it gave up.
        Err(testbenches::HarnessError::Timeout {
            trace,
            outputs,
            expected,
            ..
        }) => (
            *trace,
            Some(format!(
                "only {outputs} of {expected} results before the cycle limit"
            )),
        ),
        Err(e) => return Err(e).with_context(|| format!("running {rtl} on {}", build.display())),
    };
    let wrong = ours.trace.output_mismatches(&trace);
    let details = |d: Option<&sim::trace::Divergence>| {
        json!({
            "frames": frames,
            "rtl_mismatches": wrong,
            "cycles": ours.trace.cycles,
            "divergence": d.map(|d| json!({"cycle": d.cycle, "stages": d.stages, "detail": d.detail})),
        })
    };
    Ok(match ours.trace.first_divergence(&trace, &ports) {
        Some(d) => fail(
            format!(
                "simulator vs {rtl}: first divergence at cycle {} in {}: {}; {wrong} output \
                 beat(s) differ{}",
                d.cycle,
                d.stages.join(", "),
                d.detail,
                timeout.map_or(String::new(), |t| format!("; {rtl}: {t}"))
            ),
            details(Some(&d)),
        ),
        None => pass(
            format!(
                "identical traces over {} cycles, {frames} frames",
                ours.trace.cycles
            ),
            details(None),
        ),
    })
}

/// A free-running stream: the interval between the last two results and the first result's
/// latency against the design's own figures (measured by FIFO sizing where the compiler
/// measured them, the formulas otherwise) and the suite's bounds.
fn cycles_check(
    build: &Path,
    design: &compiler::ir::Design,
    images: &[u8],
    bounds: &CycleBounds,
) -> anyhow::Result<Verdict> {
    let pixels = design.input().pixels;
    // Three frames at least: the interval is taken once the pipeline is full.
    let mut images = images.to_vec();
    while images.len() / pixels < 3 {
        images.extend_from_within(..pixels);
    }
    let frames = images.len() / pixels;
    let run = match sim::run(
        design,
        &images,
        Stimulus::free(0),
        max_cycles(design, frames),
        None,
    ) {
        Ok(r) => r,
        Err(e) => return Ok(fail(format!("simulator: {e}"), json!({"frames": frames}))),
    };
    let o = &run.trace.outputs;
    let interval = o[o.len() - 1].cycle - o[o.len() - 2].cycle;
    let latency = run.first_latency().unwrap_or(0);
    let report_path = build.join("report.json");
    let measured = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|r| r["measured"].clone())
        .filter(|m| m.is_object());
    let (design_interval, design_latency, source) = match &measured {
        Some(m) => (
            m["cycles_per_frame"]
                .as_u64()
                .unwrap_or(design.cycles_per_frame()),
            m["latency_cycles"]
                .as_u64()
                .unwrap_or(design.latency_cycles()),
            "as measured at compile time",
        ),
        None => (
            design.cycles_per_frame(),
            design.latency_cycles(),
            "the design's",
        ),
    };
    let mut problems = Vec::new();
    if interval > design_interval {
        problems.push(format!(
            "{interval} cycles per frame, more than {source} {design_interval}"
        ));
    }
    if latency > design_latency {
        problems.push(format!(
            "latency {latency} cycles, more than {source} {design_latency}"
        ));
    }
    if let Some(m) = bounds.max_cycles_per_frame.filter(|&m| interval > m) {
        problems.push(format!(
            "{interval} cycles per frame, more than the suite's {m}"
        ));
    }
    if let Some(m) = bounds.max_latency.filter(|&m| latency > m) {
        problems.push(format!(
            "latency {latency} cycles, more than the suite's {m}"
        ));
    }
    let details = json!({
        "frames": frames,
        "cycles_per_frame": interval,
        "latency_cycles": latency,
        "design_cycles_per_frame": design_interval,
        "design_latency_cycles": design_latency,
    });
    Ok(if problems.is_empty() {
        pass(
            format!(
                "{interval} cycles per frame (bound {design_interval}), latency {latency} \
                 cycles (bound {design_latency})"
            ),
            details,
        )
    } else {
        fail(problems.join("; "), details)
    })
}

/// `flipchip prove` on the design, as its own process (its log beside the case's).
fn prove_check(dir: &Path, build: &Path, o: &ProveOptions) -> anyhow::Result<Verdict> {
    let exe = std::env::current_exe().context("finding the flipchip executable")?;
    let log = dir.join("prove.log");
    let ran = tools::Run::new("prove", &exe, &log)
        .arg("prove")
        .arg("--build")
        .arg(build)
        .args(["--json", "--depth", &o.depth.to_string()])
        .args(["--timeout", &o.timeout.to_string()])
        .args(
            o.groups
                .iter()
                .flat_map(|g| ["--group".to_string(), g.clone()]),
        )
        .timeout(limit(Check::Prove, o))
        .allow_failure()
        .run()?;
    let text = ran.text();
    for line in text.lines() {
        eprintln!("  {line}");
    }
    // The summary is prove's last line of JSON; without one, prove could not run (a missing
    // prover, a broken build): an error, not a verdict.
    let Some(v) = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["groups"].is_array())
    else {
        bail!(
            "prove gave no result; see {}:\n{}",
            log.display(),
            tools::tail(&text, 12)
        );
    };
    let groups = v["groups"].as_array().cloned().unwrap_or_default();
    let bad: Vec<String> = groups
        .iter()
        .filter(|g| g["status"] != "proven")
        .map(|g| match g["status"].as_str() {
            Some("failed") => format!(
                "{} failed: {} (counterexample {})",
                g["group"].as_str().unwrap_or("?"),
                g["assertion"].as_str().unwrap_or("an assertion"),
                g["vcd"].as_str().unwrap_or("not written")
            ),
            other => format!(
                "{} {} within {} s (depth reached {})",
                g["group"].as_str().unwrap_or("?"),
                if other == Some("timeout") {
                    "not finished"
                } else {
                    "unknown"
                },
                o.timeout,
                g["depth"].as_u64().map_or("none".into(), |d| d.to_string())
            ),
        })
        .collect();
    let names: Vec<&str> = groups.iter().filter_map(|g| g["group"].as_str()).collect();
    Ok(if bad.is_empty() && !groups.is_empty() {
        pass(format!("proven: {}", names.join(", ")), v)
    } else if groups.is_empty() {
        fail("prove checked no property group".into(), v)
    } else {
        fail(bad.join("; "), v)
    })
}
