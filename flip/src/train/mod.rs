//! The training loop shared by every optimizer: batching, schedules, evaluation, checkpoints
//! and the stopping rule.
//!
//! Decisions (when to stop, which epoch's model to keep) look at a validation split carved
//! from the training images ([`Holdout`], [`crate::data::Dataset::split_validation`]), never at
//! the test split: test accuracy is measured after every epoch and reported, nothing more.
//!
//! Every source of randomness is a pure function of the seed and the position in training
//! (epoch, step, layer, neuron), never of a generator threaded through the run. That is what
//! makes a resumed run identical to an uninterrupted one, and the result independent of how
//! rows are spread over threads.

pub mod augment;
pub mod binaryconnect;
pub mod bop;
pub mod checkpoint;
pub mod flip;
pub mod float;
pub mod intgemm;
pub mod latent;
pub mod rng;

use std::path::Path;
use std::time::Instant;

use crate::data::{Dataset, Split};
use crate::encoding::Encoding;
use crate::model::arch::{self, LayerSpec};
use crate::model::{InputSpec, Metadata, Model};
use crate::reference;

pub use augment::Augment;
pub use checkpoint::CheckpointError;

/// The training set as optimizers see it: raw pixels, labels, and the first layer's encoded
/// bits precomputed once.
pub struct TrainData<'a> {
    /// Input shape and encoding.
    pub input: &'a InputSpec,
    /// Raw images, `input.pixels()` bytes each.
    pub images: &'a [u8],
    /// Labels.
    pub labels: &'a [u8],
    /// Encoded first-layer planes, `words` per sample.
    pub encoded: Vec<u64>,
    /// Words per encoded sample.
    pub words: usize,
    /// Number of classes.
    pub classes: usize,
}

impl<'a> TrainData<'a> {
    /// Encodes every training image once.
    pub fn new(input: &'a InputSpec, images: &'a [u8], labels: &'a [u8], classes: usize) -> Self {
        use rayon::prelude::*;
        let p = input.pixels();
        let words = input.encoding.encoded_words(p);
        let mut encoded = vec![0u64; words * labels.len()];
        encoded
            .par_chunks_mut(words.max(1))
            .zip(images.par_chunks(p))
            .for_each(|(out, img)| {
                input.encoding.encode(input.pixel_bits, img, out);
            });
        TrainData {
            input,
            images,
            labels,
            encoded,
            words,
            classes,
        }
    }

    /// Encoded planes of sample `i`.
    pub fn encoded(&self, i: usize) -> &[u64] {
        &self.encoded[i * self.words..(i + 1) * self.words]
    }

    /// Raw pixels of sample `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let p = self.input.pixels();
        &self.images[i * p..(i + 1) * p]
    }
}

/// Loss and hits summed over one mini-batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchStats {
    /// Sum of per-sample cross-entropy losses.
    pub loss: f64,
    /// Samples classified correctly by the forward pass that trained on them.
    pub correct: usize,
}

/// What an optimizer must provide to the loop.
pub trait Optimizer: Send {
    /// One update from the samples `batch`; `step` is the global step index and `progress`
    /// the fraction of the planned run already done (0..1), for schedules.
    fn step(&mut self, data: &TrainData, batch: &[u32], step: u64, progress: f64) -> BatchStats;
    /// The model as it stands, with empty metadata.
    fn export(&self) -> Model;
    /// Bytes of persistent training state: weights, accumulators, optimizer memory.
    fn state_bytes(&self) -> usize;
    /// Serialised state for a checkpoint.
    fn save_state(&self) -> Vec<u8>;
    /// Restores state written by [`Optimizer::save_state`].
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), String>;
}

/// Which optimizer to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Boolean-domain flip optimizer (default).
    Flip,
    /// Latent f32 weights, straight-through estimator, Adam.
    BinaryConnect,
    /// Binary optimizer flipping on the gradient's moving average.
    Bop,
    /// Full-precision MLP.
    Float,
}

impl OptimizerKind {
    /// The name used on the command line and in model metadata.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Flip => "flip",
            OptimizerKind::BinaryConnect => "binaryconnect",
            OptimizerKind::Bop => "bop",
            OptimizerKind::Float => "float",
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flip" => Ok(OptimizerKind::Flip),
            "binaryconnect" => Ok(OptimizerKind::BinaryConnect),
            "bop" => Ok(OptimizerKind::Bop),
            "float" => Ok(OptimizerKind::Float),
            _ => Err(format!(
                "unknown optimizer '{s}' (flip, binaryconnect, bop, float)"
            )),
        }
    }
}

