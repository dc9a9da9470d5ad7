//! Writing a flipchip model as a QONNX graph.

use flip::model::Model;

/// Why a model does not export.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExportError(pub String);

/// The model as the bytes of an ONNX file.
pub fn to_bytes(_model: &Model) -> Result<Vec<u8>, ExportError> {
    Err(ExportError("export is not written yet".into()))
}
