//! Post-training quantisation of a float model, and the folds that turn an affine map of a
//! binary neuron's popcount into the reference's integer thresholds and score offsets.
//!
//! From one float model ([`crate::model::FloatLayer`]s) this makes:
//! - **f16**: weights, scales and shifts rounded through IEEE half precision ([`to_f16`]);
//! - **int8**: each weight row rounded to 255 levels of a symmetric per-row scale
//!   `max |w| / 127`, scales and shifts kept in f32 ([`to_int8`]); activations stay f32;
//! - **binary**: weights replaced by their signs and each row's mean magnitude folded with the
//!   layer's scale and shift into integer thresholds and direction bits (hidden layers) or
//!   integer score offsets (last layer), giving an ordinary binary model that
//!   [`crate::reference::binary_scores`] runs and the compiler accepts ([`to_binary`]).
//!
//! Convolutions are quantised as dense layers are, one weight row per output channel; max-pools
//! are kept (a binary max-pool is the OR of its window's bits).
//!
//! f16 and int8 results are float models holding the rounded values. The binary conversion
//! needs no data; it is the post-training baseline that binary-aware training is measured
//! against, and usually loses a lot.

use crate::bits::BitMatrix;
use crate::model::{Activation, BinaryLayer, FloatLayer, Layer, MaxPool, Model};
use crate::reference;
use crate::train::latent::input_top;

/// Why a model could not be quantised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuantizeError {
    /// The input already has binary layers.
    #[error("not a float model (quantize takes the output of --optimizer float)")]
    NotFloat,
    /// The model is inconsistent.
    #[error("invalid model: {0}")]
    Invalid(String),
}

/// The precisions [`quantize_all`] produces, in order.
pub const PRECISIONS: [&str; 4] = ["f32", "f16", "int8", "binary"];

/// One precision's model and its test accuracy.
#[derive(Clone, Debug)]
pub struct Quantized {
    /// `f32`, `f16`, `int8` or `binary`.
    pub precision: &'static str,
    /// The model at that precision.
    pub model: Model,
    /// Test accuracy under the software reference.
    pub accuracy: f64,
}

/// Hidden neuron `y = a s + b >= 0` over an integer popcount sum `s` in `0..=smax`, as the
/// reference's `(s >= T) XOR invert`. Exact: for every integer `s` the two agree (computed in
/// f64). `T` is clamped to `0..=smax + 1`, which covers "always" and "never".
pub fn fold_threshold(a: f64, b: f64, smax: i64) -> (i32, bool) {
    let hi = smax.saturating_add(1).min(i32::MAX as i64) as f64;
    let clamp = |t: f64| t.clamp(0.0, hi) as i32;
    if !(a.is_finite() && b.is_finite()) || a == 0.0 {
        // A constant neuron: y = b (NaN counts as negative).
        return (0, b.is_nan() || b < 0.0 || a.is_nan());
    }
    let t = -b / a;
    if a > 0.0 {
        // s >= t  <=>  s >= ceil(t)
        (clamp(t.ceil()), false)
    } else {
        // s <= t  <=>  !(s >= floor(t) + 1)
        (clamp(t.floor() + 1.0), true)
    }
}

/// Class scores `a s_c + shift_c` with one positive scale `a` shared by all classes, as the
/// reference's `s_c + bias_c` with the same argmax up to rounding `shift_c / a` to an integer.
pub fn fold_scores(a: f64, shifts: &[f64]) -> Vec<i32> {
    if !(a.is_finite() && a > 0.0) {
        return vec![0; shifts.len()];
    }
    shifts
        .iter()
        .map(|&b| {
            let v = (b / a).round();
            if v.is_finite() {
                v.clamp(i32::MIN as f64 / 2.0, i32::MAX as f64 / 2.0) as i32
            } else {
                0
            }
        })
        .collect()
}

