//! Memory mapping: lays each layer's weights out as the ROM its folding reads (one word of
//! `pe * simd` bits per fold step), clamps thresholds to the accumulator's range and sizes the
//! accumulator, threshold and score widths.
//!
//! Where the weights live is the [`Placement`]: constant ROMs (Yosys puts them in block RAM or
//! LUTs) or RAMs loaded once after power-up (iCE40 SPRAM, for weights the block RAMs cannot
//! hold).
//!
//! Clamping keeps every comparison unsigned and narrow: `s` lies in `0..=max_sum`, so a
//! threshold below 0 behaves as 0 and one above `max_sum` as `max_sum + 1`.

use flip::bits::words_for;

use super::Pass;
use crate::blocks::{get_bits, Family};
use crate::ir::{bits_for, Design, MvtuActivation, WeightMemory};
use crate::CompileError;

/// The memory pass.
pub struct Memory(pub Placement);

/// Where the weight memories go.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Placement {
    /// Every weight memory is a constant ROM.
    #[default]
    Rom,
    /// These layers (1-based) load their weights into RAM after power-up; the rest are ROMs.
    Loaded(Vec<usize>),
    /// Fit a device: while the design needs more block RAMs than `brams`, the layer whose
    /// weight ROM takes the most block RAMs moves to loaded RAM, as long as the `rams` large
    /// RAM blocks (iCE40 SPRAM) hold it.
    Fit {
        /// Family whose block RAM shapes count.
        family: Family,
        /// Block RAMs of the device.
        brams: u64,
        /// Large RAM blocks (SPRAM) of the device.
        rams: u64,
    },
}

/// Bits of the narrowest two's complement type holding `lo..=hi`.
pub fn signed_bits(lo: i64, hi: i64) -> u32 {
    (1..64)
        .find(|&w| lo >= -(1i64 << (w - 1)) && hi < (1i64 << (w - 1)))
        .unwrap_or(64)
}

/// ORs `n` bits of `src` from `src_off` into `dst` at `dst_off`.
fn copy_bits(dst: &mut [u64], dst_off: usize, src: &[u64], src_off: usize, n: usize) {
    let mut i = 0;
    while i < n {
        let m = (n - i).min(64);
        let v = get_bits(src, src_off + i, m);
        let (w, s) = ((dst_off + i) / 64, (dst_off + i) % 64);
        dst[w] |= v << s;
        if s != 0 && s + m > 64 {
            dst[w + 1] |= v >> (64 - s);
        }
        i += m;
    }
}

impl Pass for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn description(&self) -> &'static str {
        "lays weights out as fold-step ROM words and sizes accumulators, thresholds and scores"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        for l in design.mvtus_mut() {
            let (nf_n, sf_n) = (l.neuron_folds(), l.synapse_folds());
            let lanes = l.pe * l.simd;
            let wpe = words_for(lanes);
            let mut words = vec![0u64; nf_n * sf_n * wpe];
            for nf in 0..nf_n {
                for sf in 0..sf_n {
                    let word = &mut words[(nf * sf_n + sf) * wpe..][..wpe];
                    for p in 0..l.pe {
                        let row = l.weights.row(nf * l.pe + p);
                        copy_bits(word, p * l.simd, row, sf * l.simd, l.simd);
                    }
                }
            }
            let max_sum = l.max_sum();
            let acc_width = bits_for(max_sum);
            let (thresholds, score_width) = match &l.activation {
                MvtuActivation::Threshold { thresholds, .. } => (
                    thresholds
                        .iter()
                        .map(|&t| (t.max(0) as u64).min(max_sum + 1) as u32)
                        .collect(),
                    0,
                ),
                MvtuActivation::Scores { bias, scale } => {
                    let lo = bias.iter().copied().min().unwrap_or(0).min(0) as i64;
                    let top = scale.iter().copied().max().unwrap_or(1) as i64;
                    let hi = max_sum as i64 * top
                        + bias.iter().copied().max().unwrap_or(0).max(0) as i64;
                    (Vec::new(), signed_bits(lo, hi).max(acc_width + 1))
                }
            };
            l.memory = Some(WeightMemory {
                words,
                words_per_entry: wpe,
                acc_width,
                thresholds,
                threshold_width: bits_for(max_sum + 1),
                score_width,
                loaded: false,
            });
        }
        self.place(design)?;
        if let Some(w) = design.mvtus().last().map(|l| l.mem().score_width) {
            design.argmax_mut().score_width = w;
        }
        Ok(())
    }
}

