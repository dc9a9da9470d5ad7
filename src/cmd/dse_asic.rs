//! `dse --device asic-osu018 --synth K`: each picked front design synthesised to the library's
//! cells with `flipchip asic`'s Yosys and ABC script at the clock the exploration expects, its
//! cell area read through the liberty file and held against the estimate, and its Fmax timed
//! by OpenSTA (before layout). Each design gets its own directory under `OUT/synth/`, with the
//! model, fold.json and `dse_asic.json`, which `flipchip calibrate --family asic-...` reads.

use std::path::{Path, PathBuf};

use anyhow::Context;
use compiler::dse::Exploration;
use serde_json::json;

/// The result file in each synthesis directory.
pub const RESULT: &str = "dse_asic.json";

/// One synthesis of a front design.
#[derive(Clone, Debug, PartialEq)]
pub struct AsicSynth {
    /// Candidate index.
    pub id: usize,
    /// Folding.
    pub folding: String,
    /// The library.
    pub tech: String,
    /// Cells Yosys and ABC mapped to.
    pub cells: u64,
    /// Their area (um^2, the liberty's areas).
    pub area_um2: f64,
    /// The share of it in flip-flops.
    pub flip_flop_area_um2: f64,
    /// The estimate.
    pub est_area_um2: f64,
    /// `(est - synthesised) / synthesised`.
    pub area_error: f64,
    /// The clock synthesised for (the exploration's), MHz.
    pub clock_mhz: f64,
    /// OpenSTA's Fmax of the netlist (no wire load, ideal clock), MHz.
    pub fmax_mhz: f64,
    /// Seconds of synthesis and timing.
    pub seconds: f64,
    /// Taken from an earlier run on the same Verilog, library and clock.
    pub cached: bool,
    /// The directory.
    pub dir: String,
}

impl AsicSynth {
    /// As JSON (the keys `dse.json`'s `synth` entries have for an ASIC device).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "folding": self.folding,
            "tech": self.tech,
            "cells": self.cells,
            "area_um2": self.area_um2,
            "flip_flop_area_um2": self.flip_flop_area_um2,
            "est_area_um2": self.est_area_um2,
            "area_error": self.area_error,
            "clock_mhz": self.clock_mhz,
            "fmax_mhz": self.fmax_mhz,
            "seconds": self.seconds,
            "cached": self.cached,
            "dir": self.dir,
        })
    }
}

/// What a synthesis directory's result was made from: the Verilog, the library, the clock and
/// the Yosys version.
fn key(design: &compiler::ir::Design, tech: &str, period_ps: u64, yosys: &str) -> String {
    let mut key = testbenches::Key::new();
    key.add(yosys.as_bytes())
        .add(tech.as_bytes())
        .add(period_ps.to_string().as_bytes());
    for (name, text) in compiler::verilog::emit(design) {
        key.add(name.as_bytes()).add(text.as_bytes());
    }
    key.hex()
}

/// A result file's measurement: cells, area, flip-flop area, Fmax.
pub type Measured = (u64, f64, f64, f64);

/// The measurement in `dir` if it was made from exactly `design` for `tech` at `clock_mhz`.
pub fn current(
    design: &compiler::ir::Design,
    dir: &Path,
    tech: &str,
    clock_mhz: f64,
) -> anyhow::Result<Option<Measured>> {
    let yosys = tools::require(&["yosys"], asic::INSTALL_ASIC)?;
    let version = tools::version(&yosys, "-V")?;
    let period_ps = (1e6 / clock_mhz).round() as u64;
    let path = dir.join(RESULT);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    if v["key"].as_str() != Some(key(design, tech, period_ps, &version).as_str()) {
        return Ok(None);
    }
    let num = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("{}: {k:?} is not a number", path.display()))
    };
    Ok(Some((
        num("cells")? as u64,
        num("area_um2")?,
        num("flip_flop_area_um2")?,
        num("fmax_mhz")?,
    )))
}