/// How many training images to hold out for validation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Holdout {
    /// No validation split: decisions fall back to training measures.
    Off,
    /// This many images.
    Images(usize),
    /// This fraction of the training images (0 <= f < 1), rounded to the nearest image and at
    /// least one when f > 0.
    Fraction(f64),
}

impl Holdout {
    /// What `flipchip train` holds out unless told otherwise: 10% of the training images.
    pub const DEFAULT: Holdout = Holdout::Fraction(0.1);

    /// Images held out of a training split of `train` images.
    pub fn count(self, train: usize) -> Result<usize, String> {
        let n = match self {
            Holdout::Off => 0,
            Holdout::Images(n) => n,
            Holdout::Fraction(f) => {
                if !(0.0..1.0).contains(&f) {
                    return Err(format!(
                        "validation fraction {f}: expected 0 <= fraction < 1"
                    ));
                }
                let n = (f * train as f64).round() as usize;
                if f > 0.0 {
                    n.max(1)
                } else {
                    0
                }
            }
        };
        if n > 0 && n >= train {
            return Err(format!(
                "a validation split of {n} images leaves none of the {train} training images \
                 to train on"
            ));
        }
        Ok(n)
    }
}

impl std::fmt::Display for Holdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holdout::Off => write!(f, "none"),
            Holdout::Images(n) => write!(f, "{n} images"),
            Holdout::Fraction(x) => write!(f, "fraction {x}"),
        }
    }
}

/// What `--patience` watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatienceOn {
    /// Validation loss (training loss without a validation split); progress is a relative drop
    /// of `min_delta`.
    Loss,
    /// Validation accuracy (training accuracy without a validation split); progress is a rise
    /// of `min_delta` (absolute, as a fraction of the images).
    Accuracy,
}

impl std::str::FromStr for PatienceOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "loss" => Ok(PatienceOn::Loss),
            "accuracy" => Ok(PatienceOn::Accuracy),
            _ => Err(format!("'{s}': expected loss or accuracy")),
        }
    }
}

/// Which epoch's model a run returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The model after the last epoch run.
    Last,
    /// The model of the epoch with the best validation accuracy (the earliest on ties).
    Best,
}

impl Keep {
    /// `last` or `best`.
    pub fn name(self) -> &'static str {
        match self {
            Keep::Last => "last",
            Keep::Best => "best",
        }
    }
}

impl std::str::FromStr for Keep {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "last" => Ok(Keep::Last),
            "best" => Ok(Keep::Best),
            _ => Err(format!("'{s}': expected last or best")),
        }
    }
}

/// The measure a stopping rule watches, resolved against whether a validation split exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watched {
    /// [`EpochRecord::val_loss`].
    ValidationLoss,
    /// [`EpochRecord::val_accuracy`].
    ValidationAccuracy,
    /// [`EpochRecord::loss`].
    TrainingLoss,
    /// [`EpochRecord::train_accuracy`].
    TrainingAccuracy,
}

impl Watched {
    /// What `on` means when a validation split does (`validation`) or does not exist.
    pub fn resolve(on: PatienceOn, validation: bool) -> Watched {
        match (on, validation) {
            (PatienceOn::Loss, true) => Watched::ValidationLoss,
            (PatienceOn::Accuracy, true) => Watched::ValidationAccuracy,
            (PatienceOn::Loss, false) => Watched::TrainingLoss,
            (PatienceOn::Accuracy, false) => Watched::TrainingAccuracy,
        }
    }

    /// `validation loss`, `training accuracy`, ...
    pub fn name(self) -> &'static str {
        match self {
            Watched::ValidationLoss => "validation loss",
            Watched::ValidationAccuracy => "validation accuracy",
            Watched::TrainingLoss => "training loss",
            Watched::TrainingAccuracy => "training accuracy",
        }
    }

    /// The watched value of an epoch, signed so that lower is better.
    fn cost(self, r: &EpochRecord) -> f64 {
        match self {
            Watched::ValidationLoss => r.val_loss.unwrap_or(f64::INFINITY),
            Watched::ValidationAccuracy => -r.val_accuracy.unwrap_or(0.0),
            Watched::TrainingLoss => r.loss,
            Watched::TrainingAccuracy => -r.train_accuracy,
        }
    }

    /// True when `cost` improves on `best` by `min_delta` (relative for a loss, absolute for
    /// an accuracy).
    fn improves(self, cost: f64, best: f64, min_delta: f64) -> bool {
        match self {
            Watched::ValidationLoss | Watched::TrainingLoss => {
                best.is_infinite() || cost < best * (1.0 - min_delta)
            }
            Watched::ValidationAccuracy | Watched::TrainingAccuracy => {
                best.is_infinite() || cost < best - min_delta
            }
        }
    }

    /// Epochs since the last improvement in `history`.
    pub fn stale_epochs(self, history: &[EpochRecord], min_delta: f64) -> usize {
        let mut best = f64::INFINITY;
        let mut since = 0;
        for h in history {
            let c = self.cost(h);
            if self.improves(c, best, min_delta) {
                best = c;
                since = 0;
            } else {
                since += 1;
            }
        }
        since
    }
}

