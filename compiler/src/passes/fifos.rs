//! FIFOs between stages: puts a [`Fifo`] after each stage a list names, with the depth it
//! gives. The list comes from a fold file or from sizing by simulation (`sim::fifo_sizing`,
//! which needs the simulator and so lives in the `sim` crate; the compiler only places what
//! it is told).

use super::Pass;
use crate::blocks::fifo::Fifo;
use crate::blocks::Stage;
use crate::ir::Design;
use crate::CompileError;

/// One FIFO as a fold file lists it (`{"after": "l1_swu", "depth": 16}`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FifoDepth {
    /// The stage whose output it buffers.
    pub after: String,
    /// Beats its RAM holds (at least 1; 2 or more pass a beat per cycle).
    pub depth: usize,
}

/// The FIFO pass: exactly the listed FIFOs, replacing any the design had.
pub struct Fifos(pub Vec<FifoDepth>);

impl Pass for Fifos {
    fn name(&self) -> &'static str {
        "fifos"
    }

    fn description(&self) -> &'static str {
        "puts a FIFO of the given depth after each listed stage"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        design.stages.retain(|s| !matches!(s, Stage::Fifo(_)));
        let names = design.stage_names();
        let mut at = Vec::with_capacity(self.0.len());
        for f in &self.0 {
            let bad = |why: String| {
                Err(CompileError::Folding(format!(
                    "FIFO after '{}' (depth {}): {why}",
                    f.after, f.depth
                )))
            };
            let Some(i) = names.iter().position(|n| *n == f.after) else {
                return bad(format!(
                    "there is no such stage (stages: {})",
                    names.join(", ")
                ));
            };
            if i + 1 == names.len() {
                return bad("the last stage drives the top's output directly".into());
            }
            if f.depth == 0 {
                return bad("a depth must be at least 1 (leave the FIFO out instead)".into());
            }
            if at.contains(&i) {
                return bad("listed twice".into());
            }
            at.push(i);
        }
        // Insert from the back so that the indices found above stay valid.
        let mut order: Vec<(usize, &FifoDepth)> = at.into_iter().zip(&self.0).collect();
        order.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, f) in order {
            let b = design.stages[i].block();
            let fifo = Fifo {
                after: b.name(),
                after_wire: b.wire_name(),
                width: b.out_width(),
                depth: f.depth,
                cycles: b.cycles(),
            };
            design.stages.insert(i + 1, Stage::Fifo(fifo));
        }
        Ok(())
    }
}

/// The FIFOs of `design`, in pipeline order.
pub fn listed(design: &Design) -> Vec<FifoDepth> {
    design
        .stages
        .iter()
        .filter_map(|s| match s {
            Stage::Fifo(f) => Some(FifoDepth {
                after: f.after.clone(),
                depth: f.depth,
            }),
            _ => None,
        })
        .collect()
}
