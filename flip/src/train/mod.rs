//! The training loop shared by every optimizer: batching, schedules, evaluation, checkpoints
//! and the stopping rule.
//!
//! Every source of randomness is a pure function of the seed and the position in training
//! (epoch, step, layer, neuron), never of a generator threaded through the run. That is what
//! makes a resumed run identical to an uninterrupted one, and the result independent of how
//! rows are spread over threads.

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

use crate::data::Dataset;
use crate::encoding::Encoding;
use crate::model::{InputSpec, Metadata, Model};
use crate::reference;

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

/// Everything that defines a training run. Two runs with equal configs and thread counts
/// produce identical model files.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Neurons per layer after the input, last = classes (`[256, 256, 10]`).
    pub layers: Vec<usize>,
    /// Input encoding.
    pub encoding: Encoding,
    /// Epoch budget.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Seed for initialisation, shuffling and stochastic rounding.
    pub seed: u64,
    /// Stop early when the training loss has not improved by `min_delta` (relative) for this
    /// many epochs; 0 disables.
    pub patience: usize,
    /// Relative loss improvement that counts as progress.
    pub min_delta: f64,
    /// Optimizer-specific settings as `key=value`.
    pub params: Vec<(String, String)>,
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
    /// Test accuracy of the exported model after the epoch.
    pub test_accuracy: f64,
    /// Wall time of the epoch's training steps (evaluation excluded).
    pub seconds: f64,
}

/// The outcome of [`train`].
pub struct TrainResult {
    /// The exported model with metadata filled in.
    pub model: Model,
    /// One record per epoch run, including those restored from a checkpoint.
    pub history: Vec<EpochRecord>,
    /// Bytes of persistent training state.
    pub state_bytes: usize,
    /// Why training stopped.
    pub stopped: String,
}

/// Builds the optimizer a config asks for.
pub fn make_optimizer(
    cfg: &TrainConfig,
    input: &InputSpec,
    classes: usize,
) -> Result<Box<dyn Optimizer>, String> {
    let mut widths = vec![input.encoded_inputs()];
    widths.extend(&cfg.layers);
    if *widths.last().unwrap_or(&0) != classes {
        return Err(format!(
            "the last layer has {} outputs but the dataset has {classes} classes",
            widths.last().unwrap_or(&0)
        ));
    }
    if widths.contains(&0) {
        return Err("a layer has zero width".into());
    }
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
            &widths,
            cfg.seed,
            &cfg.params,
        )?),
        OptimizerKind::BinaryConnect => Box::new(binaryconnect::BinaryConnect::new(
            input.clone(),
            &widths,
            cfg.seed,
            &cfg.params,
        )?),
        OptimizerKind::Bop => Box::new(bop::Bop::new(
            input.clone(),
            &widths,
            cfg.seed,
            &cfg.params,
        )?),
        OptimizerKind::Float => Box::new(float::FloatOptimizer::new(
            input.clone(),
            &widths,
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
    cfg.encoding
        .check(data.pixel_bits)
        .map_err(TrainError::Config)?;
    if cfg.batch == 0 {
        return Err(TrainError::Config("batch size must be at least 1".into()));
    }
    let mut opt = make_optimizer(cfg, &input, data.classes).map_err(TrainError::Config)?;
    let mut history = Vec::new();
    if let Some(path) = resume {
        let ck = checkpoint::read(path)?;
        checkpoint::check_matches(&ck, cfg, path)?;
        opt.load_state(&ck.state)
            .map_err(|e| CheckpointError::Corrupt {
                path: path.to_owned(),
                problem: e,
            })?;
        history = ck.history;
    }
    let td = TrainData::new(&input, &data.train.images, &data.train.labels, data.classes);
    let n = td.labels.len();
    let batches = n.div_ceil(cfg.batch);
    let total_steps = (batches * cfg.epochs).max(1) as f64;
    let mut stopped = format!("epoch budget of {} reached", cfg.epochs);
    let mut best_loss = history.iter().map(|h| h.loss).fold(f64::INFINITY, f64::min);
    let mut since_best = stale_epochs(&history, cfg.min_delta);

    for epoch in history.len()..cfg.epochs {
        if cfg.patience > 0 && since_best >= cfg.patience {
            stopped = format!(
                "loss converged: no {:.3}% improvement for {} epochs",
                cfg.min_delta * 100.0,
                cfg.patience
            );
            break;
        }
        let order = rng::permutation(n, rng::mix(cfg.seed, 0x5eed_0000 + epoch as u64));
        let start = Instant::now();
        let (mut loss, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (b, batch) in order.chunks(cfg.batch).enumerate() {
            let step = (epoch * batches + b) as u64;
            let st = opt.step(&td, batch, step, step as f64 / total_steps);
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
        let rec = EpochRecord {
            epoch,
            loss: loss / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test_accuracy: reference::accuracy(&model, &data.test.images, &data.test.labels),
            seconds,
        };
        if rec.loss < best_loss * (1.0 - cfg.min_delta) {
            best_loss = rec.loss;
            since_best = 0;
        } else {
            since_best += 1;
        }
        history.push(rec.clone());
        if let Some(path) = checkpoint {
            checkpoint::write(path, cfg, &history, &opt.save_state())?;
        }
        progress(Progress::Epoch(rec));
    }

    let mut model = opt.export();
    let test_accuracy = reference::accuracy(&model, &data.test.images, &data.test.labels);
    model.meta = Metadata {
        dataset: data.name.clone(),
        optimizer: cfg.optimizer.name().into(),
        seed: cfg.seed,
        test_accuracy: Some(test_accuracy),
        extra: [
            ("epochs".to_string(), history.len().to_string()),
            ("batch".to_string(), cfg.batch.to_string()),
        ]
        .into_iter()
        .chain(cfg.params.iter().cloned())
        .collect(),
    };
    Ok(TrainResult {
        model,
        history,
        state_bytes: opt.state_bytes(),
        stopped,
    })
}

/// Epochs since the best loss in `history`, for resuming the stopping rule.
fn stale_epochs(history: &[EpochRecord], min_delta: f64) -> usize {
    let mut best = f64::INFINITY;
    let mut since = 0;
    for h in history {
        if h.loss < best * (1.0 - min_delta) {
            best = h.loss;
            since = 0;
        } else {
            since += 1;
        }
    }
    since
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
