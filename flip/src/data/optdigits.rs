//! The 8x8 optical digits (UCI, 1797 samples), embedded so the toolchain runs without downloads.
//!
//! See `flip/data/README.md` for source, licence and format.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{DataError, Dataset, Split};

/// The vendored file; named in error messages.
const SOURCE: &str = "flip/data/optdigits-8x8.csv.gz (embedded)";
const GZ: &[u8] = include_bytes!("../../data/optdigits-8x8.csv.gz");

const SIDE: usize = 8;
const PIXELS: usize = SIDE * SIDE;
/// Pixel values count set pixels in a 4x4 block, so they stop at 16.
const MAX_PIXEL: u8 = 16;
const MAX_LABEL: u8 = 9;

/// Fixed seed of the train/test split ("optdigit" in ASCII). Changing it changes every
/// published accuracy on this dataset, so it never changes.
const SPLIT_SEED: u64 = 0x6f70_7464_6967_6974;

/// The embedded 8x8 optical digits, split deterministically into train and test.
///
/// The split is stratified: for each class, a fixed-seed permutation of its samples sends a
/// fifth (rounded to nearest) to test and the rest to train; both splits keep file order. It
/// gives 1438 training and 359 test images, the same on every machine.
pub fn optdigits() -> Result<Dataset, DataError> {
    let path = PathBuf::from(SOURCE);
    let mut text = String::new();
    GzDecoder::new(GZ)
        .read_to_string(&mut text)
        .map_err(|source| DataError::Gzip {
            path: path.clone(),
            source,
        })?;
    let (images, labels) = parse_csv(&text, &path)?;
    let (train, test) = stratified_split(&images, &labels);
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    Ok(Dataset {
        name: "optdigits".to_string(),
        width: SIDE,
        height: SIDE,
        channels: 1,
        pixel_bits: 5,
        classes,
        train,
        test,
    })
}

/// Parses lines of 64 pixel values and a label; blank lines are skipped.
fn parse_csv(text: &str, path: &Path) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let err = |problem: String| DataError::Csv {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != PIXELS + 1 {
            return Err(err(format!(
                "expected {} values (64 pixels and a label), found {}",
                PIXELS + 1,
                fields.len()
            )));
        }
        for (col, field) in fields.iter().enumerate() {
            let (what, max) = if col < PIXELS {
                ("pixel", MAX_PIXEL)
            } else {
                ("label", MAX_LABEL)
            };
            let value = field
                .parse::<u8>()
                .ok()
                .filter(|&v| v <= max)
                .ok_or_else(|| {
                    err(format!(
                        "{what} value {field:?} in column {} is not an integer in 0..={max}",
                        col + 1
                    ))
                })?;
            if col < PIXELS {
                images.push(value);
            } else {
                labels.push(value);
            }
        }
    }
    if labels.is_empty() {
        return Err(DataError::Csv {
            path: path.to_path_buf(),
            line: 1,
            problem: "no samples".to_string(),
        });
    }
    Ok((images, labels))
}

/// Sends round(n/5) of each class's `n` samples to test, chosen by one fixed-seed shuffle per
/// class in class order.
fn stratified_split(images: &[u8], labels: &[u8]) -> (Split, Split) {
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut by_class = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut rng = SplitMix64(SPLIT_SEED);
    let mut is_test = vec![false; labels.len()];
    for members in &mut by_class {
        shuffle(members, &mut rng);
        let n_test = (members.len() * 2 + 5) / 10;
        for &i in &members[..n_test] {
            is_test[i] = true;
        }
    }
    let (mut train, mut test) = (Split::default(), Split::default());
    for (i, &l) in labels.iter().enumerate() {
        let split = if is_test[i] { &mut test } else { &mut train };
        split
            .images
            .extend_from_slice(&images[i * PIXELS..(i + 1) * PIXELS]);
        split.labels.push(l);
    }
    (train, test)
}

