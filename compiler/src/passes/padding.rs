//! Idle neurons, so that a dense layer folds by any PE and feeds the next dense layer at any
//! SIMD, not only at divisors of its width.
//!
//! A fold file may give a hidden dense layer a PE that does not divide its outputs, or the
//! dense layer after it a SIMD that does not divide its inputs (the SFC's 256 neurons at PE 13
//! in 20 steps, where the divisors of 256 allow 16 or 32 steps only). The layer is then widened
//! to the least width both divide, and the neurons added do nothing that can be seen:
//! - an idle neuron has threshold 0, so its output is always 1 (a popcount is never negative);
//! - the next layer's weights for those inputs are 1, so each adds exactly 1 to every sum of
//!   that layer, and its thresholds (or, if it gives the scores, its score offsets, less
//!   `scale` per idle input) move by the same amount.
//!
//! So every later popcount is the model's plus a constant the thresholds absorb, and the
//! classes and scores are the model's to the bit: `verify` compares them with the reference of
//! the unpadded model. The idle neurons cost lanes and weight memory like the others; the
//! report gives their number per layer (`idle_outputs`).

use crate::ir::{Design, MvtuActivation, Stage};
use crate::CompileError;
use flip::bits::BitMatrix;
use flip::model::{Activation, Layer, Model};

/// Most idle neurons a layer may get, as a share of its outputs: beyond that a folding wastes
/// more lanes than a divisor of the width would cost, and is more likely a typo.
pub const MAX_IDLE_SHARE: f64 = 0.25;

/// Widens each hidden dense layer that a dense layer follows, where its PE or the next
/// layer's SIMD does not divide its outputs (PE and SIMD as set by the folding pass).
pub fn pad(design: &mut Design) -> Result<(), CompileError> {
    for i in 0..design.stages.len().saturating_sub(1) {
        let (Stage::Mvtu(a), Stage::Mvtu(b)) = (&design.stages[i], &design.stages[i + 1]) else {
            continue;
        };
        if !paddable(a, b) || a.pe == 0 || b.simd == 0 {
            continue;
        }
        let m = a.outputs;
        if m.is_multiple_of(a.pe) && m.is_multiple_of(b.simd) {
            continue;
        }
        let (pe, simd) = (a.pe, b.simd);
        let step = lcm(pe, simd);
        let padded = padded_width(m, pe, simd);
        let idle = padded - m;
        if idle as f64 > MAX_IDLE_SHARE * m as f64 {
            return Err(CompileError::Folding(format!(
                "layer {} ({} outputs): PE {pe} and layer {}'s SIMD {simd} need a multiple of \
                 {step} neurons; {padded} would leave {idle} idle (at most {:.0}% of a layer \
                 may be): choose PE and SIMD that divide {m} or nearly",
                a.index,
                m,
                b.index,
                MAX_IDLE_SHARE * 100.0
            )));
        }
        widen(&mut design.stages, i, padded)?;
    }
    Ok(())
}

/// Whether `a`'s outputs may get idle neurons for `b`, the stage after it: both dense, so `b`
/// reads `a`'s outputs as a vector of bits. A convolution's outputs are channels of a map, and
/// a first layer's inputs are pixels, not neurons.
fn paddable(a: &crate::ir::Mvtu, b: &crate::ir::Mvtu) -> bool {
    !a.is_conv() && !b.is_conv() && b.planes == 1
}

/// The width a layer of `width` neurons gets at PE `pe` before a layer at SIMD `next_simd`:
/// the least multiple of both at least `width`.
pub fn padded_width(width: usize, pe: usize, next_simd: usize) -> usize {
    let step = lcm(pe.max(1), next_simd.max(1));
    width.div_ceil(step) * step
}

/// The positions (among the MVTUs, input first) of the layers that may get idle neurons.
pub fn paddable_layers(design: &Design) -> Vec<usize> {
    let mut out = Vec::new();
    // `k`: the position of `a` among the MVTUs.
    let mut k = 0;
    for w in design.stages.windows(2) {
        if let [Stage::Mvtu(a), next] = w {
            if matches!(next, Stage::Mvtu(b) if paddable(a, b)) {
                out.push(k);
            }
            k += 1;
        }
    }
    out
}

