//! Checkpoints: the full optimizer state plus the run's identity, written after every epoch
//! so an interrupted run resumes exactly where it stopped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EpochRecord, TrainConfig};

const MAGIC: &str = "flipchip-checkpoint";
const VERSION: u32 = 1;

/// A checkpoint file's contents.
#[derive(Serialize, Deserialize)]
pub struct Checkpoint {
    magic: String,
    version: u32,
    /// The run identity it belongs to (everything in [`TrainConfig`] as text).
    pub identity: String,
    /// Epochs completed so far.
    pub history: Vec<EpochRecord>,
    /// The optimizer's own serialised state.
    pub state: Vec<u8>,
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
    /// The checkpoint belongs to a different run.
    #[error("{path}: checkpoint is from a different run ({saved}), not this one ({wanted})")]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The run it was written by.
        saved: String,
        /// The run asked for now.
        wanted: String,
    },
}

/// The parts of a config that must match for a resume to continue the same run.
pub fn identity(cfg: &TrainConfig) -> String {
    let layers: Vec<String> = cfg.layers.iter().map(|l| l.to_string()).collect();
    let params: Vec<String> = cfg.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "optimizer {} layers {} encoding {} epochs {} batch {} seed {} params [{}]",
        cfg.optimizer.name(),
        layers.join("-"),
        cfg.encoding,
        cfg.epochs,
        cfg.batch,
        cfg.seed,
        params.join(" ")
    )
}

/// Writes a checkpoint atomically (temporary file, then rename).
pub fn write(
    path: &Path,
    cfg: &TrainConfig,
    history: &[EpochRecord],
    state: &[u8],
) -> Result<(), CheckpointError> {
    let ck = Checkpoint {
        magic: MAGIC.into(),
        version: VERSION,
        identity: identity(cfg),
        history: history.to_vec(),
        state: state.to_vec(),
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
    let ck: Checkpoint = bincode::deserialize(&bytes).map_err(|e| CheckpointError::Corrupt {
        path: path.into(),
        problem: e.to_string(),
    })?;
    if ck.magic != MAGIC || ck.version != VERSION {
        return Err(CheckpointError::Corrupt {
            path: path.into(),
            problem: format!("expected {MAGIC} version {VERSION}"),
        });
    }
    Ok(ck)
}

/// Fails unless `ck` was written by the run `cfg` describes.
pub fn check_matches(
    ck: &Checkpoint,
    cfg: &TrainConfig,
    path: &Path,
) -> Result<(), CheckpointError> {
    let wanted = identity(cfg);
    if ck.identity != wanted {
        return Err(CheckpointError::Mismatch {
            path: path.into(),
            saved: ck.identity.clone(),
            wanted,
        });
    }
    Ok(())
}

/// An optimizer's state as checkpoint bytes. The checkpoint's identity check (configuration and
/// widths) runs before [`decode_state`], so the state itself carries no header.
pub fn encode_state<T: serde::Serialize>(state: &T) -> Vec<u8> {
    bincode::serialize(state).unwrap_or_default()
}

/// Reads bytes written by [`encode_state`].
pub fn decode_state<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::deserialize(bytes).map_err(|e| format!("optimizer state does not decode: {e}"))
}
