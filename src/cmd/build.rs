//! `flipchip build`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};

/// Compile a model and build a bitstream for a board: the accelerator behind a UART (115200
/// 8N1: send one byte per pixel, receive one byte per frame, the class; LEDs show the class).
/// Writes the design, board_top.v, the tools' logs and reports, the bitstream and build.json
/// (LUTs, FFs, BRAM, SPRAM, DSP, utilisation, Fmax, timing, frames per second, tool versions,
/// seconds per step) into --out.
#[derive(clap::Args)]
pub struct Args {
    /// The model file (.fcm).
    pub model: PathBuf,
    /// A board shipped with flipchip (icebreaker, ulx3s) or a folder holding a board.toml.
    #[arg(long)]
    pub board: String,
    /// Build directory to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// `auto` or a JSON fold file, as for `flipchip compile`.
    #[arg(long, default_value = "auto")]
    pub fold: String,
    /// Cycles per frame that `--fold auto` aims for (default: the input pixels per frame). The
    /// UART delivers a pixel every 10 bit times, so far slower foldings keep up with it.
    #[arg(long)]
    pub target_cycles: Option<u64>,
    /// Take the input packed, one bit per pixel (see `flipchip compile --packed-input`): the
    /// host then sends binarised pixels, 8 to a byte.
    #[arg(long)]
    pub packed_input: bool,
    /// Core clock in MHz, made by the board's PLL (default: the board clock, no PLL).
    #[arg(long)]
    pub freq: Option<f64>,
    /// nextpnr placer seed.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Place and route under each of these nextpnr placer seeds (e.g. `1,2,3`), as many at
    /// once as the machine has cores, and keep the fastest: the seed alone moves Fmax by
    /// 10-20% on a well-filled device. build.json lists what each seed gave.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub seeds: Vec<u64>,
    /// One more argument for nextpnr, after the board's (repeat for several; e.g.
    /// `--nextpnr-arg=--router --nextpnr-arg=router2`: faster on large ECP5 designs, lower Fmax).
    #[arg(long = "nextpnr-arg", allow_hyphen_values = true)]
    pub nextpnr_args: Vec<String>,
    /// Stop place and route when it has made no progress (its log has not grown) for this many
    /// minutes; 0: never. A placer that cannot legalise a design loops without output.
    #[arg(long, default_value_t = 15.0)]
    pub pnr_stall_minutes: f64,
    /// Stop any tool (Yosys, nextpnr, the packer) that runs longer than this many minutes
    /// (default: FLIPCHIP_TOOL_TIMEOUT seconds if set, else 2 h for synthesis, 4 h for place
    /// and route, 15 min for packing).
    #[arg(long)]
    pub tool_timeout_minutes: Option<f64>,
    /// Print build.json as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Where the bitstream flow runs.
    #[command(flatten)]
    pub exec: super::executor_args::ExecutorArgs,
}

/// What the build directory was compiled from: the model file, the folding and its options,
/// and the Verilog they gave.
fn inputs_key(a: &Args, design: &compiler::ir::Design) -> anyhow::Result<String> {
    let mut key = testbenches::Key::new();
    let model =
        std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    key.add(&model).add(a.fold.as_bytes());
    if a.fold != "auto" {
        key.add(&std::fs::read(&a.fold).with_context(|| format!("reading {}", a.fold))?);
    }
    let options = format!("{:?} {} {:?}", a.target_cycles, a.packed_input, a.freq);
    key.add(options.as_bytes());
    for (name, text) in compiler::verilog::emit(design) {
        key.add(name.as_bytes()).add(text.as_bytes());
    }
    Ok(key.hex())
}

