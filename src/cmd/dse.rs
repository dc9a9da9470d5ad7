//! `flipchip dse`: explore the foldings of a model for a device, confirm the front's cycles in
//! the simulator, optionally synthesise some of it with Yosys to check the estimates.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use compiler::blocks::Family;
use compiler::dse::{self, Exploration};
use rayon::prelude::*;
use serde_json::json;

/// Explore foldings for a device: Pareto front of frames/s against LUTs, as CSV, JSON and SVG.
#[derive(clap::Args)]
pub struct Args {
    /// The model file (.fcm).
    pub model: PathBuf,
    /// Target device (`up5k`, `ice40-hx8k`, `ecp5-25k`, `ecp5-85k`; standard cells:
    /// `asic-osu018`, `asic-osu035`, `asic-osu050`, costed in cell area).
    #[arg(long)]
    pub device: String,
    /// ASIC devices: candidates above this cell area (um^2) do not fit.
    #[arg(long)]
    pub max_area: Option<f64>,
    /// Synthesise this many fitting front designs with Yosys (spread over the front, the
    /// fastest always included) and compare their LUTs (ASIC: cell area) with the estimates.
    #[arg(long, default_value_t = 0)]
    pub synth: usize,
    /// Directory to write dse.csv, dse.json, dse.svg (and synth/) into (default: `dse-<device>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Frames of random input per front design in the cycle-accurate simulator.
    #[arg(long, default_value_t = 3)]
    pub sim_frames: usize,
    /// Also try every hidden dense layer a dense layer follows up to a quarter wider, with
    /// idle neurons (three widths each, those with the most divisors), for neuron steps the
    /// divisors of its width do not offer; `compile` pads the chosen folding the same way.
    #[arg(long)]
    pub pad: bool,
    /// Print one JSON summary object as the last line.
    #[arg(long)]
    pub json: bool,
    /// Where the --synth runs happen (their work directory defaults to --out).
    #[command(flatten)]
    pub exec: super::executor_args::ExecutorArgs,
}

/// What the simulator measured for one candidate.
#[derive(Clone, Debug)]
pub struct SimCheck {
    /// Candidate index.
    pub id: usize,
    /// Cycles between the last two results of back-to-back random frames.
    pub cycles_per_frame: u64,
    /// Cycles from the first frame's first pixel to its result.
    pub latency_cycles: u64,
    /// Equal to the candidate's predicted cycles and latency.
    pub agrees: bool,
    /// The design with the FIFOs sizing gave it (designs with pixel streams only).
    pub sized: Option<compiler::ir::Design>,
}

impl SimCheck {
    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "cycles_per_frame": self.cycles_per_frame,
            "latency_cycles": self.latency_cycles,
            "agrees": self.agrees,
        })
    }
}

/// Runs `frames` (at least 2) random frames back to back through candidate `i` in the
/// cycle-accurate simulator.
pub fn sim_check(
    model: &flip::model::Model,
    x: &Exploration,
    i: usize,
    frames: usize,
) -> anyhow::Result<SimCheck> {
    let (design, sizing) = sized_design(model, x, i)?;
    let c = &x.candidates[i];
    if let Some(s) = sizing {
        // Sizing ran the design (FIFOs included) long enough to reach its steady state.
        return Ok(SimCheck {
            id: i,
            cycles_per_frame: s.cycles_per_frame,
            latency_cycles: s.latency_cycles,
            // A convolutional pipeline's stages overlap: its latency is what the simulator
            // measures, there is no prediction to agree with.
            agrees: s.cycles_per_frame == c.cycles_per_frame,
            sized: Some(design),
        });
    }
    // A layer with frames per weight read hands its frames on in batches of `F`: the steady
    // state is `F` frames per `F` intervals, measured in the middle of the stream, where the
    // batches are full (the first starts with one frame, and so may the last).
    let batch = design
        .mvtus()
        .map(|l| l.frames_per_read())
        .max()
        .unwrap_or(1);
    let frames = if batch > 1 {
        frames.max(8 * batch)
    } else {
        frames.max(2)
    };
    let mut z = i as u64;
    let beats: Vec<u8> = (0..frames * design.input().pixels)
        .map(|_| {
            z = sim::stimulus::splitmix64(z);
            z as u8
        })
        .collect();
    let limit = (frames as u64 + 2) * (c.cycles_per_frame + c.latency_cycles) + 1000;
    let run = sim::run(
        &design,
        &beats,
        sim::stimulus::Stimulus::free(1),
        limit,
        None,
    )
    .with_context(|| format!("simulating candidate {i} ({})", c.fold_label()))?;
    let o = &run.trace.outputs;
    let cycles = if batch > 1 {
        let (a, b) = (o.len() / 2, o.len() / 2 + 2 * batch);
        let span = o[b].cycle - o[a].cycle;
        // The interval, exactly where the span is a whole number of them.
        if span % (2 * batch) as u64 == 0 {
            span / (2 * batch) as u64
        } else {
            span
        }
    } else {
        o[o.len() - 1].cycle - o[o.len() - 2].cycle
    };
    let latency = run.first_latency().unwrap_or(0);
    Ok(SimCheck {
        id: i,
        cycles_per_frame: cycles,
        latency_cycles: latency,
        agrees: cycles == c.cycles_per_frame && latency == c.latency_cycles,
        sized: None,
    })
}

