//! Cycle-accurate simulation of generated accelerators.
//!
//! [`stimulus`] and [`trace`] are the contract shared with the RTL harnesses in `testbenches/`:
//! the same seed drives the same input bubbles and output back-pressure in every simulator, and
//! every simulator reports what happened as the same [`trace::Trace`].
//!
//! [`engine::run`] drives the cycle models that each compiler block defines next to its
//! Verilog (`compiler::blocks`), so this crate never parses Verilog.

pub mod engine;
pub mod fifo_sizing;
pub mod stimulus;
pub mod trace;
pub mod vcd;

pub use engine::{ports, replay, run, SimError, SimRun, StageStats};
