//! Frames per weight read (FINN's "multiple matrix-vector", here across frames): a dense layer
//! applies each weight word it reads to `F` frames, one per step, so that its weight ROM is
//! read at a `F`-th of the width at `F` times the depth and the frames per second stay those
//! of its folding.
//!
//! The layer holds up to `F` frames (slots) and steps through them innermost:
//! `for nf { for sf { for slot { step } } }`. The weight word for `(nf, sf)` is read in `F`
//! parts, one per cycle, a word ahead of the steps, and serves the `F` steps of its slots;
//! each PE keeps one accumulator per slot, and each slot's result is handed on as the slot's
//! last step finishes, in the order the frames arrived. While a batch is being worked on the
//! next frames are collected; a batch starts when all `F` slots have a frame, or when at least
//! one has and none came in the cycle before, so the last frames of a stream are not held back
//! (the empty slots still take their steps: a batch always takes `S * F` cycles for `S` steps
//! per frame).
//!
//! What it costs and saves: block RAMs by a factor of up to `F` on a weight-bound design (the
//! read is the limit on the ECP5: every design above about 111 DP16KD placed but did not
//! route), against flip-flops for the assembled word and the one taken (`2 * PE * SIMD`; with
//! two read registers a part's register beside the block RAMs replaces the taken word's second
//! one), the collected and the worked-on frames (`2 * F` frames), `F` accumulators per PE and a
//! copy of the input chunk's register per 8 PEs. The trees and the XNORs are the same.
//!
//! Supported: dense layers with a weight ROM of more than one word, input in registers (not an
//! input RAM or vector RAM; the pass clears those choices), one input plane, no tables, no
//! weights loaded into RAM, `F` a power of two from 2 to [`MAX_MMV`]. Anything else is an
//! error naming the layer.

use super::Pass;
use crate::ir::Design;
use crate::CompileError;

/// The most frames per weight read.
pub const MAX_MMV: usize = 16;

/// The pass: frames per weight read of each layer, input first (empty: 1 everywhere).
pub struct Mmv(pub Vec<usize>);

/// Whether a layer can take `f` frames per weight read; else why not.
pub fn check(l: &crate::ir::Mvtu, f: usize) -> Result<(), String> {
    if f == 1 {
        return Ok(());
    }
    if !f.is_power_of_two() || f > MAX_MMV {
        return Err(format!(
            "{f} frames per weight read: a power of two from 2 to {MAX_MMV} is supported"
        ));
    }
    let why = if l.is_conv() {
        Some("it is a convolution")
    } else if l.planes > 1 {
        Some("it reads several bit planes")
    } else if l.table > 0 {
        Some("it reads tables")
    } else if l.is_loaded() {
        Some("its weights are loaded into RAM")
    } else if l.neuron_folds() * l.synapse_folds() < 2 {
        Some("its weights are a single word, constants in logic")
    } else {
        None
    };
    match why {
        Some(why) => Err(format!("{f} frames per weight read: {why}")),
        None => Ok(()),
    }
}

impl Pass for Mmv {
    fn name(&self) -> &'static str {
        "mmv"
    }

    fn description(&self) -> &'static str {
        "lets dense layers apply each weight word to several frames"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        let layers = design.mvtus().count();
        if !self.0.is_empty() && self.0.len() != layers {
            return Err(CompileError::Folding(format!(
                "mmv lists {} layers but the model has {layers}",
                self.0.len()
            )));
        }
        for (i, l) in design.mvtus_mut().enumerate() {
            let f = self.0.get(i).copied().unwrap_or(1);
            check(l, f)
                .map_err(|why| CompileError::Folding(format!("mmv: layer {}: {why}", i + 1)))?;
            l.mmv = f as u8;
        }
        Ok(())
    }
}

/// What a fold file records: each layer's frames per weight read, or nothing if all are 1.
pub fn listed(design: &Design) -> Vec<usize> {
    let f: Vec<usize> = design.mvtus().map(|l| l.frames_per_read()).collect();
    if f.iter().all(|&f| f == 1) {
        Vec::new()
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use crate::passes::folding::{FoldFile, LayerFold};
    use crate::random::{random_model, Rng};
    use crate::FoldSpec;
    use flip::encoding::Encoding;

    /// 16 pixels (one bit, or 2 bit planes) -> 8 -> 4 classes, layer 1 at 2 x 4 (4 x 4 words),
    /// layer 2 at `l2`.
    fn compile(
        enc: Encoding,
        l2: (usize, usize),
        mmv: Vec<usize>,
    ) -> Result<crate::ir::Design, String> {
        let mut rng = Rng(7);
        let model = random_model(&mut rng, 16, 4, enc, &[8, 4]);
        let mut fold = FoldFile::from(vec![
            LayerFold { pe: 2, simd: 4 },
            LayerFold {
                pe: l2.0,
                simd: l2.1,
            },
        ]);
        fold.mmv = mmv;
        crate::compile(&model, &FoldSpec::Manual(fold)).map_err(|e| e.to_string())
    }

    #[test]
    fn weight_rom_is_f_times_deeper_and_narrower() {
        let d = compile(Encoding::Threshold(8), (1, 2), vec![4, 2]).unwrap();
        let l: Vec<_> = d.mvtus().collect();
        assert_eq!((l[0].mmv, l[1].mmv), (4, 2));
        // 16 words of 8 bits as 64 of 2; 16 of 2 as 32 of 1.
        assert_eq!(l[0].weight_shape(), (64, 2));
        assert_eq!(l[1].weight_shape(), (32, 1));
        assert_eq!(crate::fold_file(&d).mmv, vec![4, 2]);
        let plain = compile(Encoding::Threshold(8), (1, 2), Vec::new()).unwrap();
        assert!(crate::fold_file(&plain).mmv.is_empty());
    }

    #[test]
    fn unsupported_layers_are_errors_naming_them() {
        let e = compile(Encoding::Threshold(8), (1, 2), vec![3, 1]).unwrap_err();
        assert!(e.contains("layer 1") && e.contains("power of two"), "{e}");
        let e = compile(Encoding::BitPlanes(2), (1, 2), vec![2, 1]).unwrap_err();
        assert!(e.contains("layer 1") && e.contains("bit planes"), "{e}");
        // Layer 2 at 4 x 8: one word, constants in logic.
        let e = compile(Encoding::Threshold(8), (4, 8), vec![1, 2]).unwrap_err();
        assert!(e.contains("layer 2") && e.contains("single word"), "{e}");
        let e = compile(Encoding::Threshold(8), (1, 2), vec![2]).unwrap_err();
        assert!(e.contains("lists 1 layers"), "{e}");
    }
}
