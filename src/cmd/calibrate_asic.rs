//! `flipchip calibrate --family asic-osu018 DIR...`: fit the cell-area coefficients of
//! `compiler/src/asic_area.rs` to standard-cell synthesis results, as `calibrate` fits the LUT
//! coefficients to Yosys's FPGA runs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use compiler::asic_area::{self, N, NAMES};
use compiler::blocks::Family;
use serde_json::json;

/// One directory's measurement.
struct Row {
    dir: PathBuf,
    features: [f64; N],
    area: f64,
    cells: u64,
    fmax: f64,
    current: f64,
}

/// The clock a directory was synthesised at (its result file's), or the device's.
fn clock_of(dir: &Path, device: &compiler::dse::Device) -> f64 {
    std::fs::read_to_string(dir.join(super::dse_asic::RESULT))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["clock_mhz"].as_f64())
        .unwrap_or(device.fmax_mhz)
}

fn measure(
    dir: &Path,
    model: Option<&Path>,
    device: &compiler::dse::Device,
    synth: bool,
    label: &str,
) -> anyhow::Result<Row> {
    let tech = device.tech.as_deref().unwrap_or_default();
    let area_model = device
        .area_model()
        .with_context(|| format!("no area model for {tech}"))?;
    let design = super::calibrate::design_of(dir, model, Family::Asic)?;
    let clock = clock_of(dir, device);
    let (cells, area, _, fmax) = if synth {
        eprintln!("{label} {}: synthesis to {tech} cells ...", dir.display());
        let (m, seconds, cached) = super::dse_asic::measure(&design, dir, tech, clock)?;
        if !cached {
            eprintln!("{label} {}: {seconds:.0} s", dir.display());
        }
        m
    } else {
        super::dse_asic::current(&design, dir, tech, clock)?.with_context(|| {
            format!(
                "{}: no {} for the Verilog of this design at {clock} MHz (synthesise it with \
                 --synth)",
                dir.display(),
                super::dse_asic::RESULT
            )
        })?
    };
    let features = asic_area::design_features(&design);
    Ok(Row {
        dir: dir.to_path_buf(),
        current: area_model.area_um2(&features),
        features,
        area,
        cells,
        fmax,
    })
}

/// Runs `flipchip calibrate` for an ASIC device (`--family asic-osu018`).
pub fn run(a: &super::calibrate::Args, device: &compiler::dse::Device) -> anyhow::Result<()> {
    let n = a.dirs.len();
    let rows = super::parallel(n, if a.synth { 2 } else { 1 }, |j| {
        measure(
            &a.dirs[j],
            a.model.as_deref(),
            device,
            a.synth,
            &format!("[{}/{n}]", j + 1),
        )
    });
    let rows: Vec<Row> = rows.into_iter().collect::<anyhow::Result<_>>()?;
    if rows.is_empty() {
        anyhow::bail!("no synthesised designs to fit");
    }
    if let Some(r) = rows.iter().find(|r| r.area <= 0.0) {
        anyhow::bail!("{}: the synthesised area is 0", r.dir.display());
    }
    let samples: Vec<([f64; N], f64)> = rows.iter().map(|r| (r.features, r.area)).collect();
    let fit = compiler::calibrate::fit_vectors(&samples)
        .context("no non-negative fit exists for these designs")?;
    let fitted = |f: &[f64; N]| -> f64 { fit.iter().zip(f).map(|(c, x)| c * x).sum() };
    let err = |p: f64, y: f64| (p - y) / y;
    let mut csv = format!(
        "design,cells,area_um2,fmax_mhz,current_um2,current_error_pct,fit_um2,fit_error_pct,{}\n",
        NAMES.join(",")
    );
    eprintln!(
        "{:<44} {:>7} {:>11} {:>11} {:>8} {:>11} {:>8} {:>7}",
        "design", "cells", "area um^2", "current", "error", "fit", "error", "Fmax"
    );
    for r in &rows {
        let f = fitted(&r.features);
        eprintln!(
            "{:<44} {:>7} {:>11.0} {:>11.0} {:>+7.1}% {:>11.0} {:>+7.1}% {:>7.1}",
            r.dir.display(),
            r.cells,
            r.area,
            r.current,
            100.0 * err(r.current, r.area),
            f,
            100.0 * err(f, r.area),
            r.fmax
        );
        let feats: Vec<String> = r.features.iter().map(|x| format!("{x:.0}")).collect();
        csv.push_str(&format!(
            "{},{},{:.1},{:.1},{:.0},{:+.1},{f:.0},{:+.1},{}\n",
            r.dir.display(),
            r.cells,
            r.area,
            r.fmax,
            r.current,
            100.0 * err(r.current, r.area),
            100.0 * err(f, r.area),
            feats.join(",")
        ));
    }
    let worst = |p: &dyn Fn(&Row) -> f64| {
        rows.iter()
            .map(|r| err(p(r), r.area).abs())
            .fold(0.0, f64::max)
    };
    let worst_current = worst(&|r| r.current);
    let worst_fit = worst(&|r| fitted(&r.features));
    eprintln!(
        "worst area error over {} design(s): current coefficients {:.1}%, fitted {:.1}%",
        rows.len(),
        100.0 * worst_current,
        100.0 * worst_fit
    );
    eprintln!(
        "fitted coefficients (um^2) for `{}` in compiler/src/asic_area.rs:",
        device.tech.as_deref().unwrap_or_default()
    );
    let coef: Vec<String> = fit.iter().map(|c| format!("{c:.4}")).collect();
    eprintln!("    [{}]  // {}", coef.join(", "), NAMES.join(", "));
    if let Some(path) = &a.csv {
        std::fs::write(path, &csv).with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        let coef: serde_json::Map<String, serde_json::Value> = NAMES
            .iter()
            .zip(fit)
            .map(|(n, c)| (n.to_string(), json!(c)))
            .collect();
        super::print_json(&json!({
            "family": device.name,
            "designs": rows.len(),
            "coefficients": coef,
            "worst_error_current": worst_current,
            "worst_error_fit": worst_fit,
            "rows": rows.iter().map(|r| json!({
                "dir": r.dir.display().to_string(),
                "cells": r.cells,
                "area_um2": r.area,
                "fmax_mhz": r.fmax,
                "current_um2": r.current,
                "fit_um2": fitted(&r.features),
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(())
}
