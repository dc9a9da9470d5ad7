//! `flipchip train`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use flip::data::Dataset;
use flip::encoding::Encoding;
use flip::model::arch::LayerSpec;
use flip::train::{Augment, Holdout, Keep, OptimizerKind, PatienceOn, Progress, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Train a binary network (or a float baseline) and write a model file.
///
/// A validation split (default 10% of the training images, stratified by class and seeded by
/// --seed) is held out of training; --patience and --keep decide on it. Test accuracy is
/// measured and reported but never used for a decision.
#[derive(clap::Args, Clone, Debug)]
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
    /// Epoch budget (at least 1).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed for initialisation, shuffling, rounding and the validation split [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output model file.
    #[arg(long, default_value = "model.fcm")]
    pub out: PathBuf,
    /// Resume from a checkpoint written by an earlier run with the same data and settings.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Input encoding: threshold:T, thermometer:T1,T2,.. or bitplanes:P (default: bitplanes of
    /// up to 4 bits).
    #[arg(long)]
    pub encoding: Option<String>,
    /// Mini-batch size (at least 1; 2 for the batch-norm baselines). Default on images larger
    /// than 8x8: 200 for flip (20 for a convolutional net) and 100 for the baselines; 20 on the
    /// digits.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Training images held out for validation (0: none) [default: 10% of the training images].
    #[arg(long, value_name = "N", conflicts_with = "val_fraction")]
    pub val: Option<usize>,
    /// Fraction of the training images held out for validation, 0 <= F < 1.
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub val_fraction: Option<f64>,
    /// Stop when the watched measure (--patience-on) has not improved for this many epochs (0:
    /// run the whole budget).
    #[arg(long, default_value_t = 0)]
    pub patience: usize,
    /// What --patience watches: loss or accuracy, on the validation split (on the training
    /// batches with --val 0). Validation loss is the cross-entropy of the model's class scores;
    /// for binary models the integer scores are divided by a fixed temperature sqrt(n)/2, n the
    /// last layer's fan-in [default: loss].
    #[arg(long, value_name = "loss|accuracy")]
    pub patience_on: Option<PatienceOn>,
    /// Improvement that counts as progress for --patience: relative for a loss (0.001 =
    /// 0.1%), absolute for an accuracy (0.001 = 0.1 points); at least 0.
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    pub min_delta: f64,
    /// Which model to write: last (after the last epoch) or best (the epoch of the best
    /// validation accuracy; needs a validation split).
    #[arg(long, value_name = "last|best", default_value = "last")]
    pub keep: Keep,
    /// Show each training image in a random variant every epoch: none, or a comma-separated
    /// list of hflip (mirror left-right) and shift:K (move by up to K pixels, 1..=4). Validation
    /// and test images are never altered [default: none].
    #[arg(long)]
    pub augment: Option<String>,
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

impl Default for Args {
    /// The command-line defaults, as `flipchip train` with no options.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Bare {
            #[command(flatten)]
            args: Args,
        }
        <Bare as clap::Parser>::parse_from(["train"]).args
    }
}

/// Parses `--arch` (see [`flip::model::arch`]) and checks every layer's shape against the
/// data, so that a bad shape is reported with its token before any work starts.
fn parse_arch(arch: &str, data: &Dataset, encoding: &Encoding) -> anyhow::Result<Vec<LayerSpec>> {
    let specs = flip::model::arch::parse(arch, data.pixels()).map_err(anyhow::Error::msg)?;
    let input = flip::model::InputSpec {
        width: data.width,
        height: data.height,
        channels: data.channels,
        pixel_bits: data.pixel_bits,
        encoding: encoding.clone(),
    };
    flip::model::arch::shapes(&specs, &input, data.classes).map_err(anyhow::Error::msg)?;
    Ok(specs)
}

/// Defaults that depend on the data and the optimizer, each chosen on validation data
/// (`scripts/sweep-flip.sh`; results in the docs of `flip::train::flip`). Small data gets a
/// small net, more epochs, and (for the flip optimizer) a gentler learning rate, since 1438
/// images give few steps to average over. On larger data the flip optimizer takes batches of
/// 200: over seeds 1-3 on Fashion-MNIST 784-256-256-10 they reached 88.52% validation accuracy
/// against 88.33% at 100 and 88.02% at 50, and 88.18% at 400 (with `lr_end=0.02`). The
/// latent-weight baselines keep batches of 100 (not re-swept).
fn defaults(
    pixels: usize,
    classes: usize,
    optimizer: OptimizerKind,
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
            if optimizer == OptimizerKind::Flip {
                &[("lr", "0.5"), ("temperature", "1")]
            } else {
                &[]
            },
        )
    } else {
        let batch = if optimizer == OptimizerKind::Flip {
            200
        } else {
            100
        };
        (format!("{pixels}-256-256-{classes}"), 10, batch, &[])
    }
}

