//! `flipchip verify`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::json;
use sim::stimulus::Stimulus;

/// Which RTL simulator `verify` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RtlChoice {
    /// Verilator.
    Verilator,
    /// Icarus Verilog.
    Icarus,
    /// Only reference against simulator.
    None,
}

/// Check the software reference, the cycle-accurate simulator and the RTL against each other.
#[derive(clap::Args)]
pub struct Args {
    /// Build directory written by `flipchip compile` (holds model.fcm).
    #[arg(long)]
    pub build: PathBuf,
    /// Directory with IDX files; the embedded digits without it (random pixels if the model
    /// does not read 8x8 digits).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Frames to stream.
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    /// RTL simulator to compare the simulator with.
    #[arg(long, value_enum, default_value_t = RtlChoice::Verilator)]
    pub rtl: RtlChoice,
    /// Seed of the bubble and stall pattern.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Percent of cycles the source withholds a beat.
    #[arg(long, default_value_t = 10)]
    pub bubbles: u32,
    /// Percent of cycles the sink is not ready.
    #[arg(long, default_value_t = 10)]
    pub stalls: u32,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `flipchip verify`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let model_path = a.build.join("model.fcm");
    let model = super::compile::load_model(&model_path)?;
    let design = super::sim::load_design(&model, &a.build)?;
    let pixels = model.input.pixels();
    let images = match super::sim::frames(&model, a.data.as_deref(), Some(a.frames)) {
        Ok((_, images, _)) => images,
        Err(e) if a.data.is_none() => {
            eprintln!("{e:#}; streaming random pixels instead");
            let mut rng = compiler::random::Rng(a.seed);
            compiler::random::random_pixels(&mut rng, &model, a.frames)
        }
        Err(e) => return Err(e),
    };
    let frames = images.len() / pixels;
    let stim = Stimulus {
        seed: a.seed,
        bubble_pct: a.bubbles.min(100),
        stall_pct: a.stalls.min(100),
    };
    let max_cycles =
        (frames as u64 + 2) * (design.latency_cycles() + design.cycles_per_frame()) * 100 + 1000;
    let ours = sim::run(&design, &images, stim, max_cycles, None).context("simulating")?;
    let mut mismatches = 0usize;
    for (f, out) in ours.trace.outputs.iter().enumerate() {
        let want: Vec<i64> =
            flip::reference::binary_scores(&model, &images[f * pixels..][..pixels])
                .into_iter()
                .map(i64::from)
                .collect();
        let class = flip::reference::argmax(&want) as u32;
        if out.scores != want || out.class != class {
            if mismatches == 0 {
                eprintln!(
                    "frame {f}: reference class {class} scores {want:?}, simulator class {} scores {:?}",
                    out.class, out.scores
                );
            }
            mismatches += 1;
        }
    }
    eprintln!(
        "reference vs simulator: {frames} frames, {mismatches} mismatches ({:.3e} simulated cycles/s)",
        ours.cycles_per_second()
    );
    let mut rtl_cps = None;
    let mut divergence = None;
    let mut rtl_mismatches = None;
    let rtl = match a.rtl {
        RtlChoice::Verilator => Some(testbenches::Rtl::Verilator),
        RtlChoice::Icarus => Some(testbenches::Rtl::Icarus),
        RtlChoice::None => None,
    };
    if let Some(rtl) = rtl {
        let ports = sim::ports(&design);
        // The bytes `s_data` takes: the pixels, or with packed input their bits.
        let stream = design.input().stream_bytes(&images);
        // A design that loses frames never finishes: compare what it did until it gave up.
        let trace = match testbenches::run(&a.build, &ports, rtl, &stream, stim, max_cycles) {
            Ok(run) => {
                rtl_cps = Some(run.cycles_per_second);
                run.trace
            }
            Err(testbenches::HarnessError::Timeout {
                trace,
                outputs,
                expected,
                ..
            }) => {
                eprintln!("{rtl}: only {outputs} of {expected} results before the cycle limit");
                *trace
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("running {} on {}", rtl.name(), a.build.display()))
            }
        };
        let wrong = ours.trace.output_mismatches(&trace);
        rtl_mismatches = Some(wrong);
        if wrong > 0 {
            eprintln!(
                "simulator vs {rtl}: {wrong} of {} output beats differ",
                ours.trace.outputs.len().max(trace.outputs.len())
            );
        }
        match ours.trace.first_divergence(&trace, &ports) {
            Some(d) => {
                eprintln!(
                    "simulator vs {rtl}: first divergence at cycle {} in {}: {}",
                    d.cycle,
                    d.stages.join(", "),
                    d.detail
                );
                divergence = Some(json!({"cycle": d.cycle, "stages": d.stages, "detail": d.detail}));
            }
            None => eprintln!(
                "simulator vs {rtl}: identical traces over {} cycles ({:.3e} RTL cycles/s, simulator {:.1}x faster)",
                ours.trace.cycles,
                rtl_cps.unwrap_or(0.0),
                ours.cycles_per_second() / rtl_cps.unwrap_or(0.0).max(1e-9)
            ),
        }
    }
    if a.json {
        super::print_json(&json!({
            "build": a.build.display().to_string(),
            "frames": frames,
            "mismatches": mismatches,
            "rtl": rtl.map(|r| r.name()),
            "rtl_mismatches": rtl_mismatches,
            "divergence": divergence,
            "cycles": ours.trace.cycles,
            "rtl_cycles_per_second": rtl_cps,
            "sim_cycles_per_second": ours.cycles_per_second(),
        }));
    }
    if mismatches > 0 || divergence.is_some() {
        bail!("verification failed");
    }
    Ok(())
}
