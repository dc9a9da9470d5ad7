//! Fitting the LUT coefficients of [`crate::blocks::cost`] to synthesis results.
//!
//! A sample is a compiled design's summed [`Features`] and the LUT4s Yosys made of it. The fit
//! minimises the squared *relative* error (each sample's row divided by its LUT count, so a
//! 500-LUT design weighs as much as a 50,000-LUT one) under non-negative coefficients: a
//! negative cost per bit would fit the data by cancelling features against each other and
//! then extrapolate badly. With nine features the exact non-negative solution is found by
//! solving the unconstrained problem on every subset of features and keeping the best subset
//! whose solution is non-negative (511 small solves).

use crate::blocks::{Family, Features};
use crate::ir::Design;

/// Number of coefficients.
const N: usize = Features::NAMES.len();

/// One synthesised design.
#[derive(Clone, Debug)]
pub struct Sample {
    /// A label (the build directory).
    pub name: String,
    /// The design's features, summed over its blocks.
    pub features: Features,
    /// LUT4s Yosys used.
    pub luts: u64,
}

impl Sample {
    /// The sample of `design` for `family`, synthesised to `luts`.
    pub fn new(name: String, design: &Design, family: Family, luts: u64) -> Sample {
        Sample {
            name,
            features: design_features(design, family),
            luts,
        }
    }
}

/// A design's features: the sum over its blocks.
pub fn design_features(design: &Design, family: Family) -> Features {
    design
        .blocks()
        .map(|b| b.features(family))
        .fold(Features::default(), |a, b| a + b)
}

/// A design recorded in a calibration CSV (as `flipchip calibrate --csv` writes it).
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The design's features and Yosys's LUT4s.
    pub sample: Sample,
    /// Block RAMs Yosys used.
    pub yosys_brams: u64,
    /// Block RAMs estimated when it was recorded.
    pub est_brams: u64,
}

/// The designs of a calibration CSV: a header naming `design`, `yosys_luts`, `yosys_brams`,
/// `est_brams` and feature columns by [`Features::NAMES`]; a feature without a column is 0
/// (files written before it existed). `file` names the file in errors.
pub fn parse_csv(text: &str, file: &str) -> Result<Vec<Recorded>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| format!("{file}: empty file"))?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("{file}: the header has no column {name:?}"))
    };
    let (design, luts, ybrams, ebrams) = (
        col("design")?,
        col("yosys_luts")?,
        col("yosys_brams")?,
        col("est_brams")?,
    );
    let feature_cols: Vec<Option<usize>> = Features::NAMES.iter().map(|n| col(n).ok()).collect();
    let mut out = Vec::new();
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != cols.len() {
            return Err(format!(
                "{file} line {}: {} fields, the header has {}",
                i + 1,
                cells.len(),
                cols.len()
            ));
        }
        let num = |c: usize| {
            cells[c]
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    format!(
                        "{file} line {}: {:?} = {:?} is not a non-negative number",
                        i + 1,
                        cols[c],
                        cells[c]
                    )
                })
        };
        let mut v = [0.0; N];
        for (k, c) in feature_cols.iter().enumerate() {
            if let Some(c) = c {
                v[k] = num(*c)?;
            }
        }
        let whole = |c: usize| -> Result<u64, String> {
            let x = num(c)?;
            if x.fract() != 0.0 {
                return Err(format!(
                    "{file} line {}: {:?} = {x} is not a count",
                    i + 1,
                    cols[c]
                ));
            }
            Ok(x as u64)
        };
        out.push(Recorded {
            sample: Sample {
                name: cells[design].to_string(),
                features: Features::from_vector(v),
                luts: whole(luts)?,
            },
            yosys_brams: whole(ybrams)?,
            est_brams: whole(ebrams)?,
        });
    }
    Ok(out)
}

/// The fitted coefficients, in [`Features::NAMES`] order.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Coefficients, all non-negative.
    pub coefficients: [f64; N],
}

impl Fit {
    /// LUTs the fit predicts for features `f`.
    pub fn luts(&self, f: &Features) -> f64 {
        self.coefficients
            .iter()
            .zip(f.vector())
            .map(|(c, x)| c * x)
            .sum()
    }

    /// `(predicted - measured) / measured` for a sample.
    pub fn error(&self, s: &Sample) -> f64 {
        (self.luts(&s.features) - s.luts as f64) / s.luts.max(1) as f64
    }
}

/// Why a fit could not be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    /// No samples.
    #[error("no synthesised designs to fit")]
    Empty,
    /// A sample Yosys reports as empty.
    #[error("{0}: Yosys reports 0 LUTs (was the synthesis complete?)")]
    ZeroLuts(String),
    /// Every subset was singular or had a negative solution.
    #[error("no non-negative fit exists for these samples")]
    NoFit,
}