/// A float model's layers, each a float layer (dense or convolution) or a max-pool.
enum Part<'a> {
    Float(&'a FloatLayer),
    Pool(&'a MaxPool),
}

fn float_layers(m: &Model) -> Result<Vec<Part<'_>>, QuantizeError> {
    m.check().map_err(|e| QuantizeError::Invalid(e.0))?;
    if !m.layers.iter().any(|l| matches!(l, Layer::Float(_))) {
        return Err(QuantizeError::NotFloat);
    }
    m.layers
        .iter()
        .map(|l| match l {
            Layer::Float(f) => Ok(Part::Float(f)),
            Layer::Binary(_) => Err(QuantizeError::NotFloat),
            Layer::MaxPool(p) => Ok(Part::Pool(p)),
        })
        .collect()
}

/// `f` applied to every float layer; pools are kept as they are.
fn map_float(
    m: &Model,
    f: impl Fn(&FloatLayer) -> FloatLayer,
) -> Result<Vec<Layer>, QuantizeError> {
    Ok(float_layers(m)?
        .into_iter()
        .map(|p| match p {
            Part::Float(l) => Layer::Float(f(l)),
            Part::Pool(p) => Layer::MaxPool(*p),
        })
        .collect())
}

fn with_layers(m: &Model, layers: Vec<Layer>, precision: &str) -> Model {
    let mut meta = m.meta.clone();
    meta.extra
        .insert("source_optimizer".into(), m.meta.optimizer.clone());
    meta.extra.insert("precision".into(), precision.into());
    meta.optimizer = "quantize".into();
    meta.test_accuracy = None;
    Model {
        input: m.input.clone(),
        layers,
        meta,
    }
}

