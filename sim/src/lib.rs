//! Cycle-accurate simulation of generated accelerators.
//!
//! [`stimulus`] and [`trace`] are the contract shared with the RTL harnesses in `testbenches/`:
//! the same seed drives the same input bubbles and output back-pressure in every simulator, and
//! every simulator reports what happened as the same [`trace::Trace`].

pub mod stimulus;
pub mod trace;