/// Runs `flipchip build`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let board = boards::Board::load(&a.board)?;
    if let Some(f) = a.freq {
        if !f.is_finite() || f <= 0.0 {
            bail!("--freq must be a positive number of MHz");
        }
    }
    if !a.pnr_stall_minutes.is_finite() || a.pnr_stall_minutes < 0.0 {
        bail!("--pnr-stall-minutes must be a number of minutes, 0 or more");
    }
    if let Some(m) = a.tool_timeout_minutes {
        if !m.is_finite() || m <= 0.0 {
            bail!("--tool-timeout-minutes must be a positive number of minutes");
        }
    }
    let model = super::compile::load_model(&a.model)?;
    let spec = super::compile::fold_spec(&a.fold, a.target_cycles, a.packed_input)?;
    // The flow runs in the work directory (`--out` unless --workdir says otherwise), as one
    // unit of work.
    let workdir = a.exec.workdir(&a.out)?;
    let unit_dir = match &a.exec.workdir {
        Some(_) => workdir.join("build"),
        None => workdir.clone(),
    };
    let t = Instant::now();
    // Weights that overflow the block RAMs go to SPRAM where the board can load them.
    let placement = match (&board.flash, compiler::dse::device(&board.device)) {
        (Some(_), Some(d)) => d.placement(),
        _ => compiler::passes::memory::Placement::Rom,
    };
    let design = super::compile::in_fold_file(
        super::compile::compile_into(
            &a.model,
            &model,
            &spec,
            &placement,
            board.family,
            a.freq,
            &unit_dir,
        ),
        &a.fold,
    )?
    .0;
    let compile_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "compile: {} -> {} ({} cycles per frame, {:.2} s)",
        design.model,
        a.out.display(),
        design.cycles_per_frame(),
        compile_seconds
    );
    let opts = boards::flow::Options {
        freq_mhz: a.freq,
        seeds: a.seed.map_or_else(|| a.seeds.clone(), |s| vec![s]),
        nextpnr_args: a.nextpnr_args.clone(),
        pnr_stall: (a.pnr_stall_minutes > 0.0)
            .then(|| std::time::Duration::from_secs_f64(a.pnr_stall_minutes * 60.0)),
        timeout: a
            .tool_timeout_minutes
            .map(|m| std::time::Duration::from_secs_f64(m * 60.0)),
    };
    let job = super::build_unit::Job {
        board: &a.board,
        opts: &opts,
        inputs_key: inputs_key(&a, &design)?,
    };
    let mut v = super::build_unit::build(&job, &unit_dir, &workdir, &a.exec)
        .with_context(|| format!("building for {} in {}", board.name, unit_dir.display()))?;
    if a.exec.workdir.is_some() {
        super::build_unit::copy_dir(&unit_dir, &a.out)?;
    }
    // build.json names its files under --out, as given.
    super::build_unit::rebase_paths(&mut v, &unit_dir, &a.out);
    v["model"] = serde_json::json!(design.model);
    v["step_seconds"]["compile"] = serde_json::json!(compile_seconds);
    v["seconds"] = serde_json::json!(start.elapsed().as_secs_f64());
    let path = a.out.join(boards::flow::files::BUILD_JSON);
    let mut text = serde_json::to_string_pretty(&v)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "build: {} LUTs, {} FFs, {} BRAM, {} SPRAM; Fmax {} MHz, timing {} at {} MHz; {} frames/s \
         (accelerator), {:.0} frames/s over the UART; {:.1} s; {}",
        v["luts"],
        v["ffs"],
        v["bram"],
        v["spram"],
        v["fmax_mhz"]
            .as_f64()
            .map_or("?".into(), |f| format!("{f:.2}")),
        if v["timing_met"] == true {
            "met"
        } else {
            "NOT met"
        },
        v["requested_mhz"],
        v["frames_per_second"]
            .as_f64()
            .map_or("?".into(), |f| format!("{f:.0}")),
        v["uart_frames_per_second"].as_f64().unwrap_or(0.0),
        start.elapsed().as_secs_f64(),
        path.display()
    );
    if let Some(cmd) = v["flash"]["program"].as_str() {
        eprintln!(
            "weights: {} words in SPRAM, loaded from flash in {:.1} ms after power-up; write them with: {cmd}",
            v["flash"]["words"],
            v["flash"]["load_ms"].as_f64().unwrap_or(0.0)
        );
    }
    if a.json {
        super::print_json(&v);
    }
    Ok(())
}