/// Writes `design` into `dir`, synthesises it to `tech`'s cells for `clock_mhz` and times it,
/// unless `dir` already holds the result for the same Verilog, library and clock; returns the
/// measurement, the seconds taken and whether it was reused.
pub fn measure(
    design: &compiler::ir::Design,
    dir: &Path,
    tech: &str,
    clock_mhz: f64,
) -> anyhow::Result<(Measured, f64, bool)> {
    if let Some(m) = current(design, dir, tech, clock_mhz)? {
        return Ok((m, 0.0, true));
    }
    let t = asic::Tech::load(tech)?;
    let yosys = tools::require(&["yosys"], asic::INSTALL_ASIC)?;
    let sta = tools::require(&["sta"], asic::INSTALL_ASIC)?;
    let version = tools::version(&yosys, "-V")?;
    let period_ps = (1e6 / clock_mhz).round() as u64;
    let _ = std::fs::remove_file(dir.join(RESULT));
    compiler::write_build(design, dir)?;
    let sources: Vec<PathBuf> = design.file_names().iter().map(PathBuf::from).collect();
    let syn = asic::synth::run(
        &yosys,
        dir,
        &sources,
        compiler::TOP,
        &t.liberty,
        period_ps,
        None,
        &mut |_| {},
    )
    .with_context(|| format!("synthesising {} to {tech} cells", dir.display()))?;
    let lib = asic::liberty::read(&t.liberty)?;
    let (area, ff_area) = syn.area(&lib);
    let (timing, sta_seconds) = asic::sta::timing(
        &sta,
        dir,
        &t.liberty,
        &asic::gate::absolute(&syn.netlist),
        compiler::TOP,
        period_ps as f64 / 1000.0,
    )
    .with_context(|| format!("timing {}", dir.display()))?;
    let m = (syn.cells(), area, ff_area, timing.fmax_mhz());
    let path = dir.join(RESULT);
    let v = json!({
        "key": key(design, tech, period_ps, &version),
        "tech": tech,
        "clock_mhz": clock_mhz,
        "cells": m.0,
        "area_um2": m.1,
        "flip_flop_area_um2": m.2,
        "fmax_mhz": m.3,
        "cells_by_kind": syn.cells_by_kind,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((m, syn.seconds + sta_seconds, false))
}

/// Synthesises candidates `ids` of `x` (an ASIC device's exploration) under `out/synth/`, two
/// at a time, printing a line per design as it finishes; the results in the order of `ids`.
pub fn synth_all(
    model: &flip::model::Model,
    x: &Exploration,
    ids: &[usize],
    out: &Path,
) -> anyhow::Result<Vec<AsicSynth>> {
    let tech = x
        .device
        .tech
        .clone()
        .with_context(|| format!("device {} names no library", x.device.name))?;
    let model_area = x
        .device
        .area_model()
        .with_context(|| format!("no area model for library {tech}"))?;
    let n = ids.len();
    let results = super::parallel(n, 2, |j| -> anyhow::Result<AsicSynth> {
        let i = ids[j];
        let c = &x.candidates[i];
        let dir = out.join("synth").join(c.fold_label().replace(' ', "_"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (design, _) = super::dse::sized_design(model, x, i)?;
        // Kept beside the Verilog so that `flipchip calibrate` can rebuild the design.
        let copy = dir.join("model.fcm");
        flip::model::format::save(model, &copy)
            .with_context(|| format!("writing {}", copy.display()))?;
        let ((cells, area, ff_area, fmax), seconds, cached) =
            measure(&design, &dir, &tech, c.clock_mhz)
                .with_context(|| format!("candidate {i} ({})", c.fold_label()))?;
        // The estimate of the design as built (FIFOs sized), which the exploration's is for
        // a dense design.
        let est = c
            .area_um2
            .unwrap_or_else(|| model_area.design_area_um2(&design));
        let r = AsicSynth {
            id: i,
            folding: c.fold_label(),
            tech: tech.clone(),
            cells,
            area_um2: area,
            flip_flop_area_um2: ff_area,
            est_area_um2: est,
            area_error: (est - area) / area.max(1e-9),
            clock_mhz: c.clock_mhz,
            fmax_mhz: fmax,
            seconds,
            cached,
            dir: dir.display().to_string(),
        };
        eprintln!(
            "[{}/{n}] synth candidate {i} ({}): {} cells, {:.0} um^2 ({:.0}% flip-flops), Fmax \
             {:.1} MHz ({}); estimate {:.0} um^2 ({:+.1}%)",
            j + 1,
            r.folding,
            r.cells,
            r.area_um2,
            100.0 * r.flip_flop_area_um2 / r.area_um2.max(1e-9),
            r.fmax_mhz,
            if cached {
                "earlier run".to_string()
            } else {
                format!("{seconds:.0} s")
            },
            r.est_area_um2,
            100.0 * r.area_error
        );
        Ok(r)
    });
    results.into_iter().collect()
}