/// One Yosys run.
#[derive(Clone, Debug)]
pub struct SynthResult {
    /// Candidate index.
    pub id: usize,
    /// Folding.
    pub folding: String,
    /// LUT4s as counted by [`Family::count_luts`].
    pub yosys_luts: u64,
    /// Block RAM cells.
    pub yosys_brams: u64,
    /// The estimate.
    pub est_luts: u64,
    /// Estimated block RAMs.
    pub est_brams: u64,
    /// `(est - yosys) / yosys`.
    pub lut_error: f64,
    /// Wall-clock seconds of the Yosys run.
    pub seconds: f64,
    /// Taken from an earlier run on the same Verilog in the same directory.
    pub cached: bool,
    /// The build directory.
    pub dir: String,
}

impl SynthResult {
    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "folding": self.folding,
            "yosys_luts": self.yosys_luts,
            "yosys_brams": self.yosys_brams,
            "est_luts": self.est_luts,
            "est_brams": self.est_brams,
            "lut_error": self.lut_error,
            "seconds": self.seconds,
            "cached": self.cached,
            "dir": self.dir,
        })
    }
}

/// Candidate `i`'s design with its FIFOs sized by simulation (a design with pixel streams;
/// then also what sizing measured).
pub(super) fn sized_design(
    model: &flip::model::Model,
    x: &Exploration,
    i: usize,
) -> anyhow::Result<(compiler::ir::Design, Option<sim::fifo_sizing::Sizing>)> {
    let mut design = x.design(model, i)?;
    let spec = compiler::passes::folding::FoldSpec::Manual(x.candidates[i].fold_file());
    let sizing = super::compile::size_fifos(&mut design, &spec)
        .with_context(|| format!("candidate {i} ({})", x.candidates[i].fold_label()))?;
    Ok((design, sizing))
}

/// Compiles candidate `i` into `dir` and synthesises it with Yosys for the device's family.
pub fn synth(
    model: &flip::model::Model,
    x: &Exploration,
    i: usize,
    dir: &Path,
) -> anyhow::Result<SynthResult> {
    let (design, _) = sized_design(model, x, i)?;
    let family = x.device.family;
    let c = &x.candidates[i];
    let (text, seconds, cached) = yosys_stat(&design, dir, family)
        .with_context(|| format!("synthesising candidate {i} ({})", c.fold_label()))?;
    // Kept beside the Verilog so that `flipchip calibrate` can rebuild the design.
    let copy = dir.join("model.fcm");
    flip::model::format::save(model, &copy)
        .with_context(|| format!("writing {}", copy.display()))?;
    let (luts, brams) = family
        .count_luts(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("reading {}", dir.display()))?;
    Ok(SynthResult {
        id: i,
        folding: c.fold_label(),
        yosys_luts: luts,
        yosys_brams: brams,
        est_luts: c.estimate.luts,
        est_brams: c.estimate.brams,
        lut_error: (c.estimate.luts as f64 - luts as f64) / luts.max(1) as f64,
        seconds,
        cached,
        dir: dir.display().to_string(),
    })
}

/// The Yosys the family's estimates are calibrated against ([`Family::yosys`]), on PATH or in
/// the project's `.venv-fpga`.
pub fn yosys_for(family: Family) -> anyhow::Result<PathBuf> {
    tools::require(&[family.yosys()], family.yosys_install()).with_context(|| {
        format!(
            "the {} estimates are calibrated against {}",
            family.name(),
            family.yosys()
        )
    })
}