impl Memory {
    fn place(&self, design: &mut Design) -> Result<(), CompileError> {
        match &self.0 {
            Placement::Rom => Ok(()),
            Placement::Loaded(layers) => {
                for &i in layers {
                    let layers = design.mvtus().count();
                    let Some(l) = design.mvtus_mut().find(|l| l.index == i) else {
                        return Err(CompileError::Invalid(format!(
                            "layer {i} does not exist (the model has {layers} layers)"
                        )));
                    };
                    if l.table > 0 {
                        return Err(CompileError::Folding(format!(
                            "load_weights: layer {i} reads tables, which are ROMs"
                        )));
                    }
                    load(l);
                }
                Ok(())
            }
            &Placement::Fit {
                family,
                brams,
                rams,
            } => {
                // Tables are ROMs: their layers cannot move.
                let weights: Vec<(u64, Option<u64>)> = design
                    .mvtus()
                    .map(|l| {
                        let (brams, rams) = l.weight_blocks(family);
                        (brams, rams.filter(|_| l.table == 0))
                    })
                    .collect();
                let other =
                    design.estimate_for(family).brams - weights.iter().map(|w| w.0).sum::<u64>();
                // Left as it is if it cannot be made to fit: the build then reports the
                // overflow of the plain design instead of loading weights for nothing.
                if let Some(load_layers) = fit_loaded(&weights, other, brams, rams) {
                    for (l, load_it) in design.mvtus_mut().zip(load_layers) {
                        if load_it {
                            load(l);
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Which layers load their weights into large RAM blocks so that the block RAMs suffice:
/// `layers[i]` is the block RAMs of layer `i`'s weight ROM and the large RAM blocks it would
/// take loaded (`None`: it cannot be); `other` the block RAMs of everything else. While the
/// design needs more than `brams`, the layer whose ROM takes the most block RAMs (the first
/// among equals) moves, if the `rams` left hold it. `None` if it cannot be made to fit.
pub fn fit_loaded(
    layers: &[(u64, Option<u64>)],
    other: u64,
    brams: u64,
    rams: u64,
) -> Option<Vec<bool>> {
    let mut load = vec![false; layers.len()];
    let mut used = other + layers.iter().map(|l| l.0).sum::<u64>();
    let mut free = rams;
    while used > brams {
        let i = (0..layers.len())
            .filter(|&i| !load[i] && layers[i].0 > 0 && layers[i].1.is_some_and(|n| n <= free))
            .max_by_key(|&i| (layers[i].0, std::cmp::Reverse(i)))?;
        load[i] = true;
        used -= layers[i].0;
        free -= layers[i].1.unwrap_or(0);
    }
    Some(load)
}

/// The block-ROM pass: puts the weight ROMs of the listed layers (numbers from 1; a fold
/// file's `block_rom_layers`) in block RAM whatever their size (see
/// [`crate::ir::Mvtu::block_rom`]). A layer that is not an MVTU, has no weight ROM of more
/// than one word (a single word is a constant), reads tables or loads its weights into RAM is
/// an error naming it.
pub struct BlockRoms(pub Vec<usize>);

impl Pass for BlockRoms {
    fn name(&self) -> &'static str {
        "block-roms"
    }

    fn description(&self) -> &'static str {
        "puts the weight ROMs a fold file lists in block RAM"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        for &want in &self.0 {
            let l = design
                .mvtus_mut()
                .find(|l| l.index == want)
                .ok_or_else(|| {
                    CompileError::Folding(format!(
                        "block_rom_layers: layer {want} is not a matrix-vector layer"
                    ))
                })?;
            let why = if l.is_loaded() {
                Some("its weights are loaded into RAM")
            } else if l.table > 0 {
                Some("it reads tables instead of weights")
            } else if l.weight_shape().0 <= 1 {
                Some("its weights are a single word, constants in logic")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(CompileError::Folding(format!(
                    "block_rom_layers: layer {want} has no weight ROM for block RAM: {why}"
                )));
            }
            l.block_rom = true;
        }
        Ok(())
    }
}

fn load(l: &mut crate::ir::Mvtu) {
    if let Some(m) = l.memory.as_mut() {
        m.loaded = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_widths() {
        assert_eq!(signed_bits(0, 0), 1);
        assert_eq!(signed_bits(-1, 0), 1);
        assert_eq!(signed_bits(0, 1), 2);
        assert_eq!(signed_bits(-128, 127), 8);
        assert_eq!(signed_bits(-129, 127), 9);
    }

    #[test]
    fn the_largest_rom_moves_until_the_block_rams_suffice() {
        // 10 other block RAMs; layers of 24, 8 and 2 ROM blocks, needing 4, 1 and 1 SPRAMs.
        let layers = [(24, Some(4)), (8, Some(1)), (2, Some(1))];
        assert_eq!(fit_loaded(&layers, 10, 44, 4), Some(vec![false; 3]));
        assert_eq!(
            fit_loaded(&layers, 10, 30, 4),
            Some(vec![true, false, false])
        );
        // The big one does not fit in 3 SPRAMs, and the rest are not enough.
        assert_eq!(fit_loaded(&layers, 10, 30, 3), None);
        assert_eq!(
            fit_loaded(&layers, 10, 12, 5),
            Some(vec![true, true, false])
        );
        // A layer that cannot be loaded (no large RAMs in the family) never moves.
        assert_eq!(fit_loaded(&[(24, None)], 0, 10, 4), None);
    }

    #[test]
    fn copy_bits_across_words() {
        let src = [u64::MAX, u64::MAX];
        let mut dst = [0u64; 3];
        copy_bits(&mut dst, 60, &src, 3, 70);
        assert_eq!(dst[0], 0xF << 60);
        assert_eq!(dst[1], u64::MAX);
        assert_eq!(dst[2], 0b11);
    }
}