/// What one training run reports, for `train` and `seeds`.
pub struct Report {
    /// Test accuracy of the written model, 0..1.
    pub accuracy: f64,
    /// Validation accuracy of the written model; `None` with `--val 0`.
    pub val_accuracy: Option<f64>,
    /// Mean wall time of an epoch's training steps.
    pub epoch_seconds: f64,
    /// Bytes of training state per weight.
    pub state_bytes_per_weight: f64,
    /// The object `train --json` prints.
    pub json: serde_json::Value,
}

/// The run `a` describes on `data`, with its seed.
pub fn config(a: &Args, data: &Dataset, seed: u64) -> anyhow::Result<TrainConfig> {
    let optimizer: OptimizerKind = a.optimizer.parse().map_err(anyhow::Error::msg)?;
    let (arch, epochs, batch, tuned) = defaults(data.pixels(), data.classes, optimizer);
    let arch = a.arch.clone().unwrap_or(arch);
    let encoding: Encoding = match &a.encoding {
        Some(e) => e.parse().map_err(anyhow::Error::msg)?,
        None => Encoding::default_for(data.pixel_bits),
    };
    let layers = parse_arch(&arch, data, &encoding)?;
    let conv = layers.iter().any(|l| matches!(l, LayerSpec::Conv { .. }));
    // Convolutional nets on larger images take the flip optimizer's batches of 20: on
    // Fashion-MNIST c32-c32-p-c64-c64-p-256-10 a subset screen gave 83.17% validation against
    // 72.58% at 200 (`scripts/sweep-flip.sh fmnist-conv-subset`), and the full data, 10
    // epochs, seed 1, 86.48% against a run at 200 that swung between 42% and 73% (see the
    // flip module doc).
    let batch = if conv && optimizer == OptimizerKind::Flip && data.pixels() > 64 {
        20
    } else {
        batch
    };
    // Convolutional nets on the small digits: the flip optimizer's backward window of 1
    // (validation 94.21% over seeds 1-3 for c16-p-c32-64-10, against 91.20% at 0.7; see the
    // flip module doc). On larger images, 16-bit accumulators for the convolutions
    // (Fashion-MNIST c32-c32-p-c64-c64-p-256-10, 10 epochs, seeds 1-3: validation 90.16%
    // against 89.19% at 8 bits; on the digits the two tie, and there the wider accumulators
    // would cost most of the state).
    let conv_tuned: &[(&str, &str)] = match (
        conv && optimizer == OptimizerKind::Flip,
        data.pixels() <= 64,
    ) {
        (true, true) => &[("window", "1")],
        (true, false) => &[("conv_acc_bits", "16")],
        (false, _) => &[],
    };
    let params = tuned
        .iter()
        .chain(conv_tuned)
        .map(|(k, v)| Ok((k.to_string(), v.to_string())))
        .chain(a.set.iter().map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--set {kv}: expected KEY=VALUE"))
        }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let validation = match (a.val, a.val_fraction) {
        (Some(_), Some(_)) => bail!("--val and --val-fraction: give one or the other"),
        (Some(0), None) => Holdout::Off,
        (Some(n), None) => Holdout::Images(n),
        (None, Some(f)) if !(0.0..1.0).contains(&f) => {
            bail!("--val-fraction {f}: expected 0 <= F < 1 (a fraction of the training images)")
        }
        (None, Some(0.0)) => Holdout::Off,
        (None, Some(f)) => Holdout::Fraction(f),
        (None, None) => Holdout::DEFAULT,
    };
    if let Holdout::Images(n) = validation {
        if n >= data.train.len() {
            bail!(
                "--val {n}: {} has {} training images; the validation split must leave some to \
                 train on",
                data.name,
                data.train.len()
            );
        }
    }
    if a.epochs == Some(0) {
        bail!("--epochs 0: the epoch budget must be at least 1");
    }
    if a.batch == Some(0) {
        bail!("--batch 0: a mini-batch holds at least 1 image");
    }
    if !(a.min_delta >= 0.0 && a.min_delta.is_finite()) {
        bail!("--min-delta {}: expected a finite number >= 0", a.min_delta);
    }
    if a.keep == Keep::Best && validation == Holdout::Off {
        bail!(
            "--keep best picks the epoch of the best validation accuracy, but the validation \
             split is off (--val 0 or --val-fraction 0)"
        );
    }
    Ok(TrainConfig {
        optimizer,
        layers,
        encoding,
        epochs: a.epochs.unwrap_or(epochs),
        batch: a.batch.unwrap_or(batch),
        seed,
        patience: a.patience,
        min_delta: a.min_delta,
        patience_on: a.patience_on.unwrap_or(PatienceOn::Loss),
        validation,
        keep: a.keep,
        params,
        augment: match &a.augment {
            Some(s) => s
                .parse::<Augment>()
                .map_err(|e| anyhow::anyhow!("--augment {s}: {e}"))?,
            None => Augment::NONE,
        },
    })
}

