//! Checkpoints: the full optimizer state plus the run's identity, written after every epoch
//! so an interrupted run resumes exactly where it stopped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EpochRecord, TrainConfig};
use crate::data::Dataset;
use crate::model::{format, Model};

const MAGIC: &str = "flipchip-checkpoint";
/// Version 2 added the dataset, shape and validation split to the identity, the validation
/// measures to the history and the best model so far; version 3 the flip optimizer's
/// convolution and pool shapes to its state.
const VERSION: u32 = 3;

/// A checkpoint file's contents.
#[derive(Serialize, Deserialize)]
pub struct Checkpoint {
    magic: String,
    version: u32,
    /// The run identity it belongs to, as `(what, value)` pairs ([`identity`]).
    pub identity: Vec<(String, String)>,
    /// Epochs completed so far.
    pub history: Vec<EpochRecord>,
    /// The optimizer's own serialised state.
    pub state: Vec<u8>,
    /// The epoch (0-based) with the best validation accuracy so far and its model as model
    /// file text; `None` without a validation split.
    pub best: Option<(usize, String)>,
}

/// The first two fields of every version, read before the rest so an old file is named as
/// such rather than as damaged.
#[derive(Deserialize)]
struct Header {
    magic: String,
    version: u32,
}

impl Checkpoint {
    /// The best epoch so far, its validation accuracy and its model.
    pub fn best_model(&self) -> Result<Option<(usize, f64, Model)>, String> {
        let Some((epoch, text)) = &self.best else {
            return Ok(None);
        };
        let model = format::parse(text).map_err(|e| format!("best model: {e}"))?;
        let acc = self
            .history
            .get(*epoch)
            .and_then(|h| h.val_accuracy)
            .ok_or_else(|| format!("best model of epoch {epoch} has no validation record"))?;
        Ok(Some((*epoch, acc, model)))
    }
}

/// A checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a flipchip checkpoint or is damaged.
    #[error("{path}: not a usable checkpoint: {problem}")]
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The checkpoint was written by a flipchip with another checkpoint format.
    #[error(
        "{path}: checkpoint format version {found}, but this flipchip reads version {expected} \
         (start the run again without --resume)"
    )]
    Version {
        /// The checkpoint file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build writes and reads.
        expected: u32,
    },
    /// The checkpoint belongs to a different run.
    #[error("{path}: checkpoint is from a different run: {}", differences(.saved, .wanted))]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The identity of the run it was written by.
        saved: Vec<(String, String)>,
        /// The identity of the run asked for now.
        wanted: Vec<(String, String)>,
    },
}

