//! `flipchip asic`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use compiler::passes::memory::Placement;

/// Compile a model and take it to standard cells with the open tools qflow brings (Yosys, ABC,
/// OpenSTA, Icarus; with --layout GrayWolf, qrouter, Magic, netgen): cells and area by kind,
/// timing against --clock, the gate-level netlist checked against the reference on test frames,
/// and power from those frames' simulated activity. Writes the design, the netlist, the tools'
/// scripts and logs and asic.json into --out.
#[derive(clap::Args)]
pub struct Args {
    /// The model file (.fcm).
    pub model: PathBuf,
    /// Standard-cell library: osu018 (0.18 um), osu035 or osu050.
    #[arg(long)]
    pub tech: String,
    /// Directory to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// `auto` or a JSON fold file, as for `flipchip compile`.
    #[arg(long, default_value = "auto")]
    pub fold: String,
    /// Cycles per frame that `--fold auto` aims for (default: the input pixels per frame).
    #[arg(long)]
    pub target_cycles: Option<u64>,
    /// Clock constraint in MHz: the timing checks, the power and frames/s are at this clock,
    /// and the popcount trees are pipelined for it.
    #[arg(long, default_value_t = 100.0)]
    pub clock: f64,
    /// Also place, route, write GDS and run DRC and LVS (qflow: GrayWolf, qrouter, Magic,
    /// netgen); minutes for small designs, far longer for large ones.
    #[arg(long)]
    pub layout: bool,
    /// Test frames for the gate-level check and the power's activity.
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    /// Directory with IDX files; the embedded digits without it (random pixels if the model
    /// does not read 8x8 digits).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Gate-level simulator: icarus (the library's Verilog cell models), cycle (flipchip's
    /// two-state cycle simulator of the netlist, with the liberty's cell functions, on 64
    /// lanes that share the frames; for large designs), event (the same simulator's
    /// event-driven engine, one lane), or auto (icarus below 2e8 cell-cycles, else cycle).
    #[arg(long, default_value = "auto")]
    pub gate_sim: String,
    /// Share of the core area the cells fill (the core area reported is the cell area over it).
    #[arg(long, default_value_t = 0.7)]
    pub utilisation: f64,
    /// Stop any tool that runs longer than this many minutes.
    #[arg(long)]
    pub tool_timeout_minutes: Option<f64>,
    /// Print asic.json as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Where the flow runs.
    #[command(flatten)]
    pub exec: super::executor_args::ExecutorArgs,
}

/// Runs `flipchip asic`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    if !asic::TECHS.contains(&a.tech.as_str()) {
        bail!(
            "unknown tech {:?}; known: {}",
            a.tech,
            asic::TECHS.join(", ")
        );
    }
    if !a.clock.is_finite() || a.clock <= 0.0 {
        bail!("--clock must be a positive number of MHz");
    }
    if !(a.utilisation > 0.0 && a.utilisation <= 1.0) {
        bail!("--utilisation must be above 0 and at most 1");
    }
    if a.frames == 0 {
        bail!("--frames must be at least 1");
    }
    let gate_sim = match a.gate_sim.as_str() {
        "auto" => None,
        name => match asic::gate::Simulator::from_name(name) {
            Some(s) => Some(s),
            None => bail!("--gate-sim {name:?}: expected auto, icarus, cycle or event"),
        },
    };
    let timeout = match a.tool_timeout_minutes {
        Some(m) if !m.is_finite() || m <= 0.0 => {
            bail!("--tool-timeout-minutes must be a positive number of minutes")
        }
        m => m.map(|m| Duration::from_secs_f64(m * 60.0)),
    };
    let model = super::compile::load_model(&a.model)?;
    // A library that is not installed is known before anything is compiled.
    asic::Tech::load(&a.tech)?;
    let spec = super::compile::fold_spec(&a.fold, a.target_cycles, false)?;
    let workdir = a.exec.workdir(&a.out)?;
    let unit_dir = match &a.exec.workdir {
        Some(_) => workdir.join("asic"),
        None => workdir.clone(),
    };
    let t = Instant::now();
    let design = super::compile::in_fold_file(
        super::compile::compile_into(
            &a.model,
            &model,
            &spec,
            &Placement::Rom,
            compiler::blocks::Family::Ice40,
            Some(a.clock),
            &unit_dir,
        ),
        &a.fold,
    )?
    .0;
    let compile_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "compile: {} -> {} ({} cycles per frame, {:.2} s)",
        design.model,
        unit_dir.display(),
        design.cycles_per_frame(),
        compile_seconds
    );
    let stimulus = write_stimulus(&a, &model, &design, &unit_dir)?;
    let opts = asic::Options {
        tech: a.tech.clone(),
        clock_mhz: a.clock,
        utilisation: a.utilisation,
        layout: a.layout,
        timeout,
        gate_sim,
    };
    let local_here =
        a.exec.executor == super::executor_args::Kind::Local && a.exec.workdir.is_none();
    let mut v = if local_here {
        // On this machine the flow runs in this process, printing each step as it starts.
        asic::run(&unit_dir, &opts, &mut |line| eprintln!("{line}"))
            .with_context(|| format!("the ASIC flow in {}", unit_dir.display()))?
    } else {
        let key = inputs_key(&a, &design, &stimulus)?;
        super::asic_unit::run(&opts, &key, &unit_dir, &workdir, &a.exec)?
    };
    if a.exec.workdir.is_some() {
        super::build_unit::copy_dir(&unit_dir, &a.out)?;
        super::build_unit::rebase_paths(&mut v, &unit_dir, &a.out);
    }
    v["model"] = serde_json::json!(design.model);
    v["step_seconds"]["compile"] = serde_json::json!(compile_seconds);
    v["seconds"] = serde_json::json!(start.elapsed().as_secs_f64());
    let path = a.out.join(asic::files::ASIC_JSON);
    let mut text = serde_json::to_string_pretty(&v)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "asic: {} {} cells, {:.0} um^2; Fmax {:.1} MHz, timing {} at {} MHz; {:.3} mW, {:.3} nJ/frame, \
         {:.0} frames/s; gate-level netlist equals the reference on {} frames; {:.1} s; {}",
        v["tech"].as_str().unwrap_or_default(),
        v["cells"],
        v["area_um2"].as_f64().unwrap_or(0.0),
        v["fmax_mhz"].as_f64().unwrap_or(0.0),
        if v["timing_met"] == true { "met" } else { "NOT met" },
        a.clock,
        v["power_mw"].as_f64().unwrap_or(0.0),
        v["energy_per_frame_nj"].as_f64().unwrap_or(0.0),
        v["frames_per_second"].as_f64().unwrap_or(0.0),
        v["gate_level"]["frames"],
        start.elapsed().as_secs_f64(),
        path.display()
    );
    if a.json {
        super::print_json(&v);
    }
    Ok(())
}

