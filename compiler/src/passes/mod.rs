//! Passes over the dataflow IR, each in its own file, each a named struct.
//!
//! There is no FIFO-sizing pass yet because a straight pipeline of these blocks needs no FIFO:
//! every stage holds one frame in its input register and one in its output register, and a
//! layer accepts its next frame in the cycle of its last step, so the chain runs at the slowest
//! stage's rate without bubbles. FIFOs become necessary with branches (skip connections), where
//! one path must absorb the other's latency.

pub mod folding;
pub mod memory;

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