/// The non-negative least-squares fit of relative error (see the module documentation).
pub fn fit(samples: &[Sample]) -> Result<Fit, FitError> {
    fit_only(samples, [0.0; N], &(0..N).collect::<Vec<_>>())
}

/// The fit of only the coefficients `free` (indices into [`Features::NAMES`]), the others held
/// at `held`'s values: a feature added later is fitted to new designs alone while the earlier
/// coefficients keep the fit of the designs they came from.
pub fn fit_only(samples: &[Sample], held: [f64; N], free: &[usize]) -> Result<Fit, FitError> {
    if samples.is_empty() {
        return Err(FitError::Empty);
    }
    if let Some(s) = samples.iter().find(|s| s.luts == 0) {
        return Err(FitError::ZeroLuts(s.name.clone()));
    }
    let rows: Vec<([f64; N], f64)> = samples
        .iter()
        .map(|s| (s.features.vector(), s.luts as f64))
        .collect();
    let mut base = held;
    let mut mask = 0u32;
    for &i in free {
        base[i] = 0.0;
        mask |= 1 << i;
    }
    fit_vectors_with(&rows, &base, mask)
        .map(|coefficients| Fit { coefficients })
        .ok_or(FitError::NoFit)
}

/// The non-negative least-squares fit of relative error of `features . c = measured` over
/// `(features, measured)` rows (every `measured` above 0), for any number of features `M`
/// (the LUT estimate's and the ASIC area's, [`crate::asic_area`]); `None` if no non-negative
/// solution exists.
pub fn fit_vectors<const M: usize>(samples: &[([f64; M], f64)]) -> Option<[f64; M]> {
    fit_vectors_with(samples, &[0.0; M], (1u32 << M) - 1)
}

/// [`fit_vectors`] of the coefficients in `free` (a bit mask), the others fixed at `base`'s
/// values (`base` is 0 on `free`).
fn fit_vectors_with<const M: usize>(
    samples: &[([f64; M], f64)],
    base: &[f64; M],
    free: u32,
) -> Option<[f64; M]> {
    let rows: Vec<[f64; M]> = samples.iter().map(|(f, y)| f.map(|x| x / y)).collect();
    // What the free coefficients must explain of each row's relative value 1.
    let targets: Vec<f64> = rows
        .iter()
        .map(|r| 1.0 - r.iter().zip(base).map(|(a, b)| a * b).sum::<f64>())
        .collect();
    let residual = |c: &[f64; M]| -> f64 {
        rows.iter()
            .map(|r| {
                let p: f64 = r.iter().zip(c).map(|(a, b)| a * b).sum();
                (p - 1.0) * (p - 1.0)
            })
            .sum()
    };
    let mut best: Option<([f64; M], f64)> = None;
    for mask in 1u32..(1 << M) {
        if mask & !free != 0 {
            continue;
        }
        let cols: Vec<usize> = (0..M).filter(|&i| mask >> i & 1 == 1).collect();
        let Some(x) = least_squares(&rows, &targets, &cols) else {
            continue;
        };
        if x.iter().any(|&v| v < 0.0) {
            continue;
        }
        let mut c = *base;
        for (&i, &v) in cols.iter().zip(&x) {
            c[i] = v;
        }
        let r = residual(&c);
        if best.is_none_or(|(_, b)| r < b) {
            best = Some((c, r));
        }
    }
    best.map(|(c, _)| c)
}

