//! `flipchip calibrate`: fit the LUT estimate to Yosys runs on build directories.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use compiler::blocks::{Family, Features};
use compiler::calibrate::{self, Sample};
use compiler::passes::folding::FoldSpec;
use serde_json::json;

/// Fit the LUT cost coefficients to Yosys: each directory is a build directory
/// (`flipchip compile`, or `synth/*` of `flipchip dse --synth`) holding fold.json, model.fcm
/// (or give --model) and Yosys's `stat_<family>.txt` (or give --synth to make it).
#[derive(clap::Args)]
pub struct Args {
    /// Build directories.
    #[arg(required_unless_present = "rows")]
    pub dirs: Vec<PathBuf>,
    /// Also fit to the designs recorded in this calibration CSV (as `--csv` writes it; its
    /// features and Yosys's counts as recorded, not recomputed): designs whose build
    /// directories are gone. Repeatable.
    #[arg(long, value_name = "CSV")]
    pub rows: Vec<PathBuf>,
    /// FPGA family whose coefficients to fit (`ice40`, `ecp5`), or an ASIC device whose
    /// cell-area coefficients to fit (`asic-osu018`, `asic-osu035`, `asic-osu050`; the
    /// directories of `dse --device asic-... --synth`).
    #[arg(long)]
    pub family: String,
    /// Model for directories without model.fcm.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Synthesise directories without a stat report for the Verilog they hold (2 at a time).
    #[arg(long)]
    pub synth: bool,
    /// Also write the per-design table as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Fit only these coefficients (names as printed, comma-separated), holding the others at
    /// the shipped ones: for a feature added after the designs behind the others were
    /// synthesised. Default: fit all.
    #[arg(long, value_delimiter = ',')]
    pub fit: Vec<String>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

fn family(name: &str) -> anyhow::Result<Family> {
    match name {
        "ice40" => Ok(Family::Ice40),
        "ecp5" => Ok(Family::Ecp5),
        _ => bail!(
            "unknown family {name:?}; known families: ice40, ecp5, and for cell area {}",
            compiler::dse::devices()
                .iter()
                .filter(|d| d.is_asic())
                .map(|d| d.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The design a build directory holds, rebuilt from its model and fold.json.
pub(super) fn design_of(
    dir: &Path,
    model: Option<&Path>,
    family: Family,
) -> anyhow::Result<compiler::ir::Design> {
    let own = dir.join("model.fcm");
    let path = if own.exists() {
        own
    } else if let Some(m) = model {
        m.to_path_buf()
    } else {
        bail!(
            "{} has no model.fcm; give the model with --model",
            dir.display()
        );
    };
    let m = super::compile::load_model(&path)?;
    let fold = compiler::read_fold_file(&dir.join("fold.json"))?;
    let mut d = compiler::compile(&m, &FoldSpec::Manual(fold)).with_context(|| {
        format!(
            "compiling {} with {}/fold.json",
            path.display(),
            dir.display()
        )
    })?;
    d.family = family;
    Ok(d)
}

/// One design's measurement.
struct Row {
    sample: Sample,
    yosys_brams: u64,
    est_brams: u64,
    current: f64,
}

fn measure(
    dir: &Path,
    model: Option<&Path>,
    fam: Family,
    synth: bool,
    label: &str,
) -> anyhow::Result<Row> {
    let design = design_of(dir, model, fam)?;
    let text = if synth {
        eprintln!(
            "{label} {}: yosys {} ...",
            dir.display(),
            fam.synth_command()
        );
        let (text, seconds, cached) = super::dse::yosys_stat(&design, dir, fam)?;
        if !cached {
            eprintln!("{label} {}: {seconds:.0} s", dir.display());
        }
        text
    } else {
        super::dse::current_stat(&design, dir, fam).with_context(|| {
            format!(
                "{}: no stat_{}.txt for the Verilog of this design (synthesise it with --synth)",
                dir.display(),
                fam.name()
            )
        })?
    };
    let (luts, yosys_brams) = fam
        .count_luts(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("reading the stat report in {}", dir.display()))?;
    let est = design.estimate_for(fam);
    let sample = Sample::new(dir.display().to_string(), &design, fam, luts);
    Ok(Row {
        current: fam.costs().luts(&sample.features),
        sample,
        yosys_brams,
        est_brams: est.brams,
    })
}

/// Runs `flipchip calibrate`.
pub fn run(a: Args) -> anyhow::Result<()> {
    if let Some(device) = compiler::dse::device(&a.family).filter(|d| d.is_asic()) {
        if !a.fit.is_empty() {
            bail!("--fit applies to the LUT coefficients of an FPGA family, not to cell area");
        }
        return super::calibrate_asic::run(&a, &device);
    }
    let fam = family(&a.family)?;
    let free = a
        .fit
        .iter()
        .map(|name| {
            Features::NAMES
                .iter()
                .position(|n| n == name)
                .with_context(|| {
                    format!(
                        "--fit: no coefficient {name:?}; the coefficients are {}",
                        Features::NAMES.join(", ")
                    )
                })
        })
        .collect::<anyhow::Result<Vec<usize>>>()?;
    let n = a.dirs.len();
    let rows = super::parallel(n, if a.synth { 2 } else { 1 }, |j| {
        measure(
            &a.dirs[j],
            a.model.as_deref(),
            fam,
            a.synth,
            &format!("[{}/{n}]", j + 1),
        )
    });
    let mut rows: Vec<Row> = rows.into_iter().collect::<anyhow::Result<_>>()?;
    for path in &a.rows {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for r in
            calibrate::parse_csv(&text, &path.display().to_string()).map_err(anyhow::Error::msg)?
        {
            rows.push(Row {
                current: fam.costs().luts(&r.sample.features),
                sample: r.sample,
                yosys_brams: r.yosys_brams,
                est_brams: r.est_brams,
            });
        }
    }
    let samples: Vec<Sample> = rows.iter().map(|r| r.sample.clone()).collect();
    let fit = if free.is_empty() {
        calibrate::fit(&samples)?
    } else {
        calibrate::fit_only(&samples, fam.costs().coefficients(), &free)?
    };

    let err = |p: f64, y: u64| (p - y as f64) / y.max(1) as f64;
    let mut csv = format!(
        "design,yosys_luts,current_luts,current_error_pct,fit_luts,fit_error_pct,yosys_brams,est_brams,{}\n",
        Features::NAMES.join(",")
    );
    eprintln!(
        "{:<40} {:>9} {:>9} {:>8} {:>9} {:>8} {:>11}",
        "design", "yosys", "current", "error", "fit", "error", "BRAMs y/est"
    );
    for r in &rows {
        let f = fit.luts(&r.sample.features);
        let y = r.sample.luts;
        eprintln!(
            "{:<40} {:>9} {:>9.0} {:>+7.1}% {:>9.0} {:>+7.1}% {:>5}/{:<5}",
            r.sample.name,
            y,
            r.current,
            100.0 * err(r.current, y),
            f,
            100.0 * err(f, y),
            r.yosys_brams,
            r.est_brams
        );
        let feats: Vec<String> = r
            .sample
            .features
            .vector()
            .iter()
            .map(|x| format!("{x}"))
            .collect();
        csv.push_str(&format!(
            "{},{y},{:.0},{:+.1},{f:.0},{:+.1},{},{},{}\n",
            r.sample.name,
            r.current,
            100.0 * err(r.current, y),
            100.0 * err(f, y),
            r.yosys_brams,
            r.est_brams,
            feats.join(",")
        ));
    }
    let worst = |p: &dyn Fn(&Row) -> f64| {
        rows.iter()
            .map(|r| err(p(r), r.sample.luts).abs())
            .fold(0.0, f64::max)
    };
    let worst_current = worst(&|r| r.current);
    let worst_fit = worst(&|r| fit.luts(&r.sample.features));
    eprintln!(
        "worst LUT error over {} design(s): current coefficients {:.1}%, fitted {:.1}%",
        rows.len(),
        100.0 * worst_current,
        100.0 * worst_fit
    );
    eprintln!(
        "fitted coefficients for `{}` in compiler/src/blocks/cost.rs:",
        fam.name()
    );
    for (name, c) in Features::NAMES.iter().zip(fit.coefficients) {
        eprintln!("    {name}: {c:.4},");
    }
    if let Some(path) = &a.csv {
        std::fs::write(path, &csv).with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        let coef: serde_json::Map<String, serde_json::Value> = Features::NAMES
            .iter()
            .zip(fit.coefficients)
            .map(|(n, c)| (n.to_string(), json!(c)))
            .collect();
        super::print_json(&json!({
            "family": fam.name(),
            "designs": rows.len(),
            "coefficients": coef,
            "worst_error_current": worst_current,
            "worst_error_fit": worst_fit,
            "rows": rows.iter().map(|r| json!({
                "dir": r.sample.name,
                "yosys_luts": r.sample.luts,
                "current_luts": r.current.round(),
                "fit_luts": fit.luts(&r.sample.features).round(),
                "yosys_brams": r.yosys_brams,
                "est_brams": r.est_brams,
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(())
}