/// Everything that defines a training run. Two runs with equal configs and thread counts
/// produce identical model files.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Layers after the input, the last a dense layer of `classes` neurons
    /// (`[Dense(256), Dense(256), Dense(10)]`; see [`crate::model::arch`]).
    pub layers: Vec<LayerSpec>,
    /// Input encoding.
    pub encoding: Encoding,
    /// Epoch budget.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Seed for initialisation, shuffling and stochastic rounding.
    pub seed: u64,
    /// Stop early when the watched measure ([`TrainConfig::patience_on`]) has not improved by
    /// `min_delta` for this many epochs; 0 disables.
    pub patience: usize,
    /// Improvement that counts as progress: relative for a loss, absolute for an accuracy.
    pub min_delta: f64,
    /// What `patience` watches.
    pub patience_on: PatienceOn,
    /// Training images held out for validation (seeded by `seed`).
    pub validation: Holdout,
    /// Which epoch's model to return.
    pub keep: Keep,
    /// Optimizer-specific settings as `key=value`.
    pub params: Vec<(String, String)>,
    /// Variants training images are shown in ([`augment`]).
    pub augment: Augment,
}

impl TrainConfig {
    /// A config with the default decisions: 10% validation, patience off (`min_delta`
    /// 0.001, on validation loss), keep the last epoch's model, no settings.
    pub fn new(
        optimizer: OptimizerKind,
        layers: Vec<LayerSpec>,
        encoding: Encoding,
        epochs: usize,
        batch: usize,
        seed: u64,
    ) -> Self {
        TrainConfig {
            optimizer,
            layers,
            encoding,
            epochs,
            batch,
            seed,
            patience: 0,
            min_delta: 0.001,
            patience_on: PatienceOn::Loss,
            validation: Holdout::DEFAULT,
            keep: Keep::Last,
            params: Vec::new(),
            augment: Augment::NONE,
        }
    }