/// `model` with binary layer `k` (position among the binary layers) widened to `widths[j]`
/// for each `(k, width)` in `widths`, as [`pad`] widens it: the same classes and scores, the
/// widths a folding of the exploration may give (see [`crate::dse::explore_padded`]).
pub fn widened(model: &Model, widths: &[(usize, usize)]) -> Result<Model, CompileError> {
    let mut design = crate::lower(model)?;
    let positions: Vec<usize> = design
        .stages
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Stage::Mvtu(_)))
        .map(|(i, _)| i)
        .collect();
    for &(k, width) in widths {
        widen(&mut design.stages, positions[k], width)?;
    }
    Ok(padded_model(model, &design))
}

/// Widens the MVTU at stage `i` to `width` neurons and the MVTU after it to read them.
fn widen(stages: &mut [Stage], i: usize, width: usize) -> Result<(), CompileError> {
    let (lo, hi) = stages.split_at_mut(i + 1);
    let (Stage::Mvtu(a), Some(Stage::Mvtu(b))) = (&mut lo[i], hi.first_mut()) else {
        return Err(CompileError::Invalid(format!(
            "stage {}: only a dense layer before a dense layer can be widened",
            i + 1
        )));
    };
    if !paddable(a, b) || width < a.outputs {
        return Err(CompileError::Invalid(format!(
            "layer {}: cannot be widened to {width}",
            a.index
        )));
    }
    let idle = width - a.outputs;
    widen_outputs(a, width)?;
    widen_inputs(b, width, idle)
}

