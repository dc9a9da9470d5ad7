//! `flipchip train`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use flip::encoding::Encoding;
use flip::train::{OptimizerKind, Progress, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Train a binary network (or a float baseline) and write a model file.
#[derive(clap::Args, Clone)]
pub struct Args {
    /// Directory with the four IDX files (MNIST layout); the embedded 8x8 digits without it.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Layer widths from input to classes, e.g. 784-256-256-10 (the first must match the image).
    #[arg(long)]
    pub arch: Option<String>,
    /// flip (default), binaryconnect, bop or float.
    #[arg(long, default_value = "flip")]
    pub optimizer: String,
    /// Epoch budget.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed for initialisation, shuffling and rounding.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output model file.
    #[arg(long, default_value = "model.fcm")]
    pub out: PathBuf,
    /// Resume from a checkpoint written by an earlier run with the same settings.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Input encoding: threshold:T, thermometer:T1,T2,.. or bitplanes:P (default: bitplanes of
    /// up to 4 bits).
    #[arg(long)]
    pub encoding: Option<String>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Stop when the loss has not improved for this many epochs (0: run the whole budget).
    #[arg(long, default_value_t = 0)]
    pub patience: usize,
    /// Relative improvement of the loss that counts as progress for --patience.
    #[arg(long, default_value_t = 0.001)]
    pub min_delta: f64,
    /// Optimizer setting key=value (repeatable); see the crate docs of each optimizer.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Worker threads (default: all cores). Same seed and thread count give the same model.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `784-256-256-10` into the hidden and output widths, checking the input width.
fn parse_arch(arch: &str, pixels: usize, classes: usize) -> anyhow::Result<Vec<usize>> {
    let widths: Vec<usize> = arch
        .split('-')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .with_context(|| format!("--arch {arch}: '{w}' is not a width"))
        })
        .collect::<anyhow::Result<_>>()?;
    if widths.len() < 2 {
        bail!("--arch {arch}: need at least an input and an output width");
    }
    if widths[0] != pixels {
        bail!(
            "--arch {arch}: the data has {pixels} pixels per image, not {}",
            widths[0]
        );
    }
    if widths[widths.len() - 1] != classes {
        bail!(
            "--arch {arch}: the data has {classes} classes, not {}",
            widths[widths.len() - 1]
        );
    }
    if widths.contains(&0) {
        bail!("--arch {arch}: a layer of width 0");
    }
    Ok(widths[1..].to_vec())
}

/// Defaults that depend on the data: small data gets a small net, more epochs, and (for the
/// flip optimizer) a gentler learning rate, since 1438 images give few steps to average over.
fn defaults(
    pixels: usize,
    classes: usize,
) -> (
    String,
    usize,
    usize,
    &'static [(&'static str, &'static str)],
) {
    if pixels <= 64 {
        (
            format!("{pixels}-128-{classes}"),
            30,
            20,
            &[("lr", "0.5"), ("temperature", "1")],
        )
    } else {
        (format!("{pixels}-256-256-{classes}"), 10, 100, &[])
    }
}