/// `what: saved X, wanted Y` for every part of two identities that differs.
fn differences(saved: &[(String, String)], wanted: &[(String, String)]) -> String {
    let lookup = |id: &[(String, String)], key: &str| {
        id.iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| "(not recorded)".to_string(), |(_, v)| v.clone())
    };
    let mut keys: Vec<&str> = wanted.iter().map(|(k, _)| k.as_str()).collect();
    for (k, _) in saved {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .filter_map(|k| {
            let (s, w) = (lookup(saved, k), lookup(wanted, k));
            (s != w).then(|| format!("{k}: saved {s}, wanted {w}"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What must match for a resume to continue the same run: the data (name, image shape, classes,
/// training images, validation split), the network (encoding, architecture) and the
/// optimizer's configuration. The stopping rule and `keep` may change between runs: they are
/// decided from the history, which the checkpoint holds.
pub fn identity(cfg: &TrainConfig, data: &Dataset, held: usize) -> Vec<(String, String)> {
    let mut arch = vec![data.pixels().to_string()];
    arch.extend(cfg.layers.iter().map(|l| l.to_string()));
    let params: Vec<String> = cfg.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // Without augmentation the entry is left out, so checkpoints written before it existed
    // still resume.
    let augment =
        (!cfg.augment.is_none()).then(|| ("augmentation".to_string(), cfg.augment.to_string()));
    let base: Vec<(&str, String)> = vec![
        ("dataset", data.name.clone()),
        (
            "image shape",
            format!(
                "{}x{}x{} ({}-bit pixels)",
                data.width, data.height, data.channels, data.pixel_bits
            ),
        ),
        ("classes", data.classes.to_string()),
        ("training images", data.train.len().to_string()),
        (
            "validation split",
            format!("{} ({held} images)", cfg.validation),
        ),
        ("encoding", cfg.encoding.to_string()),
        ("architecture", arch.join("-")),
        ("optimizer", cfg.optimizer.name().to_string()),
        ("epochs", cfg.epochs.to_string()),
        ("batch", cfg.batch.to_string()),
        ("seed", cfg.seed.to_string()),
        ("settings", format!("[{}]", params.join(" "))),
    ];
    base.into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(augment)
        .collect()
}

/// Writes a checkpoint atomically (temporary file, then rename).
pub fn write(
    path: &Path,
    identity: &[(String, String)],
    history: &[EpochRecord],
    state: &[u8],
    best: Option<(usize, &Model)>,
) -> Result<(), CheckpointError> {
    let ck = Checkpoint {
        magic: MAGIC.into(),
        version: VERSION,
        identity: identity.to_vec(),
        history: history.to_vec(),
        state: state.to_vec(),
        best: best.map(|(e, m)| (e, format::to_string(m))),
    };
    let bytes = bincode::serialize(&ck).map_err(|e| CheckpointError::Corrupt {
        path: path.into(),
        problem: e.to_string(),
    })?;
    let tmp = path.with_extension("tmp");
    let io = |source| CheckpointError::Io {
        path: path.into(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads a checkpoint.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.into(),
        source,
    })?;
    let corrupt = |problem: String| CheckpointError::Corrupt {
        path: path.into(),
        problem,
    };
    let header: Header = bincode::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if header.magic != MAGIC {
        return Err(corrupt(format!("does not start with {MAGIC}")));
    }
    if header.version != VERSION {
        return Err(CheckpointError::Version {
            path: path.into(),
            found: header.version,
            expected: VERSION,
        });
    }
    bincode::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))
}

/// Fails unless `ck` was written by the run `identity` describes, naming what differs.
pub fn check_matches(
    ck: &Checkpoint,
    identity: &[(String, String)],
    path: &Path,
) -> Result<(), CheckpointError> {
    if ck.identity != identity {
        return Err(CheckpointError::Mismatch {
            path: path.into(),
            saved: ck.identity.clone(),
            wanted: identity.to_vec(),
        });
    }
    Ok(())
}

/// An optimizer's state as checkpoint bytes. The checkpoint's identity check (data, shape and
/// configuration) runs before [`decode_state`], so the state itself carries no header.
pub fn encode_state<T: serde::Serialize>(state: &T) -> Vec<u8> {
    bincode::serialize(state).unwrap_or_default()
}

/// Reads bytes written by [`encode_state`].
pub fn decode_state<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::deserialize(bytes).map_err(|e| format!("optimizer state does not decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_version_is_named_not_called_damaged() {
        #[derive(Serialize)]
        struct V1 {
            magic: String,
            version: u32,
            identity: String,
            history: Vec<EpochRecord>,
            state: Vec<u8>,
        }
        let dir = std::env::temp_dir().join(format!("flip-ckpt-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.ckpt");
        let old = V1 {
            magic: MAGIC.into(),
            version: 1,
            identity: "optimizer flip layers 128-10".into(),
            history: Vec::new(),
            state: vec![1, 2, 3],
        };
        std::fs::write(&path, bincode::serialize(&old).unwrap()).unwrap();
        let err = read(&path).err().expect("version 1 refused");
        assert!(
            matches!(err, CheckpointError::Version { found: 1, .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("old.ckpt") && msg.contains("version 1"),
            "{msg}"
        );

        std::fs::write(&path, b"not a checkpoint at all").unwrap();
        assert!(matches!(
            read(&path).err(),
            Some(CheckpointError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_mismatch_names_each_difference_both_ways() {
        let id = |d: &str, s: &str| {
            vec![
                ("dataset".to_string(), d.to_string()),
                ("seed".to_string(), s.to_string()),
            ]
        };
        let msg = differences(&id("optdigits", "1"), &id("fashion-mnist", "1"));
        assert_eq!(msg, "dataset: saved optdigits, wanted fashion-mnist");
        let msg = differences(&id("a", "1"), &id("a", "2")[..1]);
        assert_eq!(msg, "seed: saved 1, wanted (not recorded)");
    }
}
