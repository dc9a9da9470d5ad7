//! Passes over the dataflow IR, each in its own file, each a named struct.
//!
//! FIFOs ([`fifos`]): a straight pipeline of dense layers needs none: every stage holds one
//! frame in its input register (or an input RAM, [`input_buffer`], [`vector_ram`]) and one in its
//! output register, and a layer accepts its next
//! frame in the cycle of its last step, so the chain runs at the slowest stage's rate without
//! bubbles. A convolutional pipeline does not: a sliding window unit hands on nothing while it
//! fills its first `kernel - 1` rows and then windows in bursts, so a convolution MVTU slower
//! than one window per cycle stalls the pixel stream during the bursts and idles during the
//! fills, and the frame interval exceeds the slowest stage's cycles. FIFOs after the bursty
//! stages absorb that; their depths are found by simulation (`sim::fifo_sizing`, run by
//! `flipchip compile` and the DSE) and recorded in the fold file, which [`fifos::Fifos`]
//! reads back.

pub mod fifos;
pub mod folding;
pub mod input_buffer;
pub mod memory;
pub mod mmv;
pub mod padding;
pub mod pipelining;
pub mod tables;
pub mod vector_ram;

use crate::ir::Design;
use crate::CompileError;

/// A transformation of a [`Design`].
pub trait Pass {
    /// Short kebab-case name (`folding`).
    fn name(&self) -> &'static str;
    /// One line saying what the pass does.
    fn description(&self) -> &'static str;
    /// Runs the pass.
    fn run(&self, design: &mut Design) -> Result<(), CompileError>;
}