/// Rounds a value through IEEE half precision.
pub fn round_f16(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// Weights, scales and shifts rounded through f16.
pub fn to_f16(m: &Model) -> Result<Model, QuantizeError> {
    let layers = map_float(m, |l| {
        let r = |v: &Vec<f32>| v.iter().map(|&x| round_f16(x)).collect();
        FloatLayer {
            weights: r(&l.weights),
            scale: r(&l.scale),
            shift: r(&l.shift),
            ..l.clone()
        }
    })?;
    Ok(with_layers(m, layers, "f16"))
}

/// One weight row rounded to `q * s`, `q` in `-127..=127`, `s = max |w| / 127`.
pub fn int8_row(row: &[f32]) -> Vec<f32> {
    let max = row.iter().fold(0f32, |a, &w| a.max(w.abs()));
    if max == 0.0 || !max.is_finite() {
        return row.to_vec();
    }
    let s = max / 127.0;
    row.iter()
        .map(|&w| (w / s).round().clamp(-127.0, 127.0) * s)
        .collect()
}

/// Weights rounded to 8-bit integers with a symmetric per-row scale (held as the rounded f32
/// values); scales and shifts stay f32.
pub fn to_int8(m: &Model) -> Result<Model, QuantizeError> {
    let layers = map_float(m, |l| {
        let weights = l
            .weights
            .chunks(l.inputs.max(1))
            .flat_map(int8_row)
            .collect();
        FloatLayer {
            weights,
            ..l.clone()
        }
    })?;
    Ok(with_layers(m, layers, "int8"))
}

/// Signs of the weights with each row's mean magnitude, scale and shift folded into the
/// reference's integer thresholds (hidden) and score offsets (last layer).
///
/// Row `r` is approximated by `a_r sign(w_r)` with `a_r = mean |w_r|`, so a hidden neuron's
/// `y = scale (w . x) + shift` becomes `k d + shift` with `k = scale a_r` and the +-1 dot
/// product `d = 2s - top n` (`top` = largest input value, `2^P - 1` on bit planes). A last-layer
/// row whose `k` is negative has its signs inverted so every `k` is positive; the classes then
/// share the mean `k`, which is what integer scores `s + bias` can express.
///
/// A convolution folds the same way per output channel (its `n` is the window); a float
/// max-pool becomes a binary one, which is exact: hardtanh and `sign` keep order, so the OR of
/// a window's sign bits is the sign of its largest value.
pub fn to_binary(m: &Model) -> Result<Model, QuantizeError> {
    let parts = float_layers(m)?;
    let nl = parts.len();
    let top = input_top(&m.input.encoding) as f64;
    let mut layers = Vec::with_capacity(nl);
    for (l, part) in parts.iter().enumerate() {
        let f = match part {
            Part::Float(f) => f,
            Part::Pool(p) => {
                layers.push(Layer::MaxPool(**p));
                continue;
            }
        };
        let (n, rows) = (f.inputs, f.outputs);
        let t = if l == 0 { top } else { 1.0 };
        let mut bits = BitMatrix::zeros(rows, n);
        let mut ks = Vec::with_capacity(rows);
        for r in 0..rows {
            let row = &f.weights[r * n..(r + 1) * n];
            let a = row.iter().map(|w| w.abs() as f64).sum::<f64>() / n as f64;
            let mut k = f.scale[r] as f64 * a;
            let flip = l + 1 == nl && k < 0.0;
            if flip {
                k = -k;
            }
            for (j, &w) in row.iter().enumerate() {
                if (w >= 0.0) != flip {
                    bits.set(r, j, true);
                }
            }
            ks.push(k);
        }
        let activation = if l + 1 < nl {
            let (thresholds, invert) = (0..rows)
                .map(|r| {
                    let (k, c) = (ks[r], f.shift[r] as f64);
                    // y = k (2s - t n) + c
                    fold_threshold(2.0 * k, c - k * t * n as f64, (t as i64) * n as i64)
                })
                .unzip();
            Activation::Threshold { thresholds, invert }
        } else {
            let k = ks.iter().sum::<f64>() / rows as f64;
            let shifts: Vec<f64> = f.shift.iter().map(|&c| c as f64).collect();
            Activation::Scores {
                bias: fold_scores(2.0 * k, &shifts),
                scale: Vec::new(),
            }
        };
        layers.push(Layer::Binary(BinaryLayer {
            inputs: n,
            outputs: rows,
            weights: bits,
            activation,
            conv: f.conv,
        }));
    }
    Ok(with_layers(m, layers, "binary"))
}

/// The float model at every precision in [`PRECISIONS`], each with its test accuracy on
/// `images`/`labels` (also stored in its metadata).
pub fn quantize_all(
    m: &Model,
    images: &[u8],
    labels: &[u8],
) -> Result<Vec<Quantized>, QuantizeError> {
    float_layers(m)?;
    let mut f32m = m.clone();
    f32m.meta.test_accuracy = None;
    let models = [f32m, to_f16(m)?, to_int8(m)?, to_binary(m)?];
    Ok(PRECISIONS
        .iter()
        .zip(models)
        .map(|(&precision, mut model)| {
            let accuracy = reference::accuracy(&model, images, labels);
            model.meta.test_accuracy = Some(accuracy);
            Quantized {
                precision,
                model,
                accuracy,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::Encoding;
    use crate::model::{InputSpec, Metadata};
    use crate::train::rng::Stream;

    fn float_model(seed: u64) -> Model {
        let mut s = Stream::new(seed, 0);
        let input = InputSpec {
            width: 4,
            height: 4,
            channels: 1,
            pixel_bits: 8,
            encoding: Encoding::BitPlanes(3),
        };
        let mut layers = Vec::new();
        let mut n = 16;
        for (i, &m) in [12usize, 5].iter().enumerate() {
            let _ = i;
            layers.push(Layer::Float(FloatLayer {
                conv: None,
                inputs: n,
                outputs: m,
                weights: (0..n * m).map(|_| s.normal() * 0.3).collect(),
                scale: (0..m).map(|_| s.normal()).collect(),
                shift: (0..m).map(|_| s.normal()).collect(),
            }));
            n = m;
        }
        Model {
            input,
            layers,
            meta: Metadata::default(),
        }
    }

    #[test]
    fn f16_and_int8_errors_are_within_half_a_step() {
        let m = float_model(3);
        let h = to_f16(&m).unwrap();
        let q = to_int8(&m).unwrap();
        h.check().unwrap();
        q.check().unwrap();
        for ((a, b), c) in m.layers.iter().zip(&h.layers).zip(&q.layers) {
            let (Layer::Float(a), Layer::Float(b), Layer::Float(c)) = (a, b, c) else {
                panic!("float layers expected")
            };
            for (x, y) in a.weights.iter().zip(&b.weights) {
                // f16 has 11 significant bits: relative error <= 2^-11 (normal range).
                assert!(
                    (x - y).abs() <= x.abs() * (1.0 / 2048.0) + 1e-7,
                    "{x} vs {y}"
                );
            }
            for (ra, rc) in a.weights.chunks(a.inputs).zip(c.weights.chunks(c.inputs)) {
                let s = ra.iter().fold(0f32, |m, w| m.max(w.abs())) / 127.0;
                let mut levels = std::collections::BTreeSet::new();
                for (x, y) in ra.iter().zip(rc) {
                    assert!((x - y).abs() <= s * 0.5 + 1e-6, "{x} vs {y}");
                    let k = y / s;
                    assert!((k - k.round()).abs() < 1e-3 && k.abs() <= 127.0 + 1e-3);
                    levels.insert(k.round() as i32);
                }
                assert!(levels.len() <= 255);
            }
            assert_eq!(a.scale, c.scale);
        }
    }

    #[test]
    fn fold_threshold_is_exact_on_every_sum() {
        let mut s = Stream::new(11, 0);
        for _ in 0..2000 {
            let a = s.normal() as f64 * 3.0;
            let b = s.normal() as f64 * 40.0;
            let smax = 30;
            let (t, inv) = fold_threshold(a, b, smax);
            for x in 0..=smax {
                let want = a * x as f64 + b >= 0.0;
                assert_eq!((x as i32 >= t) ^ inv, want, "a={a} b={b} s={x}");
            }
        }
        // Constant neurons.
        assert_eq!(fold_threshold(0.0, 1.0, 5), (0, false));
        assert_eq!(fold_threshold(0.0, -1.0, 5), (0, true));
        // Exact ties land on the >= side.
        assert_eq!(fold_threshold(2.0, -6.0, 10), (3, false));
        assert_eq!(fold_threshold(-2.0, 6.0, 10), (4, true));
    }

    #[test]
    fn binary_fold_of_a_sign_weight_model_is_exact() {
        // Weights already +-c: the sign model is the float model with hardtanh replaced by
        // sign. Check one hidden layer's bits and the argmax against a float evaluation.
        let mut m = float_model(5);
        let last = m.layers.len() - 1;
        for (i, l) in m.layers.iter_mut().enumerate() {
            if let Layer::Float(f) = l {
                for w in &mut f.weights {
                    *w = if *w >= 0.0 { 0.25 } else { -0.25 };
                }
                if i == last {
                    // Integer scores can only share one scale across classes.
                    f.scale.iter_mut().for_each(|s| *s = 0.7);
                }
            }
        }
        let b = to_binary(&m).unwrap();
        b.check().unwrap();
        let mut s = Stream::new(6, 0);
        let mut agree = 0;
        for _ in 0..300 {
            let px: Vec<u8> = (0..16).map(|_| (s.next_u64() & 255) as u8).collect();
            // Float forward with sign activations.
            let mut v = vec![0i16; 16];
            m.input.encoding.input_values(8, &px, &mut v);
            let mut x: Vec<f32> = v.iter().map(|&q| q as f32).collect();
            for (i, l) in m.layers.iter().enumerate() {
                let Layer::Float(f) = l else { unreachable!() };
                let y = reference::float_layer(f, &x, true);
                x = if i + 1 < m.layers.len() {
                    y.iter()
                        .map(|&v| if v >= 0.0 { 1.0 } else { -1.0 })
                        .collect()
                } else {
                    y
                };
            }
            if reference::argmax(&x) == reference::argmax(&reference::binary_scores(&b, &px)) {
                agree += 1;
            }
        }
        // Scores differ only by rounding the offsets and the shared scale.
        assert!(agree >= 240, "{agree}/300");
    }

    /// A float conv net with sign-like weights `+-0.25`: its binarisation classifies as the
    /// float net does with `sign` activations, and f16/int8 keep the conv and pool layers.
    #[test]
    fn conv_models_quantize_and_binarise_like_dense_ones() {
        use crate::model::arch::{parse, shapes, LayerShape};
        let input = InputSpec {
            width: 7,
            height: 7,
            channels: 1,
            pixel_bits: 8,
            encoding: Encoding::BitPlanes(3),
        };
        let arch = shapes(&parse("c6k2-p-c5k2-7-4", 49).unwrap(), &input, 4).unwrap();
        let mut s = Stream::new(12, 0);
        let nl = arch.len();
        let layers: Vec<Layer> = arch
            .iter()
            .enumerate()
            .map(|(i, shape)| {
                let (n, m) = (shape.fan_in(), shape.neurons());
                let conv = match shape {
                    LayerShape::Pool(p) => return Layer::MaxPool(*p),
                    LayerShape::Conv { conv, .. } => Some(*conv),
                    LayerShape::Dense { .. } => None,
                };
                Layer::Float(FloatLayer {
                    inputs: n,
                    outputs: m,
                    weights: (0..n * m)
                        .map(|_| if s.normal() >= 0.0 { 0.25 } else { -0.25 })
                        .collect(),
                    // Integer scores can only share one scale across classes.
                    scale: (0..m)
                        .map(|_| if i + 1 == nl { 0.7 } else { s.normal() })
                        .collect(),
                    shift: (0..m).map(|_| s.normal()).collect(),
                    conv,
                })
            })
            .collect();
        let m = Model {
            input: input.clone(),
            layers,
            meta: Metadata::default(),
        };
        m.check().unwrap();
        // The same net with `sign` for `hardtanh`: hidden scales and shifts blown up so that
        // hardtanh saturates to +-1 except within 1e-5 of zero.
        let mut sign_net = m.clone();
        for l in sign_net.layers[..nl - 1].iter_mut() {
            if let Layer::Float(f) = l {
                f.scale.iter_mut().for_each(|v| *v *= 1e5);
                f.shift.iter_mut().for_each(|v| *v *= 1e5);
            }
        }
        let b = to_binary(&m).unwrap();
        b.check().unwrap();
        assert_eq!(b.arch(), "c6k2-p-c5k2-7-4");
        let (h, q) = (to_f16(&m).unwrap(), to_int8(&m).unwrap());
        assert_eq!((h.arch(), q.arch()), (m.arch(), m.arch()));
        let (mut agree, mut classes) = (0, std::collections::BTreeSet::new());
        for _ in 0..300 {
            let px: Vec<u8> = (0..49).map(|_| (s.next_u64() & 255) as u8).collect();
            let want = reference::argmax(&reference::float_scores(&sign_net, &px));
            classes.insert(want);
            if want == reference::argmax(&reference::binary_scores(&b, &px)) {
                agree += 1;
            }
            let (f, g) = (
                reference::float_scores(&m, &px),
                reference::float_scores(&h, &px),
            );
            for (x, y) in f.iter().zip(&g) {
                assert!((x - y).abs() < 0.05 * (1.0 + x.abs()), "f16 {y} vs f32 {x}");
            }
        }
        // Scores differ only by rounding the offsets.
        assert!(
            agree >= 240 && classes.len() >= 2,
            "{agree}/300, {classes:?}"
        );
    }

    #[test]
    fn binary_models_are_rejected() {
        let m = float_model(1);
        let b = to_binary(&m).unwrap();
        assert_eq!(to_f16(&b).unwrap_err(), QuantizeError::NotFloat);
        assert!(quantize_all(&b, &[], &[]).is_err());
    }
}