/// The model `design` computes: `model` with its layers widened as the design's are (idle
/// neurons, and the next layers' weights and thresholds for them), for what is derived from a
/// model and must match the design layer by layer (the formal proofs' specification). Its
/// classes and scores are `model`'s.
pub fn padded_model(model: &Model, design: &Design) -> Model {
    let mut padded = model.clone();
    let mut mvtus = design.mvtus();
    for layer in padded.layers.iter_mut() {
        let Layer::Binary(b) = layer else {
            continue;
        };
        let Some(l) = mvtus.next() else {
            break;
        };
        if (b.inputs, b.outputs) == (l.inputs, l.outputs) {
            continue;
        }
        b.inputs = l.inputs;
        b.outputs = l.outputs;
        b.weights = l.weights.clone();
        b.activation = Activation::from(&l.activation);
    }
    padded
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

/// Adds always-on neurons (weights 0, threshold 0) up to `outputs`.
fn widen_outputs(l: &mut crate::ir::Mvtu, outputs: usize) -> Result<(), CompileError> {
    let MvtuActivation::Threshold { thresholds, invert } = &mut l.activation else {
        return Err(CompileError::Invalid(format!(
            "layer {}: only a hidden layer can get idle neurons",
            l.index
        )));
    };
    let idle = outputs - l.outputs;
    thresholds.extend(std::iter::repeat_n(0, idle));
    invert.extend(std::iter::repeat_n(false, idle));
    let mut w = BitMatrix::zeros(outputs, l.inputs);
    for r in 0..l.outputs {
        w.set_row(r, l.weights.row(r));
    }
    l.weights = w;
    l.idle_outputs += idle as u32;
    l.outputs = outputs;
    Ok(())
}

/// Reads `idle` more inputs, all 1, each with weight 1: every sum grows by `idle`, which the
/// thresholds or score offsets take back.
fn widen_inputs(l: &mut crate::ir::Mvtu, inputs: usize, idle: usize) -> Result<(), CompileError> {
    let (old, index) = (l.inputs, l.index);
    let mut w = BitMatrix::zeros(l.outputs, inputs);
    for r in 0..l.outputs {
        for c in 0..old {
            if l.weights.get(r, c) {
                w.set(r, c, true);
            }
        }
        for c in old..inputs {
            w.set(r, c, true);
        }
    }
    l.weights = w;
    l.inputs = inputs;
    let d = idle as i64;
    let over = |v: i64| {
        i32::try_from(v).map_err(|_| {
            CompileError::Invalid(format!(
                "layer {index}: a threshold or score offset moved by {idle} idle inputs leaves the \
                 32-bit range"
            ))
        })
    };
    match &mut l.activation {
        MvtuActivation::Threshold { thresholds, .. } => {
            for t in thresholds.iter_mut() {
                *t = over(*t as i64 + d)?;
            }
        }
        MvtuActivation::Scores { bias, scale } => {
            for (c, b) in bias.iter_mut().enumerate() {
                let s = scale.get(c).map_or(1, |&s| s as i64);
                *b = over(*b as i64 - s * d)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::passes::folding::{FoldFile, FoldSpec, LayerFold};
    use crate::random::{random_model, Rng};
    use flip::encoding::Encoding;

    fn fold(layers: &[(usize, usize)]) -> FoldSpec {
        let layers = layers
            .iter()
            .map(|&(pe, simd)| LayerFold { pe, simd })
            .collect::<Vec<_>>();
        FoldSpec::Manual(FoldFile::from(layers))
    }

    #[test]
    fn a_pe_that_does_not_divide_adds_idle_neurons_the_next_layer_absorbs() {
        let mut rng = Rng(7);
        let model = random_model(&mut rng, 10, 8, Encoding::Threshold(128), &[12, 4]);
        let flip::model::Layer::Binary(second) = &model.layers[1] else {
            unreachable!()
        };
        // PE 5 and the next SIMD 3 meet at 15: three idle neurons.
        let d = crate::compile(&model, &fold(&[(5, 2), (2, 3)])).unwrap();
        let l: Vec<_> = d.mvtus().collect();
        assert_eq!((l[0].outputs, l[0].idle_outputs), (15, 3));
        assert_eq!((l[1].inputs, l[1].idle_outputs), (15, 0));
        assert_eq!(d.cycles_per_frame(), 3 * 5);
        let crate::ir::MvtuActivation::Threshold { thresholds, .. } = &l[0].activation else {
            unreachable!()
        };
        assert_eq!(&thresholds[12..], &[0, 0, 0]);
        // Every neuron of the next layer reads the idle ones with weight 1 and gives back 3.
        let (
            crate::ir::MvtuActivation::Scores { bias, scale },
            flip::model::Activation::Scores { bias: want, .. },
        ) = (&l[1].activation, &second.activation)
        else {
            unreachable!()
        };
        for c in 0..4 {
            let s = scale.get(c).map_or(1, |&s| s as i32);
            assert_eq!(bias[c], want[c] - 3 * s);
            assert!((12..15).all(|j| l[1].weights.get(c, j)));
        }
        // The model the design computes has the design's widths and the model's scores.
        let padded = super::padded_model(&model, &d);
        padded.check().unwrap();
        assert_eq!(padded.arch(), "10-15-4");
        let mut px = Rng(9);
        for _ in 0..50 {
            let img: Vec<u8> = (0..10).map(|_| px.range(0, 255) as u8).collect();
            assert_eq!(
                flip::reference::binary_scores(&padded, &img),
                flip::reference::binary_scores(&model, &img)
            );
        }
        let report = crate::report(&d);
        assert_eq!(report["layers"][1]["idle_outputs"], 3);
        // Divisors pad nothing.
        let d = crate::compile(&model, &fold(&[(4, 2), (2, 6)])).unwrap();
        assert!(d.mvtus().all(|l| l.idle_outputs == 0));
    }

    #[test]
    fn padding_beyond_a_quarter_is_an_error_naming_the_layers() {
        let mut rng = Rng(8);
        let model = random_model(&mut rng, 10, 8, Encoding::Threshold(128), &[12, 4]);
        // PE 7 and SIMD 8 meet at 56.
        let e = crate::compile(&model, &fold(&[(7, 2), (2, 8)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer 1") && e.contains("layer 2's SIMD 8"),
            "{e}"
        );
        assert!(e.contains("44 idle"), "{e}");
        // A PE a little above the width pads it; far above, it is refused like the rest.
        let d = crate::compile(&model, &fold(&[(13, 2), (2, 1)])).unwrap();
        assert_eq!(d.mvtus().next().unwrap().outputs, 13);
        let e = crate::compile(&model, &fold(&[(40, 2), (2, 1)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PE 40") && e.contains("28 idle"), "{e}");
    }
}