/// Writes the test frames' input stream and the reference's results for them into `dir`.
fn write_stimulus(
    a: &Args,
    model: &flip::model::Model,
    design: &compiler::ir::Design,
    dir: &std::path::Path,
) -> anyhow::Result<asic::Stimulus> {
    let pixels = model.input.pixels();
    let images = match super::sim::frames(model, a.data.as_deref(), Some(a.frames)) {
        Ok((_, images, _)) => images,
        Err(e) if a.data.is_none() => {
            eprintln!("{e:#}; streaming random pixels instead");
            let mut rng = compiler::random::Rng(1);
            compiler::random::random_pixels(&mut rng, model, a.frames)
        }
        Err(e) => return Err(e),
    };
    let expected = images
        .chunks(pixels)
        .map(|img| {
            let scores: Vec<i64> = flip::reference::binary_scores(model, img)
                .into_iter()
                .map(i64::from)
                .collect();
            asic::gate::Expected {
                class: flip::reference::argmax(&scores) as u32,
                scores,
            }
        })
        .collect();
    let synapse_ops_per_frame = model
        .layers
        .iter()
        .map(|l| match l {
            flip::model::Layer::Binary(b) => (l.outputs() * b.weights.cols()) as u64,
            _ => 0,
        })
        .sum();
    let stimulus = asic::Stimulus {
        cycles_per_frame: design.cycles_per_frame(),
        latency_cycles: design.latency_cycles(),
        synapse_ops_per_frame,
        expected,
    };
    let stream = design.input().stream_bytes(&images);
    let path = dir.join(asic::files::STREAM);
    std::fs::write(&path, &stream).with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join(asic::files::STIMULUS_JSON);
    std::fs::write(&path, serde_json::to_string(&stimulus)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(stimulus)
}

/// What the unit's directory was made from: the model, the folding, the options and the
/// Verilog they gave, and the frames.
fn inputs_key(
    a: &Args,
    design: &compiler::ir::Design,
    stimulus: &asic::Stimulus,
) -> anyhow::Result<String> {
    let mut key = testbenches::Key::new();
    let model =
        std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    key.add(&model).add(a.fold.as_bytes());
    if a.fold != "auto" {
        key.add(&std::fs::read(&a.fold).with_context(|| format!("reading {}", a.fold))?);
    }
    key.add(format!("{:?} {:?}", a.target_cycles, a.data).as_bytes());
    key.add(serde_json::to_string(stimulus)?.as_bytes());
    for (name, text) in compiler::verilog::emit(design) {
        key.add(name.as_bytes()).add(text.as_bytes());
    }
    Ok(key.hex())
}