/// [`yosys_for`]'s version line, remembered: part of every report's key.
fn yosys_version(family: Family) -> anyhow::Result<String> {
    static SEEN: std::sync::Mutex<Vec<(Family, String)>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, v)) = seen.iter().find(|(f, _)| *f == family) {
        return Ok(v.clone());
    }
    let v = tools::version(&yosys_for(family)?, "-V")?;
    seen.push((family, v.clone()));
    Ok(v)
}

/// `dir/stat_<family>.txt`, `dir/stat_<family>.key` and the key of `design`'s Verilog and the
/// Yosys version: a report counts only beside the key of the Verilog and tool it was made from
/// (the directory's Verilog may have been rewritten since, e.g. by a run for another family).
fn stat_paths(
    design: &compiler::ir::Design,
    dir: &Path,
    family: Family,
    yosys_version: &str,
) -> (PathBuf, PathBuf, String) {
    let mut key = testbenches::Key::new();
    key.add(yosys_version.as_bytes());
    for (name, text) in compiler::verilog::emit(design) {
        key.add(name.as_bytes()).add(text.as_bytes());
    }
    (
        dir.join(format!("stat_{}.txt", family.name())),
        dir.join(format!("stat_{}.key", family.name())),
        key.hex(),
    )
}

/// The Yosys report in `dir` for exactly `design`'s Verilog, if there is one.
pub fn current_stat(design: &compiler::ir::Design, dir: &Path, family: Family) -> Option<String> {
    let (stat, key_path, key) = stat_paths(design, dir, family, &yosys_version(family).ok()?);
    if std::fs::read_to_string(key_path).ok()? != key {
        return None;
    }
    std::fs::read_to_string(stat).ok()
}

/// Writes `design` into `dir` and synthesises it with Yosys for `family`, leaving the `stat`
/// report in `dir/stat_<family>.txt`; returns the report, the seconds Yosys took and whether
/// an earlier report for the same Verilog was reused instead (the estimates may have changed
/// since, the Verilog and so Yosys's answer have not).
pub fn yosys_stat(
    design: &compiler::ir::Design,
    dir: &Path,
    family: Family,
) -> anyhow::Result<(String, f64, bool)> {
    if let Some(text) = current_stat(design, dir, family) {
        return Ok((text, 0.0, true));
    }
    let yosys = yosys_for(family)?;
    let (stat, key_path, key) = stat_paths(design, dir, family, &yosys_version(family)?);
    let _ = std::fs::remove_file(&stat);
    let _ = std::fs::remove_file(&key_path);
    compiler::write_build(design, dir)?;
    // Paths relative to `dir`: YoWASP's Yosys sees only its working directory.
    let files: Vec<String> = design.file_names().iter().map(|f| f.to_string()).collect();
    let stat_name = stat.file_name().map(PathBuf::from).unwrap_or_default();
    let script = family.synth_script(&files, compiler::TOP, &stat_name);
    let start = Instant::now();
    // `-q` keeps the terminal quiet; `-l` still logs everything Yosys says.
    tools::Run::new("synth", &yosys, "yosys-run.log")
        .current_dir(dir)
        .args(["-q", "-l", "yosys.log", "-p", &script])
        .default_timeout(tools::limits::SYNTH)
        .run()?;
    let text =
        std::fs::read_to_string(&stat).with_context(|| format!("reading {}", stat.display()))?;
    std::fs::write(&key_path, &key).with_context(|| format!("writing {}", key_path.display()))?;
    Ok((text, start.elapsed().as_secs_f64(), false))
}

/// `k` fitting front members spread evenly from the fastest to the cheapest.
pub fn pick_for_synth(x: &Exploration, k: usize) -> Vec<usize> {
    let f = x.fitting_front();
    if k == 0 || f.is_empty() {
        return Vec::new();
    }
    if k >= f.len() {
        return f;
    }
    let mut v: Vec<usize> = (0..k)
        .map(|j| {
            f[if k == 1 {
                0
            } else {
                j * (f.len() - 1) / (k - 1)
            }]
        })
        .collect();
    v.dedup();
    v
}