/// Runs `flipchip train`.
pub fn run(a: Args) -> anyhow::Result<()> {
    super::set_threads(a.threads);
    let started = Instant::now();
    let data = super::load_data(a.data.as_deref())?;
    let (arch, epochs, batch, tuned) = defaults(data.pixels(), data.classes);
    let arch = a.arch.clone().unwrap_or(arch);
    let layers = parse_arch(&arch, data.pixels(), data.classes)?;
    let optimizer: OptimizerKind = a.optimizer.parse().map_err(anyhow::Error::msg)?;
    let encoding: Encoding = match &a.encoding {
        Some(e) => e.parse().map_err(anyhow::Error::msg)?,
        None => Encoding::default_for(data.pixel_bits),
    };
    let optimizer_tuned = if a.optimizer == "flip" { tuned } else { &[] };
    let params = optimizer_tuned
        .iter()
        .map(|(k, v)| Ok((k.to_string(), v.to_string())))
        .chain(a.set.iter().map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--set {kv}: expected KEY=VALUE"))
        }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cfg = TrainConfig {
        optimizer,
        layers,
        encoding,
        epochs: a.epochs.unwrap_or(epochs),
        batch: a.batch.unwrap_or(batch),
        seed: a.seed,
        patience: a.patience,
        min_delta: a.min_delta,
        params,
    };
    let ckpt = checkpoint_path(&a.out);
    let show = !a.quiet;
    let bar_style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let result = flip::train::train(&cfg, &data, Some(&ckpt), a.resume.as_deref(), |p| match p {
        Progress::Batch {
            epoch,
            done,
            total,
            loss,
            accuracy,
        } if show => {
            let b = bar.get_or_insert_with(|| {
                let b = ProgressBar::new(total as u64).with_style(bar_style.clone());
                b.set_prefix(format!("{}/{}", epoch + 1, cfg.epochs));
                b
            });
            b.set_position(done as u64);
            if done % 10 == 0 || done == total {
                b.set_message(format!("loss {loss:.4} acc {:.2}%", accuracy * 100.0));
            }
        }
        Progress::Epoch(r) => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            if show {
                eprintln!(
                    "epoch {}/{}: loss {:.4}, train {:.2}%, test {:.2}%, {:.2} s",
                    r.epoch + 1,
                    cfg.epochs,
                    r.loss,
                    r.train_accuracy * 100.0,
                    r.test_accuracy * 100.0,
                    r.seconds
                );
            }
        }
        _ => {}
    })
    .with_context(|| format!("training on {}", data.name))?;
    flip::model::format::save(&result.model, &a.out)?;
    let accuracy = result.model.meta.test_accuracy.unwrap_or(0.0);
    let epoch_seconds = if result.history.is_empty() {
        0.0
    } else {
        result.history.iter().map(|h| h.seconds).sum::<f64>() / result.history.len() as f64
    };
    let weights: usize = cfg_weights(&result.model);
    eprintln!(
        "{}: {} {} on {}: test accuracy {:.2}% ({}); {:.2} s per epoch; state {:.3} bytes/weight",
        a.out.display(),
        cfg.optimizer.name(),
        result.model.arch(),
        data.name,
        accuracy * 100.0,
        result.stopped,
        epoch_seconds,
        result.state_bytes as f64 / weights.max(1) as f64
    );
    if a.json {
        super::print_json(&json!({
            "model": a.out.display().to_string(),
            "optimizer": cfg.optimizer.name(),
            "arch": result.model.arch(),
            "dataset": data.name,
            "accuracy": accuracy,
            "samples": data.test.labels.len(),
            "train_samples": data.train.labels.len(),
            "epochs": result.history.len(),
            "seconds": started.elapsed().as_secs_f64(),
            "epoch_seconds": epoch_seconds,
            "state_bytes": result.state_bytes,
            "weights": weights,
            "state_bytes_per_weight": result.state_bytes as f64 / weights.max(1) as f64,
            "stopped": result.stopped,
            "peak_memory_mib": super::peak_memory_mib(),
            "history": result.history.iter().map(|h| json!({
                "epoch": h.epoch + 1, "loss": h.loss, "train_accuracy": h.train_accuracy,
                "test_accuracy": h.test_accuracy, "seconds": h.seconds})).collect::<Vec<_>>(),
        }));
    }
    Ok(())
}

/// Number of weights in a model.
fn cfg_weights(m: &flip::model::Model) -> usize {
    m.layers.iter().map(|l| l.inputs() * l.outputs()).sum()
}

/// Where the checkpoint of a run writing `out` goes: `out` with `.ckpt` appended.
pub fn checkpoint_path(out: &std::path::Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".ckpt");
    PathBuf::from(s)
}
