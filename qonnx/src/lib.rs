//! # qonnx: QONNX import into and export from flipchip models
//!
//! [QONNX](https://github.com/fastmachinelearning/qonnx) is the quantised dialect of ONNX that
//! Brevitas exports and FINN and hls4ml read. This crate reads the binary (W1A1) networks among
//! such models into flipchip's [`flip::model::Model`] ([`import`]) and writes flipchip models
//! back as QONNX graphs ([`export`]). ONNX's protobuf schema is transcribed in [`proto`].

pub mod export;
pub mod graph;
pub mod import;
pub mod proto;
pub mod quant;
pub mod scores;
pub mod shape_ops;
pub mod tensor;

use std::path::Path;

pub use import::{Imported, Options, Report};

/// Why a model does not import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read the file")]
    Io(#[from] std::io::Error),
    /// The bytes are not an ONNX protobuf.
    #[error("not an ONNX model file: {0}")]
    Decode(String),
    /// A node that has no flipchip form.
    #[error("node {node}: {op} {why}")]
    Node {
        /// The node's name.
        node: String,
        /// Its operator.
        op: String,
        /// Why it does not import: a phrase with the operator as its subject.
        why: String,
    },
    /// The graph as a whole does not make a flipchip model.
    #[error("{0}")]
    Model(String),
}

/// Reads and imports an ONNX file.
pub fn import_file(path: &Path, opts: Options) -> Result<Imported, ImportError> {
    let bytes = std::fs::read(path)?;
    let model = graph::decode(&bytes)?;
    import::import(&model, opts)
}
