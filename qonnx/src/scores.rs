//! Integer class scores that pick the same class as real ones.
//!
//! A graph's last layer gives class `c` the real score `a[c] * s[c] + b[c]` of its sum `s[c]`
//! (agreements, `0..=smax`); after the importer has negated the weights of classes with a
//! negative factor, every `a[c]` is positive. flipchip's scores are `scale[c] * s + bias[c]`
//! in integers, and the class is the argmax, the lowest index on ties, as numpy's `argmax` and
//! qonnx's. [`integer_scores`] finds the smallest power-of-two resolution at which rounding
//! `a / unit` and `b / unit` gives scores that decide every pair of classes the same way as the
//! real ones for every pair of sums, and checks it exhaustively: class `i` beats `j` (`i < j`)
//! at sums `(s_i, s_j)` iff `y_i >= y_j`, so for each `s_i` the sums `s_j` that lose to it are a
//! prefix `0..=t`, and the real and the integer `t` must agree. Real scores within 1e-6 of an
//! agreement of each other count as equal (float rounding in the graph's own arithmetic); all
//! factors equal gives `scale` 1 (no multiplier), so uniform scales import as before.

/// Per-class integer multipliers (empty if all are 1) and offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntScores {
    /// `scale[c]`, or empty: 1 for every class.
    pub scale: Vec<u32>,
    /// `bias[c]`.
    pub bias: Vec<i32>,
}

/// Ties within this many agreements are ties.
const TIE: f64 = 1e-6;

/// Finer resolutions tried beyond the coarsest (`unit = min(a)`), one bit each.
const MAX_BITS: i32 = 30;

/// The integer scores equivalent to `a[c] * s + b[c]` over `s` in `0..=smax`, or why none fit
/// 32-bit scores. Every `a[c]` must be positive and finite.
pub fn integer_scores(a: &[f64], b: &[f64], smax: u64) -> Result<IntScores, String> {
    assert_eq!(a.len(), b.len(), "one factor and one offset per class");
    let amin = a.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(amin > 0.0 && amin.is_finite(), "positive factors");
    // Units relative to the smallest factor, then absolute powers of two: integer per-class
    // scales such as 7, 19 and 36 (a flipchip model's, exported) need unit 1, which no
    // 7 / 2^k reaches before the scores outgrow 32 bits.
    let relative: Vec<f64> = (0..=MAX_BITS).map(|b| amin / 2f64.powi(b)).collect();
    let absolute: Vec<f64> = (0..=MAX_BITS).map(|b| 2f64.powi(-b)).collect();
    for units in [relative, absolute] {
        if let Some(found) = try_units(a, b, &units, smax) {
            return Ok(found);
        }
    }
    Err(format!(
        "no integer scores of 32 bits pick the same class for every input (factors {}, \
         offsets {})",
        list(a),
        list(b)
    ))
}

