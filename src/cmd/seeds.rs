//! `flipchip seeds`: one training configuration over several seeds, and the spread of what it
//! gives.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::{json, Value};

use super::train::{self, Report};

/// Train one configuration once per seed and report the mean, standard deviation, minimum and
/// maximum of test accuracy, validation accuracy, epoch time and training state.
///
/// Takes every `train` option except --seed and --resume. Run `k` writes `OUT` with `-seedK`
/// before the extension (`model.fcm` -> `model-seed2.fcm`). The standard deviation is the
/// sample one (divided by n - 1), so it needs two seeds or more.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The training configuration, as for `flipchip train`.
    #[command(flatten)]
    pub train: train::Args,
    /// Seeds to train with, comma-separated (e.g. 1,2,3).
    #[arg(long, value_delimiter = ',', required = true, value_name = "S1,S2,..")]
    pub seeds: Vec<u64>,
}

/// `dir/model.fcm` -> `dir/model-seed2.fcm`.
pub fn seed_path(out: &Path, seed: u64) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let name = match out.extension() {
        Some(e) => format!("{stem}-seed{seed}.{}", e.to_string_lossy()),
        None => format!("{stem}-seed{seed}"),
    };
    out.with_file_name(name)
}

/// Mean, sample standard deviation (n - 1; `None` for one value), minimum and maximum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation, `None` below two values.
    pub std: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Stats {
    /// The statistics of `xs`; `None` when empty.
    pub fn of(xs: &[f64]) -> Option<Stats> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let std = (xs.len() > 1)
            .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Some(Stats {
            mean,
            std,
            min: xs.iter().cloned().fold(f64::INFINITY, f64::min),
            max: xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// Runs `flipchip seeds`.
pub fn run(a: Args) -> anyhow::Result<()> {
    if a.train.seed.is_some() {
        bail!("seeds takes --seeds S1,S2,..; --seed belongs to train");
    }
    if a.train.resume.is_some() {
        bail!("seeds starts every run afresh; resume a single run with `flipchip train --resume`");
    }
    let mut seen = Vec::new();
    for &s in &a.seeds {
        if seen.contains(&s) {
            bail!("--seeds: seed {s} is given twice (its runs would write the same file)");
        }
        seen.push(s);
    }
    let threads = a.train.threads;
    super::on_workers(threads, || run_on_worker(a))
}

fn run_on_worker(a: Args) -> anyhow::Result<()> {
    let data = super::load_data(a.train.data.as_deref())?;
    let mut reports: Vec<Report> = Vec::new();
    for (i, &seed) in a.seeds.iter().enumerate() {
        let out = seed_path(&a.train.out, seed);
        eprintln!(
            "== seed {seed} ({} of {}): {}",
            i + 1,
            a.seeds.len(),
            out.display()
        );
        reports.push(train::train_one(&a.train, &data, seed, &out, None)?);
    }

    let measures: [(&str, &str, f64, Vec<f64>); 4] = [
        (
            "accuracy",
            "test accuracy %",
            100.0,
            reports.iter().map(|r| r.accuracy).collect(),
        ),
        (
            "val_accuracy",
            "validation accuracy %",
            100.0,
            reports.iter().filter_map(|r| r.val_accuracy).collect(),
        ),
        (
            "epoch_seconds",
            "epoch time s",
            1.0,
            reports.iter().map(|r| r.epoch_seconds).collect(),
        ),
        (
            "state_bytes_per_weight",
            "state bytes/weight",
            1.0,
            reports.iter().map(|r| r.state_bytes_per_weight).collect(),
        ),
    ];
    let seeds: Vec<String> = a.seeds.iter().map(u64::to_string).collect();
    println!(
        "{} on {}, seeds {}: std is the sample standard deviation (n - 1)",
        a.train.optimizer,
        data.name,
        seeds.join(", ")
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9}",
        "measure", "mean", "std", "min", "max"
    );
    let mut summary = serde_json::Map::new();
    for (key, label, scale, xs) in &measures {
        let stats = Stats::of(xs);
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3}", v * scale));
        println!(
            "{:<22} {:>9} {:>9} {:>9} {:>9}",
            label,
            cell(stats.map(|s| s.mean)),
            cell(stats.and_then(|s| s.std)),
            cell(stats.map(|s| s.min)),
            cell(stats.map(|s| s.max))
        );
        summary.insert(format!("{key}_mean"), json!(stats.map(|s| s.mean)));
        summary.insert(format!("{key}_std"), json!(stats.and_then(|s| s.std)));
        summary.insert(format!("{key}_min"), json!(stats.map(|s| s.min)));
        summary.insert(format!("{key}_max"), json!(stats.map(|s| s.max)));
    }
    if a.train.json {
        summary.insert("seeds".into(), json!(a.seeds));
        summary.insert("std_definition".into(), json!("sample (n - 1)"));
        summary.insert(
            "runs".into(),
            Value::Array(reports.into_iter().map(|r| r.json).collect()),
        );
        super::print_json(&Value::Object(summary));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_the_sample_deviation() {
        let s = Stats::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((s.mean, s.min, s.max), (2.5, 1.0, 4.0));
        // Squared deviations sum to 5; divided by n - 1 = 3.
        assert!((s.std.unwrap() - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(Stats::of(&[7.0]).unwrap().std, None);
        assert_eq!(Stats::of(&[]), None);
    }

    #[test]
    fn seed_paths_go_before_the_extension() {
        assert_eq!(
            seed_path(Path::new("out/model.fcm"), 2),
            PathBuf::from("out/model-seed2.fcm")
        );
        assert_eq!(seed_path(Path::new("m"), 10), PathBuf::from("m-seed10"));
    }
}