    /// Rejects settings of the loop itself that make no sense.
    pub fn check(&self) -> Result<(), String> {
        if self.epochs == 0 {
            return Err("the epoch budget must be at least 1".into());
        }
        if self.batch == 0 {
            return Err("batch size must be at least 1".into());
        }
        if !(self.min_delta >= 0.0 && self.min_delta.is_finite()) {
            return Err(format!(
                "min_delta {}: expected a finite number >= 0",
                self.min_delta
            ));
        }
        let off = match self.validation {
            Holdout::Off | Holdout::Images(0) => true,
            Holdout::Images(_) => false,
            Holdout::Fraction(f) => {
                if !(0.0..1.0).contains(&f) {
                    return Err(format!(
                        "validation fraction {f}: expected 0 <= fraction < 1"
                    ));
                }
                f == 0.0
            }
        };
        if self.keep == Keep::Best && off {
            return Err(
                "keeping the best epoch's model needs a validation split to judge it by \
                 (the validation split is off)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Progress of a run, reported after every batch and epoch.
#[derive(Clone, Debug)]
pub enum Progress {
    /// A batch finished: epoch (0-based), batches done, batches per epoch, mean loss and
    /// accuracy so far in this epoch.
    Batch {
        epoch: usize,
        done: usize,
        total: usize,
        loss: f64,
        accuracy: f64,
    },
    /// An epoch finished.
    Epoch(EpochRecord),
}

/// What one epoch achieved.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// Epoch index, 0-based.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training accuracy of the forward passes during the epoch.
    pub train_accuracy: f64,
    /// Test accuracy of the exported model after the epoch (reported, never used for a
    /// decision).
    pub test_accuracy: f64,
    /// Validation accuracy of the exported model after the epoch; `None` without a split.
    pub val_accuracy: Option<f64>,
    /// Validation loss of the exported model ([`accuracy_and_loss`]); `None` without a split.
    pub val_loss: Option<f64>,
    /// Wall time of the epoch's training steps (evaluation excluded).
    pub seconds: f64,
}

/// The outcome of [`train`].
pub struct TrainResult {
    /// The kept model ([`TrainConfig::keep`]) with metadata filled in.
    pub model: Model,
    /// One record per epoch run, including those restored from a checkpoint.
    pub history: Vec<EpochRecord>,
    /// Index into `history` of the epoch whose model was kept.
    pub kept_epoch: usize,
    /// Validation accuracy of the kept model; `None` without a validation split.
    pub val_accuracy: Option<f64>,
    /// Images in the validation split.
    pub val_samples: usize,
    /// Images trained on (the training split less the validation split).
    pub train_samples: usize,
    /// What the stopping rule watched.
    pub watched: Watched,
    /// Bytes of persistent training state.
    pub state_bytes: usize,
    /// Why training stopped.
    pub stopped: String,
}

/// Accuracy and mean cross-entropy of `model` on a split.
///
/// The loss of a binary model needs a temperature, since its scores are integers whose spread
/// grows with the last layer's fan-in `n`: the logits are `score / (sqrt(n) / 2)`, which is the
/// scale the latent-weight baselines start their score head at (`z = 2s - n` times
/// `1 / sqrt(n)`). The temperature is fixed, so the loss compares epochs of one run, not runs
/// of different shapes. A float model's scores are its logits.
pub fn accuracy_and_loss(model: &Model, split: &Split) -> (f64, f64) {
    use rayon::prelude::*;
    if split.is_empty() {
        return (0.0, 0.0);
    }
    let p = model.input.pixels();
    let scale = match model.layers.last() {
        Some(l) if model.is_binary() => 2.0 / (l.inputs().max(1) as f64).sqrt(),
        _ => 1.0,
    };
    // Binary scores come from the batched forward pass; the per-image terms are collected in
    // order and summed on one thread, so the result does not depend on the thread count.
    let logits: Vec<f64> = if model.is_binary() {
        crate::gemm::forward(model, &split.images)
            .scores
            .iter()
            .map(|&s| s as f64 * scale)
            .collect()
    } else {
        split
            .images
            .par_chunks(p)
            .flat_map_iter(|img| {
                reference::float_scores(model, img)
                    .into_iter()
                    .map(f64::from)
            })
            .collect()
    };
    let classes = logits.len() / split.len();
    let per: Vec<(bool, f64)> = logits
        .par_chunks(classes.max(1))
        .zip(split.labels.par_iter())
        .map(|(z, &label)| {
            let top = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = top + z.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
            let hit = reference::argmax(z) == label as usize;
            (hit, lse - z[label as usize])
        })
        .collect();
    let n = per.len() as f64;
    let hits = per.iter().filter(|(h, _)| *h).count() as f64;
    let loss: f64 = per.iter().map(|(_, l)| l).sum();
    (hits / n, loss / n)
}

/// Builds the optimizer a config asks for.
pub fn make_optimizer(
    cfg: &TrainConfig,
    input: &InputSpec,
    classes: usize,
) -> Result<Box<dyn Optimizer>, String> {
    // Every optimizer trains dense, convolution and pool layers; the shapes are checked here.
    let shapes = arch::shapes(&cfg.layers, input, classes)?;
    if cfg.optimizer != OptimizerKind::Flip && cfg.batch < 2 {
        return Err(format!(
            "optimizer {} uses batch norm and needs a batch of at least 2 samples, not {}",
            cfg.optimizer.name(),
            cfg.batch
        ));
    }
    Ok(match cfg.optimizer {
        OptimizerKind::Flip => Box::new(flip::FlipOptimizer::new(
            input.clone(),
            &shapes,
            cfg.seed,
            &cfg.params,
        )?),
        OptimizerKind::BinaryConnect => Box::new(binaryconnect::BinaryConnect::new(
            input.clone(),
            &shapes,
            cfg.seed,
            &cfg.params,
        )?),
        OptimizerKind::Bop => Box::new(bop::Bop::new(
            input.clone(),
            &shapes,
            cfg.seed,
            &cfg.params,
        )?),
        OptimizerKind::Float => Box::new(float::FloatOptimizer::new(
            input.clone(),
            &shapes,
            cfg.seed,
            &cfg.params,
        )?),
    })
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The configuration does not fit the data.
    #[error("{0}")]
    Config(String),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Runs training on `data`, writing a checkpoint to `checkpoint` after every epoch and resuming
/// from `resume` if given.
///
/// The validation split ([`TrainConfig::validation`]) is carved from `data.train` first; the
/// optimizer trains on the rest. After every epoch the exported model is measured on the
/// validation and the test split; `patience` and `keep` look at the validation measures only.
pub fn train(
    cfg: &TrainConfig,
    data: &Dataset,
    checkpoint: Option<&Path>,
    resume: Option<&Path>,
    mut progress: impl FnMut(Progress),
) -> Result<TrainResult, TrainError> {
    let input = InputSpec {
        width: data.width,
        height: data.height,
        channels: data.channels,
        pixel_bits: data.pixel_bits,
        encoding: cfg.encoding.clone(),
    };
    cfg.check().map_err(TrainError::Config)?;
    cfg.augment
        .check(data.width, data.height)
        .map_err(|e| TrainError::Config(format!("{}: {e}", data.name)))?;
    cfg.encoding
        .check(data.pixel_bits)
        .map_err(TrainError::Config)?;
    let held = cfg
        .validation
        .count(data.train.len())
        .map_err(|e| TrainError::Config(format!("{}: {e}", data.name)))?;
    let split;
    let (train_split, val_split) = if held == 0 {
        (&data.train, None)
    } else {
        split = data
            .split_validation(held, cfg.seed)
            .map_err(|e| TrainError::Config(e.to_string()))?;
        (&split.0, Some(&split.1))
    };
    let watched = Watched::resolve(cfg.patience_on, val_split.is_some());
    let mut opt = make_optimizer(cfg, &input, data.classes).map_err(TrainError::Config)?;
    let identity = checkpoint::identity(cfg, data, held);
    let mut history = Vec::new();
    // The model of the best validation accuracy so far, always tracked so that `keep` can be
    // changed on resume.
    let mut best: Option<(usize, f64, Model)> = None;
    if let Some(path) = resume {
        let ck = checkpoint::read(path)?;
        checkpoint::check_matches(&ck, &identity, path)?;
        opt.load_state(&ck.state)
            .map_err(|e| CheckpointError::Corrupt {
                path: path.to_owned(),
                problem: e,
            })?;
        best = ck
            .best_model()
            .map_err(|problem| CheckpointError::Corrupt {
                path: path.to_owned(),
                problem,
            })?;
        history = ck.history;
    }
    let td = TrainData::new(
        &input,
        &train_split.images,
        &train_split.labels,
        data.classes,
    );
    let n = td.labels.len();
    let batches = n.div_ceil(cfg.batch);
    let total_steps = (batches * cfg.epochs).max(1) as f64;
    let mut stopped = format!("epoch budget of {} reached", cfg.epochs);

    for epoch in history.len()..cfg.epochs {
        if cfg.patience > 0 && watched.stale_epochs(&history, cfg.min_delta) >= cfg.patience {
            stopped = format!(
                "{} converged: no {} improvement for {} epochs",
                watched.name(),
                match cfg.patience_on {
                    PatienceOn::Loss => format!("{:.3}%", cfg.min_delta * 100.0),
                    PatienceOn::Accuracy => format!("{:.3} point", cfg.min_delta * 100.0),
                },
                cfg.patience
            );
            break;
        }
        let order = rng::permutation(n, rng::mix(cfg.seed, 0x5eed_0000 + epoch as u64));
        let start = Instant::now();
        let (mut loss, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (b, batch) in order.chunks(cfg.batch).enumerate() {
            let step = (epoch * batches + b) as u64;
            let progress_share = step as f64 / total_steps;
            let st = if cfg.augment.is_none() {
                opt.step(&td, batch, step, progress_share)
            } else {
                let (images, labels) = augmented_batch(cfg, &td, batch, epoch);
                let view = TrainData::new(&input, &images, &labels, data.classes);
                let local: Vec<u32> = (0..batch.len() as u32).collect();
                opt.step(&view, &local, step, progress_share)
            };
            loss += st.loss;
            correct += st.correct;
            seen += batch.len();
            progress(Progress::Batch {
                epoch,
                done: b + 1,
                total: batches,
                loss: loss / seen as f64,
                accuracy: correct as f64 / seen as f64,
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        let model = opt.export();
        let val = val_split.map(|v| accuracy_and_loss(&model, v));
        let rec = EpochRecord {
            epoch,
            loss: loss / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test_accuracy: reference::accuracy(&model, &data.test.images, &data.test.labels),
            val_accuracy: val.map(|v| v.0),
            val_loss: val.map(|v| v.1),
            seconds,
        };
        if let Some(acc) = rec.val_accuracy {
            if best.as_ref().is_none_or(|b| acc > b.1) {
                best = Some((epoch, acc, model));
            }
        }
        history.push(rec.clone());
        if let Some(path) = checkpoint {
            let best_ref = best.as_ref().map(|(e, _, m)| (*e, m));
            checkpoint::write(path, &identity, &history, &opt.save_state(), best_ref)?;
        }
        progress(Progress::Epoch(rec));
    }

    let (kept_epoch, mut model) = match (cfg.keep, best) {
        (Keep::Best, Some((e, _, m))) => (e, m),
        _ => (history.len().saturating_sub(1), opt.export()),
    };
    let test_accuracy = reference::accuracy(&model, &data.test.images, &data.test.labels);
    let val_accuracy = val_split.map(|v| reference::accuracy(&model, &v.images, &v.labels));
    let mut extra: Vec<(String, String)> = vec![
        ("epochs".to_string(), history.len().to_string()),
        ("batch".to_string(), cfg.batch.to_string()),
        ("val_samples".to_string(), held.to_string()),
    ];
    if !cfg.augment.is_none() {
        extra.push(("augment".to_string(), cfg.augment.to_string()));
    }
    if cfg.keep == Keep::Best {
        extra.push(("kept_epoch".to_string(), (kept_epoch + 1).to_string()));
    }
    if let Some(v) = val_accuracy {
        extra.push(("val_accuracy".to_string(), format!("{v:.4}")));
    }
    model.meta = Metadata {
        dataset: data.name.clone(),
        optimizer: cfg.optimizer.name().into(),
        seed: cfg.seed,
        test_accuracy: Some(test_accuracy),
        extra: extra
            .into_iter()
            .chain(cfg.params.iter().cloned())
            .collect(),
    };
    Ok(TrainResult {
        model,
        history,
        kept_epoch,
        val_accuracy,
        val_samples: held,
        train_samples: n,
        watched,
        state_bytes: opt.state_bytes(),
        stopped,
    })
}

/// The images and labels of `batch` (indices into `td`), each in the variant of `epoch`,
/// drawn from the seed, the epoch and the image's index.
fn augmented_batch(
    cfg: &TrainConfig,
    td: &TrainData,
    batch: &[u32],
    epoch: usize,
) -> (Vec<u8>, Vec<u8>) {
    let input = td.input;
    let p = input.pixels();
    let shape = (input.width, input.height, input.channels);
    let mut images = vec![0u8; p * batch.len()];
    for (out, &i) in images.chunks_mut(p).zip(batch) {
        let key = rng::mix(cfg.seed, ((epoch as u64) << 32) | i as u64);
        cfg.augment.apply(td.image(i as usize), shape, key, out);
    }
    let labels = batch.iter().map(|&i| td.labels[i as usize]).collect();
    (images, labels)
}

/// Looks up `key` in optimizer settings, parsing it, or returns `default`.
pub fn param<T: std::str::FromStr>(
    params: &[(String, String)],
    key: &str,
    default: T,
) -> Result<T, String> {
    match params.iter().rev().find(|(k, _)| k == key) {
        Some((_, v)) => v
            .parse()
            .map_err(|_| format!("setting {key}={v}: not a valid value")),
        None => Ok(default),
    }
}

/// The valid values of a numeric setting (all finite).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// `x > 0` (learning rates).
    Positive,
    /// `x >= 0` (thresholds).
    NonNegative,
    /// `0 <= x <= 1` (fractions such as a schedule's end point).
    Unit,
    /// `0 < x <= 1` (rates that must move, such as a running-statistics momentum).
    UnitPositive,
}

impl Range {
    /// True when `x` is finite and in the range.
    pub fn contains(self, x: f64) -> bool {
        x.is_finite()
            && match self {
                Range::Positive => x > 0.0,
                Range::NonNegative => x >= 0.0,
                Range::Unit => (0.0..=1.0).contains(&x),
                Range::UnitPositive => x > 0.0 && x <= 1.0,
            }
    }

    /// `lr > 0`, `0 <= lr_end <= 1`, ... for `key`.
    pub fn describe(self, key: &str) -> String {
        match self {
            Range::Positive => format!("{key} > 0"),
            Range::NonNegative => format!("{key} >= 0"),
            Range::Unit => format!("0 <= {key} <= 1"),
            Range::UnitPositive => format!("0 < {key} <= 1"),
        }
    }
}

/// Looks up a numeric setting like [`param`] and rejects a value outside `range` (NaN and
/// infinities included) with a message that gives the range.
pub fn param_in<T>(
    params: &[(String, String)],
    key: &str,
    default: T,
    range: Range,
) -> Result<T, String>
where
    T: std::str::FromStr + Into<f64> + Copy + std::fmt::Display,
{
    let v = param(params, key, default)?;
    if !range.contains(v.into()) {
        // Quote the value as given (`1e-3`, not `0.001`).
        let given = params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map_or_else(|| v.to_string(), |(_, s)| s.clone());
        return Err(format!(
            "setting {key}={given}: out of range, expected {} (a finite number)",
            range.describe(key)
        ));
    }
    Ok(v)
}

/// Rejects settings an optimizer does not know, so a typo is not silently ignored.
pub fn check_params(
    params: &[(String, String)],
    known: &[&str],
    optimizer: &str,
) -> Result<(), String> {
    for (k, _) in params {
        if !known.contains(&k.as_str()) {
            return Err(format!(
                "optimizer {optimizer} has no setting '{k}' (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// Trains `make(9)` over `batches` on `threads` threads, at step `split` (if any) saving its
/// state and resuming in a differently initialised `make(1234)`; the final state and model.
/// Tests compare runs to show that neither the thread count nor a resume changes a bit.
#[cfg(test)]
pub(crate) fn run_steps(
    make: &(dyn Fn(u64) -> Box<dyn Optimizer> + Sync),
    data: &TrainData,
    batches: &[Vec<u32>],
    threads: usize,
    split: Option<usize>,
) -> (Vec<u8>, Model) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    pool.install(|| {
        let mut opt = make(9);
        let steps = batches.len() as f64;
        for (t, b) in batches.iter().enumerate() {
            if Some(t) == split {
                let state = opt.save_state();
                opt = make(1234);
                opt.load_state(&state).expect("a state just saved loads");
            }
            opt.step(data, b, t as u64, t as f64 / steps);
        }
        (opt.save_state(), opt.export())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_string(), v.to_string())]
    }

    #[test]
    fn ranged_settings_reject_what_lies_outside() {
        assert_eq!(param_in(&[], "lr", 0.5, Range::Positive), Ok(0.5));
        assert_eq!(
            param_in(&set("lr", "2"), "lr", 0.5, Range::Positive),
            Ok(2.0)
        );
        for bad in ["0", "-1", "NaN", "inf"] {
            let err = param_in(&set("lr", bad), "lr", 0.5, Range::Positive).unwrap_err();
            assert!(err.contains("expected lr > 0"), "{err}");
        }
        assert!(param_in(&set("m", "1.5"), "m", 0.1f32, Range::UnitPositive).is_err());
        assert!(param_in(&set("m", "1"), "m", 0.1f32, Range::UnitPositive).is_ok());
        assert!(param_in(&set("e", "0"), "e", 0.1, Range::Unit).is_ok());
        assert!(param_in(&set("e", "-0.1"), "e", 0.1, Range::Unit).is_err());
        assert!(param_in(&set("t", "0"), "t", 1e-6f32, Range::NonNegative).is_ok());
        assert!(param_in(&set("t", "-1e-9"), "t", 1e-6f32, Range::NonNegative).is_err());
        assert!(param_in(&set("lr", "fast"), "lr", 0.5, Range::Positive)
            .unwrap_err()
            .contains("not a valid value"));
    }

    #[test]
    fn every_baseline_rejects_out_of_range_settings() {
        let input = InputSpec {
            width: 8,
            height: 8,
            channels: 1,
            pixel_bits: 5,
            encoding: Encoding::BitPlanes(2),
        };
        let cases: &[(OptimizerKind, &str, &str, &str)] = &[
            (OptimizerKind::BinaryConnect, "lr", "-0.1", "lr > 0"),
            (
                OptimizerKind::BinaryConnect,
                "lr_end",
                "2",
                "0 <= lr_end <= 1",
            ),
            (OptimizerKind::BinaryConnect, "lr_norm", "0", "lr_norm > 0"),
            (OptimizerKind::BinaryConnect, "init", "1.5", "0 < init <= 1"),
            (
                OptimizerKind::BinaryConnect,
                "momentum",
                "NaN",
                "0 < momentum <= 1",
            ),
            (OptimizerKind::Bop, "gamma", "0", "0 < gamma <= 1"),
            (OptimizerKind::Bop, "gamma_end", "-1", "0 <= gamma_end <= 1"),
            (OptimizerKind::Bop, "tau", "-1e-3", "tau >= 0"),
            (OptimizerKind::Bop, "lr", "inf", "lr > 0"),
            (OptimizerKind::Bop, "lr_end", "1.01", "0 <= lr_end <= 1"),
            (OptimizerKind::Bop, "momentum", "0", "0 < momentum <= 1"),
            (OptimizerKind::Float, "lr", "0", "lr > 0"),
            (OptimizerKind::Float, "lr_end", "-0.5", "0 <= lr_end <= 1"),
            (OptimizerKind::Float, "momentum", "2", "0 < momentum <= 1"),
        ];
        for &(kind, key, value, range) in cases {
            let mut cfg = TrainConfig::new(
                kind,
                arch::dense(&[16, 10]),
                Encoding::BitPlanes(2),
                1,
                10,
                1,
            );
            cfg.params = set(key, value);
            let err = make_optimizer(&cfg, &input, 10)
                .err()
                .unwrap_or_else(|| panic!("{} accepted {key}={value}", kind.name()));
            assert!(
                err.contains(range) && err.contains(value),
                "{}: {key}={value}: {err}",
                kind.name()
            );
        }
        for kind in [
            OptimizerKind::BinaryConnect,
            OptimizerKind::Bop,
            OptimizerKind::Float,
        ] {
            let cfg = TrainConfig::new(
                kind,
                arch::dense(&[16, 10]),
                Encoding::BitPlanes(2),
                1,
                10,
                1,
            );
            assert!(
                make_optimizer(&cfg, &input, 10).is_ok(),
                "{} defaults",
                kind.name()
            );
        }
    }

    #[test]
    fn loop_settings_are_checked() {
        let ok = TrainConfig::new(
            OptimizerKind::Flip,
            arch::dense(&[10]),
            Encoding::BitPlanes(2),
            3,
            10,
            1,
        );
        assert!(ok.check().is_ok());
        let bad = |f: &dyn Fn(&mut TrainConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.check().unwrap_err()
        };
        assert!(bad(&|c| c.epochs = 0).contains("epoch"));
        assert!(bad(&|c| c.batch = 0).contains("batch"));
        assert!(bad(&|c| c.min_delta = -0.1).contains(">= 0"));
        assert!(bad(&|c| c.validation = Holdout::Fraction(1.0)).contains("fraction < 1"));
        assert!(bad(&|c| {
            c.validation = Holdout::Off;
            c.keep = Keep::Best;
        })
        .contains("validation split"));
        assert_eq!(Holdout::Fraction(0.1).count(1438), Ok(144));
        assert_eq!(Holdout::Fraction(0.0).count(1438), Ok(0));
        assert_eq!(Holdout::Fraction(0.0001).count(100), Ok(1));
        assert!(Holdout::Images(100).count(100).is_err());
        assert_eq!(Holdout::Off.count(5), Ok(0));
    }

    #[test]
    fn the_stopping_rule_watches_what_it_is_told() {
        let rec = |loss: f64, acc: f64, vl: f64, va: f64| EpochRecord {
            epoch: 0,
            loss,
            train_accuracy: acc,
            test_accuracy: 0.99,
            val_accuracy: Some(va),
            val_loss: Some(vl),
            seconds: 0.0,
        };
        // Training loss keeps falling while the validation measures stall.
        let h = [
            rec(1.0, 0.5, 1.0, 0.50),
            rec(0.8, 0.6, 0.9, 0.70),
            rec(0.6, 0.7, 0.95, 0.70),
            rec(0.4, 0.8, 0.97, 0.6995),
        ];
        assert_eq!(Watched::TrainingLoss.stale_epochs(&h, 0.001), 0);
        assert_eq!(Watched::TrainingAccuracy.stale_epochs(&h, 0.001), 0);
        assert_eq!(Watched::ValidationLoss.stale_epochs(&h, 0.001), 2);
        assert_eq!(Watched::ValidationAccuracy.stale_epochs(&h, 0.001), 2);
        assert_eq!(
            Watched::resolve(PatienceOn::Loss, false),
            Watched::TrainingLoss
        );
    }
}