/// The front as a table, for an ASIC device: cell area instead of LUTs and block RAMs.
fn front_table_asic(x: &Exploration) {
    eprintln!(
        "{:>5} {:<24} {:>9} {:>9} {:>12} {:>12} {:>8} {:>12} {:>5}",
        "id",
        "folding (PExSIMD)",
        "cycles",
        "latency",
        "frames/s",
        "est um^2",
        "FFs",
        "fps/mm^2",
        "fits"
    );
    for &i in &x.front {
        let c = &x.candidates[i];
        eprintln!(
            "{i:>5} {:<24} {:>9} {:>9} {:>12.0} {:>12.0} {:>8} {:>12.0} {:>5}",
            c.fold_label(),
            c.cycles_per_frame,
            c.latency_cycles,
            c.frames_per_second,
            c.area_um2.unwrap_or(0.0),
            c.estimate.ffs,
            c.frames_per_second_per_mm2(),
            if c.fits { "yes" } else { "no" }
        );
    }
}

/// Runs `flipchip dse`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let model = super::compile::load_model(&a.model)?;
    let Some(mut device) = dse::devices().into_iter().find(|d| d.name == a.device) else {
        let names: Vec<String> = dse::devices().into_iter().map(|d| d.name).collect();
        bail!(
            "unknown device {:?}; known devices: {}",
            a.device,
            names.join(", ")
        );
    };
    if let Some(max) = a.max_area {
        if !device.is_asic() {
            bail!(
                "--max-area is for ASIC devices; {} is limited by its LUTs and block RAMs",
                device.name
            );
        }
        if !max.is_finite() || max <= 0.0 {
            bail!("--max-area must be a positive number of um^2");
        }
        device.max_area_um2 = Some(max);
    }
    if device.is_asic() && a.synth > 0 && a.exec.executor != super::executor_args::Kind::Local {
        bail!("dse --synth on an ASIC device runs here only (--executor local)");
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("dse-{}", device.name)));
    let start = Instant::now();
    let mut x = if a.pad {
        dse::explore_padded(&model, &device)
    } else {
        dse::explore(&model, &device)
    }
    .with_context(|| format!("exploring {}", a.model.display()))?;
    let explore_seconds = start.elapsed().as_secs_f64();
    if device.is_asic() {
        eprintln!(
            "{}: {} on {} ({} standard cells, area model fitted to Yosys+ABC, {} MHz before \
             layout, {}): {} candidates, front of {} ({:.2} s)",
            a.model.display(),
            x.model,
            device.name,
            device.tech.as_deref().unwrap_or_default(),
            device.fmax_mhz,
            device
                .max_area_um2
                .map_or("no area limit".to_string(), |m| format!(
                    "at most {m:.0} um^2"
                )),
            x.candidates.len(),
            x.front.len(),
            explore_seconds
        );
    } else {
        eprintln!(
        "{}: {} on {} ({}, {} LUT4, {} BRAMs, up to {} MHz): {} candidates, front of {} ({:.2} s)",
        a.model.display(),
        x.model,
        device.name,
        device.family.name(),
        device.luts,
        device.brams,
        device.fmax_mhz,
        x.candidates.len(),
        x.front.len(),
        explore_seconds
    );
    }

    // The front's cycles per frame and latency, measured in the simulator.
    let start = Instant::now();
    // Sizing a conv design's FIFOs takes a few dozen simulations per design: all cores, and
    // a bar to watch.
    let bar = indicatif::ProgressBar::new(x.front.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "simulating the front {bar:30} {pos}/{len} {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let sims: Vec<SimCheck> = x
        .front
        .par_iter()
        .map(|&i| {
            let s = sim_check(&model, &x, i, a.sim_frames);
            bar.inc(1);
            s
        })
        .collect::<anyhow::Result<_>>()?;
    bar.finish_and_clear();
    let disagree: Vec<usize> = sims.iter().filter(|s| !s.agrees).map(|s| s.id).collect();
    // A convolutional front design's latency is the simulator's (its stages overlap, so the
    // prediction, their sum, is only a bound); a dense one's agrees with it.
    // Their estimates, fits and clocks now include the FIFOs sizing gave them.
    for s in &sims {
        x.candidates[s.id].latency_cycles = s.latency_cycles;
        if let Some(d) = &s.sized {
            x.add_fifos(s.id, d);
        }
    }
    eprintln!(
        "simulator: {} front designs x {} random frames, cycles per frame and latency {} ({:.2} s)",
        sims.len(),
        a.sim_frames.max(2),
        if disagree.is_empty() {
            "as predicted".to_string()
        } else {
            format!("DIFFER for candidates {disagree:?}")
        },
        start.elapsed().as_secs_f64()
    );

    if device.is_asic() {
        front_table_asic(&x);
    } else {
        eprintln!(
            "{:>5} {:<24} {:>9} {:>9} {:>12} {:>9} {:>6} {:>11} {:>5}",
            "id",
            "folding (PExSIMD)",
            "cycles",
            "latency",
            "frames/s",
            "est LUTs",
            "BRAMs",
            "fps/LUT",
            "fits"
        );
        for &i in &x.front {
            let c = &x.candidates[i];
            eprintln!(
                "{i:>5} {:<24} {:>9} {:>9} {:>12.0} {:>9} {:>6} {:>11.2} {:>5}",
                c.fold_label(),
                c.cycles_per_frame,
                c.latency_cycles,
                c.frames_per_second,
                c.estimate.luts,
                c.estimate.brams,
                c.frames_per_second_per_lut(),
                if c.fits { "yes" } else { "no" }
            );
        }
    }

    let mut synths = Vec::new();
    let mut asic_synths = Vec::new();
    if a.synth > 0 && device.is_asic() {
        let ids = pick_for_synth(&x, a.synth);
        eprintln!(
            "synthesising {} design(s) to {} cells (yosys, abc; flipchip asic's script) and \
             timing them (OpenSTA), here, 2 at a time, in {}",
            ids.len(),
            device.tech.as_deref().unwrap_or_default(),
            out.join("synth").display()
        );
        asic_synths = super::dse_asic::synth_all(&model, &x, &ids, &out)?;
        if let Some(worst) = asic_synths
            .iter()
            .map(|r| r.area_error.abs())
            .max_by(|a, b| a.total_cmp(b))
        {
            eprintln!(
                "estimate vs synthesis: worst area error {:.1}% over {} design(s)",
                100.0 * worst,
                asic_synths.len()
            );
        }
    } else if a.synth > 0 {
        let ids = pick_for_synth(&x, a.synth);
        let workdir = a.exec.workdir(&out)?;
        eprintln!(
            "synthesising {} design(s) with yosys {} ({}) in {}",
            ids.len(),
            device.family.synth_command(),
            match a.exec.executor {
                super::executor_args::Kind::Local => "here, 2 at a time",
                super::executor_args::Kind::Slurm => "as Slurm jobs",
            },
            workdir.join("synth").display()
        );
        synths = super::dse_synth::synth_all(&model, &x, &ids, &workdir, &a.exec)?;
        if let Some(worst) = synths
            .iter()
            .map(|r| r.lut_error.abs())
            .max_by(|a, b| a.total_cmp(b))
        {
            eprintln!(
                "estimate vs yosys: worst LUT error {:.1}% over {} design(s)",
                100.0 * worst,
                synths.len()
            );
        }
    }

    let synth_json: Vec<serde_json::Value> = synths
        .iter()
        .map(SynthResult::to_json)
        .chain(asic_synths.iter().map(super::dse_asic::AsicSynth::to_json))
        .collect();
    let extra = json!({
        "sim": sims.iter().map(SimCheck::to_json).collect::<Vec<_>>(),
        "synth": synth_json,
        "explore_seconds": explore_seconds,
    });
    let written =
        dse::write(&x, &out, Some(&extra)).with_context(|| format!("writing {}", out.display()))?;
    for p in &written {
        eprintln!("wrote {}", p.display());
    }
    if let Some(limits) = device.routing_limits() {
        eprintln!("{limits}");
    }
    let best = x.best();
    if let Some(b) = best {
        let c = &x.candidates[b];
        match c.area_um2 {
            Some(area) => eprintln!(
                "best fitting: {} -> {:.0} frames/s, {:.0} um^2 (est), {:.0} frames/s per mm^2",
                c.fold_label(),
                c.frames_per_second,
                area,
                c.frames_per_second_per_mm2()
            ),
            None => eprintln!(
                "best fitting: {} -> {:.0} frames/s, {} LUTs (est), {:.2} frames/s per LUT",
                c.fold_label(),
                c.frames_per_second,
                c.estimate.luts,
                c.frames_per_second_per_lut()
            ),
        }
    } else {
        eprintln!("no candidate fits {}", device.name);
    }
    if a.json {
        let best_json = best.map(|b| {
            let c = &x.candidates[b];
            let mut v = json!({
                "id": b,
                "folding": c.fold_label(),
                "layers": c.folds,
                "cycles_per_frame": c.cycles_per_frame,
                "frames_per_second": c.frames_per_second,
                "est_luts": c.estimate.luts,
                "frames_per_second_per_lut": c.frames_per_second_per_lut(),
            });
            if let Some(area) = c.area_um2 {
                v["area_um2"] = json!(area);
                v["frames_per_second_per_mm2"] = json!(c.frames_per_second_per_mm2());
            }
            v
        });
        super::print_json(&json!({
            "device": device.name,
            "out": out.display().to_string(),
            "candidates": x.candidates.len(),
            "front": x.front.len(),
            "best": best_json,
            "sim_agrees": disagree.is_empty(),
            "synth": synth_json,
        }));
    }
    if !disagree.is_empty() {
        bail!("the simulator disagrees with the predicted cycles for candidates {disagree:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use compiler::random::{random_model, Rng};
    use flip::encoding::Encoding;

    fn assert_simulates_as_predicted(model: &flip::model::Model, x: &dse::Exploration, i: usize) {
        let s = sim_check(model, x, i, 3).unwrap();
        assert!(
            s.agrees,
            "candidate {i} ({}): predicted {} cycles/frame, latency {}; simulated {} and {}",
            x.candidates[i].fold_label(),
            x.candidates[i].cycles_per_frame,
            x.candidates[i].latency_cycles,
            s.cycles_per_frame,
            s.latency_cycles
        );
    }

    #[test]
    fn candidates_cycles_match_the_simulator() {
        let mut rng = Rng(7);
        for (enc, widths) in [
            (Encoding::Threshold(100), vec![12, 6]),
            (Encoding::BitPlanes(2), vec![8, 4]),
        ] {
            let model = random_model(&mut rng, 6, 8, enc, &widths);
            let device = dse::devices().remove(0);
            let x = dse::explore(&model, &device).unwrap();
            assert!(x.candidates.len() > 3);
            // Every candidate, not only the front: the design is small.
            for i in 0..x.candidates.len() {
                assert_simulates_as_predicted(&model, &x, i);
            }
        }
    }

    /// Layers that apply each weight word to several frames hand them on in batches; the
    /// steady state the check measures is the predicted one.
    #[test]
    fn frames_per_weight_read_candidates_simulate_at_their_predicted_cycles() {
        let mut rng = Rng(5);
        let model = random_model(&mut rng, 784, 8, Encoding::Threshold(128), &[256, 256, 10]);
        let x = dse::explore(&model, &dse::device("ecp5-85k").unwrap()).unwrap();
        let mut shared: Vec<usize> = (0..x.candidates.len())
            .filter(|&i| !x.candidates[i].mmv.is_empty() && x.candidates[i].cycles_per_frame <= 64)
            .collect();
        assert!(shared.len() >= 12, "{} candidates", shared.len());
        // Fastest first, then a spread of the rest, every F among them.
        shared.sort_by_key(|&i| x.candidates[i].cycles_per_frame);
        let step = shared.len() / 12;
        let picked: Vec<usize> = shared.iter().step_by(step).copied().collect();
        let fs: std::collections::BTreeSet<usize> = picked
            .iter()
            .flat_map(|&i| x.candidates[i].mmv.clone())
            .collect();
        assert!(fs.contains(&2) && fs.contains(&4), "{fs:?}");
        for i in picked {
            assert_simulates_as_predicted(&model, &x, i);
        }
    }

    #[test]
    fn front_estimates_of_conv_designs_include_their_sized_fifos() {
        let mut rng = Rng(11);
        let mut with_fifos = 0;
        for _ in 0..4 {
            let model = compiler::random::random_conv_model(&mut rng);
            let device = dse::device("ecp5-25k").expect("a known device");
            let mut x = dse::explore(&model, &device).unwrap();
            for &i in x.front.clone().iter().take(3) {
                let before = x.candidates[i].estimate;
                let s = sim_check(&model, &x, i, 3).unwrap();
                let sized = s.sized.expect("a conv design is sized by simulation");
                x.add_fifos(i, &sized);
                x.add_fifos(i, &sized);
                let c = &x.candidates[i];
                // Exactly what the sized design costs, FIFOs once.
                assert_eq!(c.estimate, sized.estimate_for(device.family));
                assert_eq!(c.fits, device.fits(&c.estimate, c.area_um2));
                let fifos = c.fifos.expect("recorded");
                assert_eq!(before + fifos, c.estimate);
                if fifos.luts + fifos.ffs > 0 {
                    with_fifos += 1;
                    assert!(dse::candidate_json(&x, i)["fifo_luts"].as_u64() == Some(fifos.luts));
                }
            }
        }
        assert!(with_fifos > 0, "no front design got a FIFO");
    }
}