/// The first of `units`, coarsest first, at which rounded scores decide alike; `None` once
/// the scores outgrow 32 bits.
fn try_units(a: &[f64], b: &[f64], units: &[f64], smax: u64) -> Option<IntScores> {
    for &unit in units {
        let scale: Vec<i64> = a.iter().map(|&x| (x / unit).round() as i64).collect();
        let bias: Vec<i64> = b
            .iter()
            .map(|&x| {
                // An offset within a tie of an integer is that integer.
                let v = x / unit;
                let r = v.round();
                if (v - r).abs() <= TIE {
                    r as i64
                } else {
                    v.floor() as i64
                }
            })
            .collect();
        let fits = scale.iter().zip(&bias).all(|(&m, &c)| {
            m >= 1
                && m <= u32::MAX as i64
                && (m as i128 * smax as i128 + c.max(0) as i128) <= i32::MAX as i128
                && c >= i32::MIN as i64
        });
        if !fits {
            return None;
        }
        if decides_alike(a, b, &scale, &bias, smax) {
            let uniform = scale.iter().all(|&m| m == 1);
            return Some(IntScores {
                scale: if uniform {
                    Vec::new()
                } else {
                    scale.iter().map(|&m| m as u32).collect()
                },
                bias: bias.iter().map(|&c| c as i32).collect(),
            });
        }
    }
    None
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.6}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// True if the integer scores decide every pair of classes as the real ones do, for every
/// pair of sums.
fn decides_alike(a: &[f64], b: &[f64], m: &[i64], c: &[i64], smax: u64) -> bool {
    let n = a.len();
    let clamp = |t: i64| t.clamp(-1, smax as i64);
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            // Class i beats j at a tie only if it comes first.
            let tie_wins = i < j;
            for s in 0..=smax as i64 {
                // Real: the largest s_j with y_j(s_j) <= y_i(s) (or < without the tie).
                let r = (a[i] * s as f64 + b[i] - b[j]) / a[j];
                let k = r.round();
                let real = if (r - k).abs() <= TIE {
                    if tie_wins {
                        k as i64
                    } else {
                        k as i64 - 1
                    }
                } else {
                    r.floor() as i64
                };
                // Integer: the same with exact division.
                let d = m[i] * s + c[i] - c[j] - i64::from(!tie_wins);
                let int = d.div_euclid(m[j]);
                if clamp(real) != clamp(int) {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The class of real scores, lowest index on ties (within [`TIE`]).
    fn real_class(a: &[f64], b: &[f64], s: &[u64]) -> usize {
        let y: Vec<f64> = (0..a.len()).map(|c| a[c] * s[c] as f64 + b[c]).collect();
        let mut best = 0;
        for c in 1..y.len() {
            if y[c] > y[best] + TIE * a[c].max(a[best]) {
                best = c;
            }
        }
        best
    }

    fn int_class(x: &IntScores, s: &[u64]) -> usize {
        let y: Vec<i64> = (0..x.bias.len())
            .map(|c| x.scale.get(c).map_or(1, |&m| m as i64) * s[c] as i64 + x.bias[c] as i64)
            .collect();
        let mut best = 0;
        for c in 1..y.len() {
            if y[c] > y[best] {
                best = c;
            }
        }
        best
    }

    #[test]
    fn uniform_factors_need_no_multiplier() {
        let x = integer_scores(&[0.5, 0.5, 0.5], &[1.0, -2.0, 0.5], 8).unwrap();
        assert!(x.scale.is_empty());
        assert_eq!(x.bias, vec![2, -4, 1]);
    }

    #[test]
    fn per_class_factors_pick_the_real_class_on_every_input() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..30 {
            let n = 2 + (next() * 4.0) as usize;
            let smax = 1 + (next() * 12.0) as u64;
            let a: Vec<f64> = (0..n).map(|_| 0.1 + 3.0 * next()).collect();
            let b: Vec<f64> = (0..n).map(|_| 10.0 * next() - 5.0).collect();
            let x = integer_scores(&a, &b, smax).unwrap();
            assert!(!x.scale.is_empty(), "{a:?}");
            // Every combination of sums.
            let mut s = vec![0u64; n];
            loop {
                assert_eq!(
                    int_class(&x, &s),
                    real_class(&a, &b, &s),
                    "{a:?} {b:?} {s:?}"
                );
                let mut k = 0;
                while k < n && s[k] == smax {
                    s[k] = 0;
                    k += 1;
                }
                if k == n {
                    break;
                }
                s[k] += 1;
            }
        }
    }

    #[test]
    fn exact_ties_keep_the_lowest_class() {
        // Classes 0 and 1 tie whenever s0 = 2 * s1 + 1: the integer scores must tie there too.
        let x = integer_scores(&[1.0, 2.0], &[0.0, 1.0], 6).unwrap();
        assert_eq!(x.scale, vec![1, 2]);
        assert_eq!(x.bias, vec![0, 1]);
        assert_eq!(int_class(&x, &[3, 1]), 0);
    }

    /// A flipchip model's own integer scales, as its export gives them back.
    #[test]
    fn integer_factors_keep_unit_one() {
        let a = [36.0, 19.0, 37.0, 7.0, 8.0];
        let b = [-1.0, -4.0, 0.0, 0.0, 4.0];
        let x = integer_scores(&a, &b, 16).unwrap();
        assert_eq!(x.scale, vec![36, 19, 37, 7, 8]);
        assert_eq!(x.bias, vec![-1, -4, 0, 0, 4]);
    }

    #[test]
    fn factors_beyond_32_bit_scores_are_refused() {
        let e = integer_scores(&[1.0, 1.000001], &[0.0, -0.5], 1 << 20).unwrap_err();
        assert!(e.contains("no integer scores of 32 bits"), "{e}");
    }
}
