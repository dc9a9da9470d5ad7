//! # flip: training binary neural networks in the Boolean domain
//!
//! This crate holds everything up to and including the model file: datasets, input encodings,
//! the software reference (the integer semantics the hardware reproduces), the flip optimizer
//! and its baselines.

pub mod activity;
pub mod bits;
pub mod data;
pub mod encoding;
pub mod featuremap;
pub mod gemm;
pub mod model;
pub mod popcount;
pub mod quantize;
pub mod reference;
#[cfg(target_arch = "x86_64")]
pub mod sliced;
pub mod train;