/// Least squares of `rows * x = targets` over columns `cols`, by the normal equations with
/// partial pivoting; `None` if they are singular.
fn least_squares<const M: usize>(
    rows: &[[f64; M]],
    targets: &[f64],
    cols: &[usize],
) -> Option<Vec<f64>> {
    let n = cols.len();
    // Augmented normal equations [A^T A | A^T 1].
    let mut m = vec![vec![0.0; n + 1]; n];
    for (r, t) in rows.iter().zip(targets) {
        for (i, &ci) in cols.iter().enumerate() {
            for (j, &cj) in cols.iter().enumerate() {
                m[i][j] += r[ci] * r[cj];
            }
            m[i][n] += r[ci] * t;
        }
    }
    let scale = m
        .iter()
        .enumerate()
        .map(|(i, row)| row[i].abs())
        .fold(0.0, f64::max);
    for c in 0..n {
        let p = (c..n).max_by(|&a, &b| m[a][c].abs().total_cmp(&m[b][c].abs()))?;
        if m[p][c].abs() <= 1e-12 * scale.max(f64::MIN_POSITIVE) {
            return None;
        }
        m.swap(c, p);
        let pivot = m[c].clone();
        for (k, row) in m.iter_mut().enumerate() {
            let t = row[c] / pivot[c];
            if k != c && t != 0.0 {
                for (x, y) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *x -= t * y;
                }
            }
        }
    }
    Some((0..n).map(|i| m[i][n] / m[i][i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, v: [f64; N], luts: u64) -> Sample {
        Sample {
            name: name.into(),
            features: Features::from_vector(v),
            luts,
        }
    }

    #[test]
    fn recovers_exact_coefficients() {
        let truth = [0.1, 0.25, 0.6, 3.0, 0.0, 1.0, 0.9, 20.0, 0.4, 0.3, 7.5];
        let f = |v: [f64; N]| v.iter().zip(&truth).map(|(a, b)| a * b).sum::<f64>();
        let designs = [
            [
                1000.0, 400.0, 0.0, 20.0, 30.0, 256.0, 256.0, 4.0, 0.0, 0.0, 0.0,
            ],
            [
                0.0, 4000.0, 300.0, 80.0, 60.0, 3136.0, 3136.0, 5.0, 300.0, 0.0, 16.0,
            ],
            [
                5000.0, 100.0, 0.0, 10.0, 10.0, 64.0, 64.0, 4.0, 0.0, 0.0, 0.0,
            ],
            [
                200.0, 2000.0, 1000.0, 200.0, 90.0, 1024.0, 512.0, 4.0, 2000.0, 1500.0, 0.0,
            ],
            [
                0.0, 800.0, 50.0, 0.0, 40.0, 0.0, 100.0, 3.0, 50.0, 0.0, 32.0,
            ],
            [
                3000.0, 50.0, 0.0, 40.0, 20.0, 512.0, 900.0, 6.0, 0.0, 0.0, 0.0,
            ],
            [
                700.0, 9000.0, 2000.0, 30.0, 10.0, 128.0, 64.0, 4.0, 9000.0, 0.0, 0.0,
            ],
            [
                100.0, 300.0, 80.0, 60.0, 5.0, 2048.0, 32.0, 5.0, 80.0, 0.0, 0.0,
            ],
            [
                9000.0, 1200.0, 0.0, 500.0, 300.0, 0.0, 784.0, 4.0, 0.0, 0.0, 9.0,
            ],
            [
                0.0, 0.0, 6000.0, 0.0, 700.0, 0.0, 16.0, 3.0, 0.0, 6000.0, 0.0,
            ],
            [
                2500.0, 7000.0, 400.0, 120.0, 1500.0, 4096.0, 2048.0, 6.0, 400.0, 0.0, 0.0,
            ],
            [
                60.0, 150.0, 30.0, 12.0, 400.0, 96.0, 8.0, 3.0, 150.0, 100.0, 0.0,
            ],
        ];
        // Exact integer LUT counts need exactly representable products; round and allow the
        // rounding in the check.
        let samples: Vec<Sample> = designs
            .iter()
            .enumerate()
            .map(|(i, &d)| sample(&format!("d{i}"), d, f(d).round() as u64))
            .collect();
        let fit = fit(&samples).unwrap();
        for s in &samples {
            assert!(fit.error(s).abs() < 1e-3, "{}: {}", s.name, fit.error(s));
        }
        for (c, t) in fit.coefficients.iter().zip(&truth) {
            assert!((c - t).abs() < 0.05 * t + 0.01, "{c} vs {t}");
        }
    }

    #[test]
    fn a_partial_fit_keeps_the_held_coefficients() {
        // Designs whose LUTs are 2 per `adder` bit plus 0.5 per `table_adder` bit, fitted with
        // `adder_bit` held at 2 (from an earlier fit) and only `table_adder_bit` free.
        let samples: Vec<Sample> = [
            (1000.0, 0.0),
            (400.0, 400.0),
            (3000.0, 2000.0),
            (50.0, 50.0),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(a, t))| {
            let mut v = [0.0; N];
            v[2] = a;
            v[9] = t;
            sample(&format!("d{i}"), v, (2.0 * a + 0.5 * t) as u64)
        })
        .collect();
        let mut held = [0.0; N];
        held[2] = 2.0;
        held[3] = 7.0; // held, and no design has the feature: stays as given
        let fit = fit_only(&samples, held, &[9]).unwrap();
        assert_eq!(fit.coefficients[2], 2.0);
        assert_eq!(fit.coefficients[3], 7.0);
        assert!(
            (fit.coefficients[9] - 0.5).abs() < 1e-9,
            "{:?}",
            fit.coefficients
        );
        for s in &samples {
            assert!(fit.error(s).abs() < 1e-9);
        }
        // Held at a wrong value, the free coefficient makes up what it can.
        held[2] = 1.5;
        let off = fit_only(&samples, held, &[9]).unwrap();
        assert_eq!(off.coefficients[2], 1.5);
        assert!(off.coefficients[9] > 0.5);
    }

    #[test]
    fn coefficients_stay_non_negative() {
        // Data an unconstrained fit would explain with a negative popcount cost.
        let samples = vec![
            sample(
                "a",
                [0.0, 100.0, 0.0, 0.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                50,
            ),
            sample(
                "b",
                [0.0, 200.0, 0.0, 0.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                40,
            ),
            sample(
                "c",
                [0.0, 50.0, 0.0, 0.0, 0.0, 200.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                160,
            ),
        ];
        let fit = fit(&samples).unwrap();
        assert!(fit.coefficients.iter().all(|&c| c >= 0.0));
        assert!(fit.coefficients[5] > 0.0);
    }

    #[test]
    fn bad_samples_are_named() {
        assert_eq!(fit(&[]), Err(FitError::Empty));
        let s = sample("dir/x", [1.0; N], 0);
        assert_eq!(fit(&[s]), Err(FitError::ZeroLuts("dir/x".into())));
    }

    #[test]
    fn recorded_rows_read_back_with_missing_features_as_zero() {
        // An older file: no table_adder_bit / packed_rom_block columns, columns reordered.
        let text =
            "design,yosys_luts,current_luts,yosys_brams,est_brams,block,rom_bit,popcount_bit,\
                    adder_bit,acc_bit,activation_bit,select_bit,stream_bit,ram_popcount_bit\n\
                    cal/d8,10897,9768,0,1,4,2624,62,62,18,53,384,90,60\n";
        let rows = parse_csv(text, "old.csv").unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.sample.name.as_str(), r.sample.luts), ("cal/d8", 10897));
        assert_eq!((r.yosys_brams, r.est_brams), (0, 1));
        assert_eq!(
            r.sample.features.vector(),
            [2624.0, 62.0, 62.0, 18.0, 53.0, 384.0, 90.0, 4.0, 60.0, 0.0, 0.0]
        );
    }

    #[test]
    fn malformed_recorded_rows_name_the_file_and_line() {
        let head = "design,yosys_luts,yosys_brams,est_brams,rom_bit\n";
        let err = |body: &str| parse_csv(&format!("{head}{body}"), "c.csv").unwrap_err();
        assert!(err("a,10,0,0\n").contains("c.csv line 2: 4 fields"));
        assert!(err("a,ten,0,0,1\n").contains("c.csv line 2: \"yosys_luts\""));
        assert!(err("a,10,0,0,-1\n").contains("not a non-negative number"));
        assert!(err("a,10.5,0,0,1\n").contains("not a count"));
        let e = parse_csv("design,luts\n", "d.csv").unwrap_err();
        assert!(
            e.contains("d.csv: the header has no column \"yosys_luts\""),
            "{e}"
        );
        assert!(parse_csv("", "e.csv")
            .unwrap_err()
            .contains("e.csv: empty file"));
    }

    #[test]
    fn the_ecp5_fixed_costs_are_the_fit_of_the_recorded_designs() {
        // `flipchip calibrate --family ecp5 --rows ... --fit block,stream_bit,acc_bit` over
        // the four files (compiler/calibration/README.md): the shipped values are its result.
        let mut samples = Vec::new();
        for (name, text) in [
            ("ecp5.csv", include_str!("../calibration/ecp5.csv")),
            (
                "ecp5-tables.csv",
                include_str!("../calibration/ecp5-tables.csv"),
            ),
            (
                "ecp5-digits.csv",
                include_str!("../calibration/ecp5-digits.csv"),
            ),
            ("ecp5-cnn.csv", include_str!("../calibration/ecp5-cnn.csv")),
        ] {
            samples.extend(parse_csv(text, name).unwrap().into_iter().map(|r| r.sample));
        }
        assert_eq!(samples.len(), 56);
        let shipped = Family::Ecp5.costs().coefficients();
        let free: Vec<usize> = ["block", "stream_bit", "acc_bit"]
            .iter()
            .map(|n| Features::NAMES.iter().position(|m| m == n).unwrap())
            .collect();
        let fit = fit_only(&samples, shipped, &free).unwrap();
        for &i in &free {
            assert!(
                (fit.coefficients[i] - shipped[i]).abs() < 1e-4,
                "{}: fitted {} shipped {}",
                Features::NAMES[i],
                fit.coefficients[i],
                shipped[i]
            );
        }
    }
}
