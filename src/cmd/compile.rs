//! `flipchip compile`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use compiler::blocks::Family;
use compiler::ir::InputFormat;
use compiler::passes::folding::FoldSpec;
use compiler::passes::memory::Placement;

/// Lower a binary model into a streaming accelerator: Verilog, ports.json, report.json.
#[derive(clap::Args)]
pub struct Args {
    /// The model file (.fcm).
    pub model: PathBuf,
    /// Build directory to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// `auto` (balance layers to the cycle target) or a JSON fold file
    /// `{"layers":[{"pe":..,"simd":..},..]}`.
    #[arg(long, default_value = "auto")]
    pub fold: String,
    /// Cycles per frame that `--fold auto` aims for (default: the input pixels per frame, the
    /// rate at which the one-pixel-per-cycle input can feed the design).
    #[arg(long)]
    pub target_cycles: Option<u64>,
    /// Take the input packed: one already binarised bit per pixel (pixel j of a beat in bit
    /// j, 8 pixels per byte), up to 512 per beat, for models with a one-bit encoding
    /// (`threshold:T`); the same as `"input": "packed"` in a fold file.
    #[arg(long)]
    pub packed_input: bool,
    /// Place weight memories for this device (`up5k`, ...): where the ROMs would need more
    /// block RAMs than it has, the largest go into SPRAM, loaded from flash at power-up. A fold
    /// file's `load_weights` list wins over this.
    #[arg(long)]
    pub device: Option<String>,
    /// Clock (MHz) the popcount pipelines are built for: a faster clock registers the trees
    /// every fewer adder levels. Default: 40 on iCE40, 125 on ECP5. A fold file's
    /// `stage_levels` wins over this.
    #[arg(long)]
    pub clock: Option<f64>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

/// The placement for `--device` (ROMs only without one).
pub fn placement(device: Option<&str>) -> anyhow::Result<Placement> {
    let Some(name) = device else {
        return Ok(Placement::Rom);
    };
    let Some(d) = compiler::dse::device(name) else {
        let known: Vec<String> = compiler::dse::devices()
            .into_iter()
            .map(|d| d.name)
            .collect();
        bail!("unknown device {name}; known: {}", known.join(", "));
    };
    Ok(d.placement())
}

/// Loads a model file, naming it on failure.
pub fn load_model(path: &Path) -> anyhow::Result<flip::model::Model> {
    flip::model::format::load(path).with_context(|| format!("loading model {}", path.display()))
}

/// The folding asked for by `--fold auto|FILE`, `--target-cycles` and `--packed-input` (which
/// makes a fold file's input packed too).
pub fn fold_spec(
    fold: &str,
    target_cycles: Option<u64>,
    packed_input: bool,
) -> anyhow::Result<FoldSpec> {
    let input = if packed_input {
        InputFormat::Packed
    } else {
        InputFormat::Pixels
    };
    if fold == "auto" {
        return Ok(FoldSpec::Auto {
            target_cycles,
            input,
        });
    }
    if target_cycles.is_some() {
        bail!("--target-cycles only applies to --fold auto");
    }
    let mut file = compiler::read_fold_file(Path::new(fold))?;
    if packed_input {
        file.input = input;
    }
    Ok(FoldSpec::Manual(file))
}

/// A compile result whose error, if any, names the fold file `--fold` gave (not `auto`).
pub fn in_fold_file<T>(r: anyhow::Result<T>, fold: &str) -> anyhow::Result<T> {
    if fold == "auto" {
        r
    } else {
        r.with_context(|| format!("fold file {fold}"))
    }
}

/// Compiles `model` (read from `path`) into `out`: the Verilog, reports, and a copy of the
/// model so that `sim` and `verify` find everything in the build directory.
pub fn compile_into(
    path: &Path,
    model: &flip::model::Model,
    spec: &FoldSpec,
    placement: &Placement,
    family: Family,
    clock_mhz: Option<f64>,
    out: &Path,
) -> anyhow::Result<(compiler::ir::Design, Option<sim::fifo_sizing::Sizing>)> {
    let mut design = compiler::compile_with(model, spec, placement)
        .with_context(|| format!("compiling {}", path.display()))?;
    design.family = family;
    if !matches!(spec, FoldSpec::Manual(f) if f.dual_port_tables.is_some()) {
        compiler::passes::tables::set_dual_port(
            &mut design,
            compiler::passes::tables::dual_port_for(family),
        );
    }
    pipeline(&mut design, spec, clock_mhz)?;
    let sizing = size_fifos(&mut design, spec)?;
    compiler::write_build(&design, out).with_context(|| format!("writing {}", out.display()))?;
    if let Some(s) = &sizing {
        write_report(&design, s, out)?;
    }
    let copy = out.join("model.fcm");
    // Copying a file onto itself would truncate it.
    let same = match (path.canonicalize(), copy.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    if !same {
        std::fs::copy(path, &copy)
            .with_context(|| format!("copying {} to {}", path.display(), copy.display()))?;
    }
    Ok((design, sizing))
}

/// Registers the popcount trees for `clock_mhz` (default: the family's) on `family`, unless
/// the fold file fixes `stage_levels`.
fn pipeline(
    design: &mut compiler::ir::Design,
    spec: &FoldSpec,
    clock_mhz: Option<f64>,
) -> anyhow::Result<()> {
    use compiler::passes::pipelining::{default_clock_mhz, Pipelining};
    use compiler::passes::Pass;
    if let Some(c) = clock_mhz {
        if !(c.is_finite() && c > 0.0) {
            bail!("the clock must be a positive number of MHz, not {c}");
        }
    }
    if matches!(spec, FoldSpec::Manual(f) if f.stage_levels.is_some()) {
        return Ok(());
    }
    let mhz = clock_mhz.unwrap_or_else(|| default_clock_mhz(design.family));
    Pipelining::for_design(design, mhz).run(design)?;
    Ok(())
}

/// Sizes and inserts the FIFOs of a design with pixel streams by simulation, unless the fold
/// file lists them (then they are already in place); `None` when nothing was sized.
pub fn size_fifos(
    design: &mut compiler::ir::Design,
    spec: &FoldSpec,
) -> anyhow::Result<Option<sim::fifo_sizing::Sizing>> {
    let listed = matches!(spec, FoldSpec::Manual(f) if f.fifos.is_some());
    if design.input().stream.is_none() || listed {
        return Ok(None);
    }
    let s = sim::fifo_sizing::size(design).context("sizing the FIFOs by simulation")?;
    sim::fifo_sizing::apply(design, &s);
    compiler::check::check(design).context("the design with its FIFOs")?;
    Ok(Some(s))
}

/// `report.json` with what FIFO sizing measured: the frame interval and latency of the
/// design as built (a convolutional pipeline's stages overlap, so its latency is not the sum
/// of theirs).
fn write_report(
    design: &compiler::ir::Design,
    s: &sim::fifo_sizing::Sizing,
    out: &Path,
) -> anyhow::Result<()> {
    let mut r = compiler::report(design);
    r["measured"] = measured_json(s);
    let path = out.join("report.json");
    let mut text = serde_json::to_string_pretty(&r)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The `measured` entry of `report.json`.
fn measured_json(s: &sim::fifo_sizing::Sizing) -> serde_json::Value {
    serde_json::json!({
        "cycles_per_frame": s.cycles_per_frame,
        "latency_cycles": s.latency_cycles,
        "unbuffered_cycles_per_frame": s.unbuffered,
        "fifos": s.fifos,
        "sizing_runs": s.runs,
    })
}

/// Runs `flipchip compile`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let model = load_model(&a.model)?;
    let spec = fold_spec(&a.fold, a.target_cycles, a.packed_input)?;
    let start = Instant::now();
    let placement = placement(a.device.as_deref())?;
    let family = a
        .device
        .as_deref()
        .and_then(compiler::dse::device)
        .map(|d| d.family)
        .unwrap_or_default();
    let (design, sizing) = in_fold_file(
        compile_into(&a.model, &model, &spec, &placement, family, a.clock, &a.out),
        &a.fold,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let mut report = compiler::report(&design);
    eprintln!(
        "{}: {} -> {} ({:.2} s)",
        a.model.display(),
        design.model,
        a.out.display(),
        seconds
    );
    eprintln!(
        "{:<14} {:>6} {:>6} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "stage", "PE", "SIMD", "cycles", "latency", "est LUTs", "est FFs", "memory bits"
    );
    for b in design.blocks() {
        let e = b.estimate_for(design.family);
        let (pe, simd) = match b.folding() {
            Some((pe, simd)) => (pe.to_string(), simd.to_string()),
            None => ("-".into(), "-".into()),
        };
        eprintln!(
            "{:<14} {pe:>6} {simd:>6} {:>10} {:>10} {:>10} {:>10} {:>12}",
            b.name(),
            b.cycles(),
            b.latency(),
            e.luts,
            e.ffs,
            e.memory_bits
        );
    }
    let input = design.input();
    let beats = input.pixels / input.pixels_per_beat;
    eprintln!(
        "input: {} pixel(s) per beat ({}, {}-bit s_data), {beats} beats per frame",
        input.pixels_per_beat,
        match input.format {
            InputFormat::Pixels => "a byte each",
            InputFormat::Packed => "packed, a bit each",
        },
        input.input_width()
    );
    for l in design.mvtus().filter(|l| l.idle_outputs > 0) {
        eprintln!(
            "l{}: {} idle neuron(s), {} in all, so that PE {} and the next layer's SIMD divide \
             them (classes and scores are the model's)",
            l.index, l.idle_outputs, l.outputs, l.pe
        );
    }
    for l in design.mvtus().filter(|l| l.is_loaded()) {
        eprintln!(
            "l{}: weights in RAM ({} x {} bits), loaded after power-up from {} ({} words)",
            l.index,
            l.neuron_folds() * l.synapse_folds(),
            l.pe * l.simd,
            compiler::LOAD_HEX,
            l.load_words()
        );
    }
    if let Some(target) = a.target_cycles {
        if target < beats as u64 {
            eprintln!(
                "note: the input takes at most {} {} pixels per cycle, so no design for this \
                 model goes below {beats} cycles per frame (target {target})",
                input.format.max_pixels_per_beat(),
                input.format
            );
        }
    }
    let t = &report["total"];
    eprintln!(
        "total: {} cycles per frame, latency {} cycles, ~{} LUTs, ~{} FFs, {} memory bits",
        t["cycles_per_frame"], t["latency_cycles"], t["est_luts"], t["est_ffs"], t["memory_bits"]
    );
    if let Some(s) = &sizing {
        let fifos: Vec<String> = s
            .fifos
            .iter()
            .map(|f| format!("{} after {}", f.depth, f.after))
            .collect();
        eprintln!(
            "simulated: {} cycles per frame ({} without FIFOs), latency {} cycles; FIFOs sized \
             in {} runs: {}",
            s.cycles_per_frame,
            s.unbuffered,
            s.latency_cycles,
            s.runs,
            if fifos.is_empty() {
                "none needed".to_string()
            } else {
                fifos.join(", ")
            }
        );
        report["measured"] = measured_json(s);
    }
    if a.json {
        let mut v = report;
        v["out"] = serde_json::json!(a.out.display().to_string());
        v["seconds"] = serde_json::json!(seconds);
        super::print_json(&v);
    }
    Ok(())
}