/// Fisher-Yates.
fn shuffle(v: &mut [usize], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, and fixed forever, which is all a
/// reproducible split needs; a rand crate could change its streams between versions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (multiply-shift; the bias is below 2^-50 for our sizes).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // First outputs for seed 0, from the reference C implementation.
        let mut r = SplitMix64(0);
        assert_eq!(r.next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn shape_and_sizes() {
        let d = optdigits().unwrap();
        assert_eq!(d.name, "optdigits");
        assert_eq!((d.width, d.height, d.channels, d.pixel_bits), (8, 8, 1, 5));
        assert_eq!(d.classes, 10);
        assert_eq!(d.train.len() + d.test.len(), 1797);
        assert_eq!((d.train.len(), d.test.len()), (1438, 359));
        assert_eq!(d.train.images.len(), d.train.len() * 64);
        assert_eq!(d.test.images.len(), d.test.len() * 64);
        assert!(d
            .train
            .images
            .iter()
            .chain(&d.test.images)
            .all(|&v| v <= 16));
        // 16 must occur, or pixel_bits = 5 would be wasteful.
        assert!(d.train.images.contains(&16));
    }

    #[test]
    fn split_is_stratified() {
        let d = optdigits().unwrap();
        let count = |s: &Split| {
            let mut c = [0usize; 10];
            for &l in &s.labels {
                c[l as usize] += 1;
            }
            c
        };
        let (train, test) = (count(&d.train), count(&d.test));
        // Per-class totals of the UCI 8x8 set.
        let totals = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180];
        for k in 0..10 {
            assert_eq!(train[k] + test[k], totals[k], "class {k}");
            assert_eq!(test[k], (totals[k] * 2 + 5) / 10, "class {k}");
        }
    }

    #[test]
    fn split_never_changes() {
        let d = optdigits().unwrap();
        assert_eq!(d, optdigits().unwrap());
        // FNV-1a over the test labels and images: pins the exact split, so a change to the seed,
        // the shuffle or the rounding fails here rather than silently moving every accuracy.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in d.test.labels.iter().chain(&d.test.images) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(h, 0xd1ec_46a6_ebc8_1c6c, "test split fingerprint {h:#018x}");
    }

    #[test]
    fn first_sample_matches_the_file() {
        let d = optdigits().unwrap();
        let (images, labels) = {
            let mut text = String::new();
            GzDecoder::new(GZ).read_to_string(&mut text).unwrap();
            parse_csv(&text, Path::new("x")).unwrap()
        };
        assert_eq!(labels.len(), 1797);
        // The first line of the file is a 0 whose top row is 0,0,5,13,9,1,0,0.
        assert_eq!(&images[..8], &[0, 0, 5, 13, 9, 1, 0, 0]);
        assert_eq!(labels[0], 0);
        let first = if d.train.image(0, 64)[..8] == images[..8] {
            d.train.image(0, 64)
        } else {
            d.test.image(0, 64)
        };
        assert_eq!(first, &images[..64]);
    }

    #[test]
    fn csv_errors_name_file_and_line() {
        let path = Path::new("digits.csv");
        let row = |pixel: &str, label: &str| {
            let mut v = vec!["0"; 63];
            v.push(pixel);
            v.push(label);
            v.join(",")
        };
        let good = row("16", "9");
        assert_eq!(parse_csv(&good, path).unwrap().1, vec![9]);

        let cases = [
            (
                format!("{good}\n{}", row("17", "1")),
                "line 2",
                "pixel value \"17\"",
            ),
            (
                format!("{good}\n\n{}", row("3", "10")),
                "line 3",
                "label value \"10\"",
            ),
            (row("x", "1"), "line 1", "column 64"),
            (format!("{good}\n1,2,3"), "line 2", "found 3"),
            (String::new(), "line 1", "no samples"),
        ];
        for (text, line, problem) in cases {
            let err = parse_csv(&text, path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DataError::Csv { .. }), "{msg}");
            assert!(msg.starts_with("digits.csv"), "{msg}");
            assert!(msg.contains(line) && msg.contains(problem), "{msg}");
        }
    }
}
