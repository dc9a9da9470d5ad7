//! `flipchip sim`.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use compiler::ir::Design;
use compiler::passes::folding::FoldSpec;
use serde_json::json;
use sim::stimulus::Stimulus;

/// Run a compiled design in the cycle-accurate simulator on a dataset's test images.
#[derive(clap::Args)]
pub struct Args {
    /// The model file the design was compiled from.
    pub model: PathBuf,
    /// Build directory written by `flipchip compile`.
    #[arg(long)]
    pub build: PathBuf,
    /// Directory with IDX files; the embedded digits without it.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Test images to stream (default: all).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Write a VCD of the top-level streams and every stage's handshake.
    #[arg(long)]
    pub vcd: Option<PathBuf>,
    /// Seed of the bubble and stall pattern.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Percent of cycles the source withholds a beat.
    #[arg(long, default_value_t = 0)]
    pub bubbles: u32,
    /// Percent of cycles the sink is not ready.
    #[arg(long, default_value_t = 0)]
    pub stalls: u32,
    /// Print every frame's result (default: the first 10).
    #[arg(long)]
    pub per_frame: bool,
    /// Replay a counterexample of `flipchip prove` (its VCD): drive the simulator with its
    /// bubbles, back-pressure and input beats, and show the first cycle where the design parts
    /// from the simulator.
    #[arg(long, value_name = "CEX.vcd")]
    pub replay: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

/// Rebuilds the design of `build` from `model` and the build's `fold.json`, and checks that it
/// is the design the build's `ports.json` describes.
pub fn load_design(model: &flip::model::Model, build: &Path) -> anyhow::Result<Design> {
    let fold_path = build.join("fold.json");
    let fold = compiler::read_fold_file(&fold_path).with_context(|| {
        format!(
            "{} is not a build directory of flipchip compile",
            build.display()
        )
    })?;
    let design = compiler::compile(model, &FoldSpec::Manual(fold))
        .with_context(|| format!("rebuilding the design of {}", build.display()))?;
    let ports_path = build.join("ports.json");
    let text = std::fs::read_to_string(&ports_path)
        .with_context(|| format!("reading {}", ports_path.display()))?;
    let ports: sim::trace::Ports =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", ports_path.display()))?;
    if ports != sim::ports(&design) {
        bail!(
            "{} does not match this model; was the build compiled from another model?",
            ports_path.display()
        );
    }
    Ok(design)
}

/// Frames to stream: the first `frames` test images and their labels.
pub fn frames(
    model: &flip::model::Model,
    data: Option<&Path>,
    frames: Option<usize>,
) -> anyhow::Result<(String, Vec<u8>, Vec<u8>)> {
    let d = super::load_data(data)?;
    if d.pixels() != model.input.pixels() {
        bail!(
            "the model reads {} pixels per image but {} has {}",
            model.input.pixels(),
            d.name,
            d.pixels()
        );
    }
    let n = frames.unwrap_or(d.test.len()).min(d.test.len());
    let p = d.pixels();
    Ok((
        d.name,
        d.test.images[..n * p].to_vec(),
        d.test.labels[..n].to_vec(),
    ))
}

/// Runs `flipchip sim`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let model = super::compile::load_model(&a.model)?;
    let design = load_design(&model, &a.build)?;
    if let Some(cex) = &a.replay {
        return super::replay::run(&design, cex, a.json);
    }
    let (dataset, images, labels) = frames(&model, a.data.as_deref(), a.frames)?;
    let stim = Stimulus {
        seed: a.seed,
        bubble_pct: a.bubbles.min(100),
        stall_pct: a.stalls.min(100),
    };
    let n = labels.len();
    let max_cycles =
        (n as u64 + 2) * (design.latency_cycles() + design.cycles_per_frame()) * 100 + 1000;
    let result = sim::run(&design, &images, stim, max_cycles, None).context("simulating")?;
    // A waveform needs every cycle, so it comes from the cycle-by-cycle loop rather than the
    // one that skips quiet stretches; its trace must be the reported run's, or the waveform
    // would show something that was not checked.
    if let Some(path) = &a.vcd {
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::new(f);
        let traced = sim::run(&design, &images, stim, max_cycles, Some(&mut w))
            .context("simulating for the waveform")?;
        let ports = sim::ports(&design);
        if let Some(d) = result.trace.first_divergence(&traced.trace, &ports) {
            bail!(
                "the waveform's run differs from the reported run at cycle {} in {}: {} \
                 (a simulator fault; {} was written anyway)",
                d.cycle,
                d.stages.join(", "),
                d.detail,
                path.display()
            );
        }
    }
    let outs = &result.trace.outputs;
    let correct = outs
        .iter()
        .zip(&labels)
        .filter(|(o, &l)| o.class == l as u32)
        .count();
    let accuracy = correct as f64 / n.max(1) as f64;
    for (i, o) in outs.iter().enumerate() {
        if !a.per_frame && i >= 10 {
            println!("... {} more frames (--per-frame prints all)", n - 10);
            break;
        }
        println!(
            "frame {i}: class {} (label {}) scores {:?} at cycle {}",
            o.class, labels[i], o.scores, o.cycle
        );
    }
    let interval = result.mean_interval();
    let latency = result.first_latency();
    eprintln!(
        "{}: {n} frames of {dataset}: accuracy {:.2}%, {} cycles, {} cycles per frame \
         (design {}), latency {} cycles (design {}), {:.3e} simulated cycles/s",
        a.build.display(),
        accuracy * 100.0,
        result.trace.cycles,
        interval.map_or("-".into(), |v| format!("{v:.1}")),
        design.cycles_per_frame(),
        latency.map_or("-".into(), |v| v.to_string()),
        design.latency_cycles(),
        result.cycles_per_second()
    );
    for s in &result.stages {
        eprintln!(
            "  {:<14} {:>8} beats out, {:>10} cycles stalled",
            s.name, s.fires, s.stalls
        );
    }
    if let Some(p) = &a.vcd {
        eprintln!(
            "wrote {} (from a cycle-by-cycle run of the same stimulus, whose trace is identical \
             to the run above)",
            p.display()
        );
    }
    if a.json {
        super::print_json(&json!({
            "build": a.build.display().to_string(),
            "dataset": dataset,
            "accuracy": accuracy,
            "frames": n,
            "cycles": result.trace.cycles,
            "cycles_per_frame": interval.unwrap_or(design.cycles_per_frame() as f64),
            "design_cycles_per_frame": design.cycles_per_frame(),
            "latency_cycles": latency,
            "design_latency_cycles": design.latency_cycles(),
            "input_waits": result.input_waits,
            "stages": result.stages,
            "sim_cycles_per_second": result.cycles_per_second(),
            "seconds": result.seconds,
        }));
    }
    Ok(())
}