/// Trains the configuration `a` describes with `seed` on `data` and writes the model to `out`
/// (and its checkpoint beside it); `resume` continues from a checkpoint. Progress goes to
/// stderr unless `--quiet`.
pub fn train_one(
    a: &Args,
    data: &Dataset,
    seed: u64,
    out: &Path,
    resume: Option<&Path>,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let cfg = config(a, data, seed)?;
    let ckpt = checkpoint_path(out);
    let show = !a.quiet;
    if cfg.validation == Holdout::Off {
        eprintln!("validation split off: test accuracy is reported, nothing is decided on it");
        if cfg.patience > 0 {
            eprintln!(
                "--patience watches the training {} (no validation split)",
                match cfg.patience_on {
                    PatienceOn::Loss => "loss",
                    PatienceOn::Accuracy => "accuracy",
                }
            );
        }
    }
    let bar_style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let result = flip::train::train(&cfg, data, Some(&ckpt), resume, |p| match p {
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
                let val = r
                    .val_accuracy
                    .map(|v| format!("val {:.2}%, ", v * 100.0))
                    .unwrap_or_default();
                eprintln!(
                    "epoch {}/{}: loss {:.4}, train {:.2}%, {val}test {:.2}%, {:.2} s",
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
    flip::model::format::save(&result.model, out)?;
    let accuracy = result.model.meta.test_accuracy.unwrap_or(0.0);
    let epoch_seconds = if result.history.is_empty() {
        0.0
    } else {
        result.history.iter().map(|h| h.seconds).sum::<f64>() / result.history.len() as f64
    };
    let weights: usize = cfg_weights(&result.model);
    let per_weight = result.state_bytes as f64 / weights.max(1) as f64;
    let val = result
        .val_accuracy
        .map(|v| {
            format!(
                "validation {:.2}% ({} images), ",
                v * 100.0,
                result.val_samples
            )
        })
        .unwrap_or_default();
    let kept = match cfg.keep {
        Keep::Best => format!(
            "; kept epoch {} (best validation accuracy)",
            result.kept_epoch + 1
        ),
        Keep::Last => String::new(),
    };
    eprintln!(
        "{}: {} {} on {}: {val}test accuracy {:.2}% ({}{kept}); {:.2} s per epoch; state {:.3} bytes/weight",
        out.display(),
        cfg.optimizer.name(),
        result.model.arch(),
        data.name,
        accuracy * 100.0,
        result.stopped,
        epoch_seconds,
        per_weight
    );
    let json = json!({
        "model": out.display().to_string(),
        "optimizer": cfg.optimizer.name(),
        "arch": result.model.arch(),
        "dataset": data.name,
        "seed": seed,
        "accuracy": accuracy,
        "samples": data.test.labels.len(),
        "val_accuracy": result.val_accuracy,
        "val_samples": result.val_samples,
        "train_samples": result.train_samples,
        "epochs": result.history.len(),
        "keep": cfg.keep.name(),
        "augment": cfg.augment.to_string(),
        "kept_epoch": result.kept_epoch + 1,
        "patience_on": result.watched.name(),
        "seconds": started.elapsed().as_secs_f64(),
        "epoch_seconds": epoch_seconds,
        "state_bytes": result.state_bytes,
        "weights": weights,
        "state_bytes_per_weight": per_weight,
        "stopped": result.stopped,
        "peak_memory_mib": super::peak_memory_mib(),
        "history": result.history.iter().map(|h| json!({
            "epoch": h.epoch + 1, "loss": h.loss, "train_accuracy": h.train_accuracy,
            "val_accuracy": h.val_accuracy, "val_loss": h.val_loss,
            "test_accuracy": h.test_accuracy, "seconds": h.seconds})).collect::<Vec<_>>(),
    });
    Ok(Report {
        accuracy,
        val_accuracy: result.val_accuracy,
        epoch_seconds,
        state_bytes_per_weight: per_weight,
        json,
    })
}

/// Runs `flipchip train`.
pub fn run(a: Args) -> anyhow::Result<()> {
    super::on_workers(a.threads, || run_on_worker(a))
}

fn run_on_worker(a: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let data = super::load_data(a.data.as_deref())?;
    let mut report = train_one(&a, &data, a.seed.unwrap_or(1), &a.out, a.resume.as_deref())?;
    if a.json {
        // The whole command, data loading included.
        report.json["seconds"] = json!(started.elapsed().as_secs_f64());
        super::print_json(&report.json);
    }
    Ok(())
}

/// Weights of a model: fan-in times neurons (output channels) per layer. A convolution's
/// weights are its kernels, shared by every output pixel, and a pool has none; counting
/// feature maps instead (`Layer::inputs() * Layer::outputs()`) would make the state of a
/// conv net look thousands of times smaller per weight than it is.
fn cfg_weights(m: &flip::model::Model) -> usize {
    use flip::model::Layer;
    m.layers
        .iter()
        .map(|l| match l {
            Layer::Binary(b) => b.inputs * b.outputs,
            Layer::Float(f) => f.inputs * f.outputs,
            Layer::MaxPool(_) => 0,
        })
        .sum()
}

/// Where the checkpoint of a run writing `out` goes: `out` with `.ckpt` appended.
pub fn checkpoint_path(out: &std::path::Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".ckpt");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use flip::data::Split;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn data(side: usize) -> Dataset {
        let split = Split {
            images: vec![0; 4 * side * side],
            labels: vec![0, 1, 0, 1],
        };
        Dataset {
            name: format!("{side}x{side}"),
            width: side,
            height: side,
            channels: 1,
            pixel_bits: 8,
            classes: 2,
            train: split.clone(),
            test: split,
        }
    }

    /// The flip settings and batch `flipchip train ARGS` gives on `side` x `side` images.
    fn tuned(side: usize, args: &[&str]) -> (Vec<(String, String)>, usize) {
        let cli = Cli::try_parse_from(std::iter::once("train").chain(args.iter().copied()))
            .expect("arguments parse");
        let cfg = config(&cli.args, &data(side), 1).expect("a valid configuration");
        (cfg.params, cfg.batch)
    }

    fn has(params: &[(String, String)], key: &str, value: &str) -> bool {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            == Some(value)
    }

    #[test]
    fn convolutional_nets_get_their_own_flip_defaults_by_image_size() {
        let (p, batch) = tuned(28, &["--arch", "c4-p-2"]);
        assert!(
            has(&p, "conv_acc_bits", "16") && !has(&p, "window", "1"),
            "{p:?}"
        );
        assert_eq!(batch, 20);
        let (p, _) = tuned(8, &["--arch", "c4-p-2"]);
        assert!(
            has(&p, "window", "1") && !has(&p, "conv_acc_bits", "16"),
            "{p:?}"
        );
        let (p, batch) = tuned(28, &["--arch", "784-16-2"]);
        assert!(
            !has(&p, "conv_acc_bits", "16") && !has(&p, "window", "1"),
            "{p:?}"
        );
        assert_ne!(batch, 20);
        // What --set gives comes later, so it wins.
        let (p, _) = tuned(28, &["--arch", "c4-p-2", "--set", "conv_acc_bits=8"]);
        assert!(has(&p, "conv_acc_bits", "8"), "{p:?}");
        // Other optimizers take no flip settings.
        let (p, _) = tuned(28, &["--arch", "c4-p-2", "--optimizer", "bop"]);
        assert!(!has(&p, "conv_acc_bits", "16"), "{p:?}");
    }
}
