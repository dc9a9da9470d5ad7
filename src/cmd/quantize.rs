//! `flipchip quantize`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use flip::quantize::QuantizeError;
use serde_json::json;

/// Quantise a float model (from `--optimizer float`) to f16, int8 and binary, report the test
/// accuracy at each precision and write the binary model.
#[derive(clap::Args)]
pub struct Args {
    /// The float model file.
    pub model: PathBuf,
    /// Directory with IDX files; the embedded digits without it.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where to write the binary model (default: the input's name with `-binary` added, e.g.
    /// `float.fcm` -> `float-binary.fcm`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

/// `dir/name.fcm` -> `dir/name-binary.fcm`.
fn default_out(model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let ext = model
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fcm".into());
    model.with_file_name(format!("{stem}-binary.{ext}"))
}

/// Runs `flipchip quantize`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let model = flip::model::format::load(&a.model)?;
    if model.is_binary() {
        bail!(
            "{}: not a float model (its {} layers are binary); quantize takes the output of \
             `flipchip train --optimizer float`",
            a.model.display(),
            model.arch()
        );
    }
    let data = super::load_data(a.data.as_deref())?;
    if model.input.pixels() != data.pixels() {
        bail!(
            "{}: the model reads {} pixels per image but {} has {}",
            a.model.display(),
            model.input.pixels(),
            data.name,
            data.pixels()
        );
    }
    let results = flip::quantize::quantize_all(&model, &data.test.images, &data.test.labels)
        .map_err(|e| match e {
            QuantizeError::NotFloat => anyhow::anyhow!("{}: not a float model", a.model.display()),
            other => anyhow::anyhow!("{}: {other}", a.model.display()),
        })?;
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.model));
    let binary = results
        .iter()
        .find(|r| r.precision == "binary")
        .context("quantize produced no binary model")?;
    flip::model::format::save(&binary.model, &out)?;

    let samples = data.test.labels.len();
    let base = results[0].accuracy;
    println!(
        "{}: {} on {} ({samples} test images)",
        a.model.display(),
        model.arch(),
        data.name
    );
    println!("{:<9} {:>9} {:>9}", "precision", "accuracy", "change");
    for r in &results {
        println!(
            "{:<9} {:>8.2}% {:>+8.2}%",
            r.precision,
            r.accuracy * 100.0,
            (r.accuracy - base) * 100.0
        );
    }
    eprintln!("{}: binary model written", out.display());
    if a.json {
        super::print_json(&json!({
            "model": a.model.display().to_string(),
            "dataset": data.name,
            "samples": samples,
            "precisions": results
                .iter()
                .map(|r| json!({"precision": r.precision, "accuracy": r.accuracy}))
                .collect::<Vec<_>>(),
            "binary_model": out.display().to_string(),
        }));
    }
    Ok(())
}
