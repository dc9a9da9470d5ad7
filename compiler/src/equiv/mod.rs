//! Datapath equivalence: a folded design computes what its model file says, for every input.
//!
//! [`spec`] writes each binary layer of a model, and the whole network, as combinational
//! Verilog from the model file alone; [`harness`] puts a folded MVTU (or the whole top) and its
//! specification side by side on the same frame and asserts that their results agree. A
//! bounded model check over the frame's cycles (`flipchip prove --datapath`) then proves the
//! design's datapath equal to the model's integer semantics for all inputs of a frame.

pub mod adder_map;
pub mod cut;
pub mod harness;
pub mod spec;
pub mod steps;

/// `model` compiled at the automatic folding: what the harness builders' tests start from.
#[cfg(test)]
fn compile_auto(model: &flip::model::Model) -> crate::ir::Design {
    let auto = crate::passes::folding::FoldSpec::auto(None);
    crate::compile(model, &auto).expect("a random model compiles at the automatic folding")
}
