//! Folding: how many neurons (PE) and input bits per neuron (SIMD) each layer computes per
//! cycle.
//!
//! `auto` picks, per layer, the cheapest folding (fewest XNOR lanes `pe * simd`, then fewest
//! PEs) whose `(outputs / pe) * planes * (inputs / simd)` cycles meet the target. The default
//! target is the input adapter's rate, one pixel per cycle (`pixels` cycles per frame): no
//! layer is made faster than the stream that feeds it, which keeps LUTs modest. A layer that
//! cannot meet the target even fully parallel is made fully parallel.

use super::Pass;
use crate::ir::Design;
use crate::CompileError;

/// Folding of one layer, as written in a fold file (`{"layers":[{"pe":..,"simd":..},..]}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerFold {
    /// Neurons in parallel (divides the layer's outputs).
    pub pe: usize,
    /// Input bits per neuron per cycle (divides the layer's inputs).
    pub simd: usize,
}

/// The fold file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FoldFile {
    /// One entry per layer, input first.
    pub layers: Vec<LayerFold>,
}

/// How to fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoldSpec {
    /// Balance every layer to `target_cycles` (default: the input pixels per frame).
    Auto {
        /// Cycles per frame to meet.
        target_cycles: Option<u64>,
    },
    /// Exactly these foldings.
    Manual(Vec<LayerFold>),
}

/// The folding pass.
pub struct Folding(pub FoldSpec);

fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|d| n.is_multiple_of(*d)).collect()
}

/// The cheapest `(pe, simd)` for an `outputs` x `inputs` layer of `planes` planes meeting
/// `target` cycles per frame.
pub fn auto_fold(outputs: usize, inputs: usize, planes: usize, target: u64) -> LayerFold {
    let mut best: Option<(usize, usize, LayerFold)> = None;
    for pe in divisors(outputs) {
        for simd in divisors(inputs) {
            let cycles = ((outputs / pe) * planes * (inputs / simd)) as u64;
            if cycles > target {
                continue;
            }
            let key = (pe * simd, pe);
            if best.as_ref().is_none_or(|b| key < (b.0, b.1)) {
                best = Some((key.0, key.1, LayerFold { pe, simd }));
            }
        }
    }
    best.map_or(
        LayerFold {
            pe: outputs,
            simd: inputs,
        },
        |b| b.2,
    )
}

impl Pass for Folding {
    fn name(&self) -> &'static str {
        "folding"
    }

    fn description(&self) -> &'static str {
        "sets each layer's PE and SIMD, from a fold file or balanced to a cycle target"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        match &self.0 {
            FoldSpec::Auto { target_cycles } => {
                let target = target_cycles.unwrap_or(design.input.pixels as u64);
                for l in &mut design.layers {
                    let f = auto_fold(l.outputs, l.inputs, l.planes, target);
                    l.pe = f.pe;
                    l.simd = f.simd;
                }
            }
            FoldSpec::Manual(folds) => {
                if folds.len() != design.layers.len() {
                    return Err(CompileError::Folding(format!(
                        "the fold file has {} layers but the model has {}",
                        folds.len(),
                        design.layers.len()
                    )));
                }
                for (l, f) in design.layers.iter_mut().zip(folds) {
                    l.pe = f.pe;
                    l.simd = f.simd;
                }
            }
        }
        crate::check::check_folding(design)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_meets_the_target_cheaply() {
        let f = auto_fold(1024, 784, 1, 784);
        assert!((1024 / f.pe) * (784 / f.simd) <= 784);
        assert_eq!(f.pe * f.simd, 1024);
        assert_eq!(auto_fold(10, 7, 1, 1), LayerFold { pe: 10, simd: 7 });
        assert_eq!(auto_fold(10, 7, 1, 1000), LayerFold { pe: 1, simd: 1 });
        // Impossible targets fall back to fully parallel.
        assert_eq!(auto_fold(3, 5, 4, 2), LayerFold { pe: 3, simd: 5 });
    }
}
