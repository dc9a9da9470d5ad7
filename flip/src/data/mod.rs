//! Datasets: the images and labels that training reads and evaluation scores.
//!
//! Two sources, one shape ([`Dataset`]):
//! - the 8x8 optical digits, embedded in the crate so that every command works without a
//!   download ([`optdigits`]);
//! - a directory of IDX files in the MNIST layout, plain or gzip-compressed, which covers MNIST
//!   and Fashion-MNIST ([`load_idx_dir`]).
//!
//! [`load`] picks between them the way the `--data` option does.

mod idx;
mod optdigits;

use std::fmt;
use std::path::{Path, PathBuf};

pub use idx::load_idx_dir;
pub use optdigits::optdigits;

/// One split (train or test): images concatenated row-major, one `u8` per pixel value.
///
/// Image `i` occupies `images[i * pixels .. (i + 1) * pixels]`, channels interleaved per pixel,
/// and its class is `labels[i]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Split {
    /// All images back to back.
    pub images: Vec<u8>,
    /// One class per image.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixel values of image `i`, given the pixels per image ([`Dataset::pixels`]).
    ///
    /// # Panics
    /// If image `i` lies beyond the end of `images`.
    pub fn image(&self, i: usize, pixels: usize) -> &[u8] {
        &self.images[i * pixels..(i + 1) * pixels]
    }
}

// Printing tens of megabytes of pixels helps nobody; the sizes are what a reader wants to see.
impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Split")
            .field("images", &format_args!("[{} bytes]", self.images.len()))
            .field("labels", &format_args!("[{} labels]", self.labels.len()))
            .finish()
    }
}

/// A dataset with a fixed train/test split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// `optdigits`, or the file name of the IDX directory (e.g. `fashion-mnist`).
    pub name: String,
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Values per pixel (1 for grey images).
    pub channels: usize,
    /// Bits of a raw pixel value: 8 for IDX `u8` images, 5 for optdigits (values `0..=16`).
    pub pixel_bits: u8,
    /// Number of classes: the largest label over train and test, plus one.
    pub classes: usize,
    /// Images to train on.
    pub train: Split,
    /// Held-out images to measure accuracy on.
    pub test: Split,
}

impl Dataset {
    /// Values per image (`width * height * channels`).
    pub fn pixels(&self) -> usize {
        self.width * self.height * self.channels
    }

    /// Carves `count` images out of the training split for validation and returns
    /// `(train, validation)`: the training split without them, and them.
    ///
    /// The split is stratified: each class gives a share of `count` proportional to its number
    /// of training images (largest remainders round, lower class first on ties), and which
    /// images of a class go is a seeded shuffle ([`crate::train::rng::permutation`]), so the
    /// same `count` and `seed` always give the same split. Both parts keep the original order;
    /// they are disjoint and together hold every training image once.
    pub fn split_validation(&self, count: usize, seed: u64) -> Result<(Split, Split), DataError> {
        let n = self.train.len();
        if count >= n {
            return Err(DataError::ValidationTooLarge {
                dataset: self.name.clone(),
                count,
                train: n,
            });
        }
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); self.classes];
        for (i, &l) in self.train.labels.iter().enumerate() {
            members[l as usize].push(i);
        }
        let quota = proportional_shares(&members.iter().map(Vec::len).collect::<Vec<_>>(), count);
        let mut held = vec![false; n];
        for (c, (idx, &k)) in members.iter().zip(&quota).enumerate() {
            let order = crate::train::rng::permutation(
                idx.len(),
                crate::train::rng::mix(seed, 0x7A11_D000 + c as u64),
            );
            for &j in &order[..k] {
                held[idx[j as usize]] = true;
            }
        }
        let p = self.pixels();
        let (mut train, mut val) = (Split::default(), Split::default());
        for (i, &h) in held.iter().enumerate() {
            let to = if h { &mut val } else { &mut train };
            to.images.extend_from_slice(self.train.image(i, p));
            to.labels.push(self.train.labels[i]);
        }
        Ok((train, val))
    }
}

/// Splits `total` into shares proportional to `sizes` (largest remainder method; ties go to
/// the lower index). Needs `total <= sizes.sum()`; no share exceeds its size.
fn proportional_shares(sizes: &[usize], total: usize) -> Vec<usize> {
    let sum: usize = sizes.iter().sum();
    let total = total.min(sum);
    if sum == 0 {
        return vec![0; sizes.len()];
    }
    // Exact integer arithmetic: share_c = total * size_c / sum, remainder kept for rounding.
    let mut shares: Vec<usize> = sizes.iter().map(|&s| total * s / sum).collect();
    let mut rest: Vec<(usize, usize)> = sizes
        .iter()
        .enumerate()
        .map(|(c, &s)| (total * s % sum, c))
        .collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut left = total - shares.iter().sum::<usize>();
    for &(_, c) in rest.iter().cycle() {
        if left == 0 {
            break;
        }
        if shares[c] < sizes[c] {
            shares[c] += 1;
            left -= 1;
        }
    }
    shares
}

/// Why a dataset could not be loaded. Every message names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The dataset directory does not exist or is not a directory.
    #[error("{}: not a directory (expected a directory of IDX files)", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// One of the four IDX files is absent under every accepted name.
    #[error("{}: no {file} file (tried {})", dir.display(), list(tried))]
    Missing {
        /// The dataset directory.
        dir: PathBuf,
        /// Which of the four files (e.g. `train-images-idx3-ubyte`).
        file: &'static str,
        /// Every path looked at.
        tried: Vec<PathBuf>,
    },
    /// Reading a file failed at the operating-system level.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
    /// A gzip stream is damaged or cut short.
    #[error("{}: corrupt gzip data: {source}", path.display())]
    Gzip {
        /// The compressed file.
        path: PathBuf,
        /// What the decompressor reported.
        source: std::io::Error,
    },
    /// An IDX file starts with the wrong magic number (e.g. labels where images belong).
    #[error("{}: wrong magic number 0x{found:08x}, expected 0x{expected:08x}{hint}", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes, big-endian.
        found: u32,
        /// What this file should start with.
        expected: u32,
        /// A guess at the cause, empty or starting with `" ("`.
        hint: &'static str,
    },
    /// An IDX file holds elements other than unsigned bytes.
    #[error(
        "{}: element type 0x{code:02x} ({name}) is not supported, only unsigned bytes (0x08)",
        path.display()
    )]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The type byte of the magic number.
        code: u8,
        /// What the IDX format calls that type.
        name: &'static str,
    },
    /// A file ends before its header or its data is complete.
    #[error("{}: truncated: expected {expected} bytes of {part}, found {found}", path.display())]
    Truncated {
        /// The file (after decompression, for `.gz`).
        path: PathBuf,
        /// `header` or `data`.
        part: &'static str,
        /// Bytes the header promises.
        expected: u128,
        /// Bytes present.
        found: u64,
    },
    /// A file holds more bytes than its header accounts for.
    #[error(
        "{}: {extra} unexpected bytes after the {expected} bytes of data the header describes",
        path.display()
    )]
    TrailingData {
        /// The file (after decompression, for `.gz`).
        path: PathBuf,
        /// Bytes the header promises.
        expected: u128,
        /// Bytes beyond them.
        extra: u64,
    },
    /// A header describes images with no pixels.
    #[error("{}: images of {height}x{width} pixels hold no data", path.display())]
    EmptyImages {
        /// The image file.
        path: PathBuf,
        /// Rows per image.
        height: usize,
        /// Columns per image.
        width: usize,
    },
    /// A split holds no images.
    #[error("{}: holds no images", path.display())]
    EmptySplit {
        /// The image file.
        path: PathBuf,
    },
    /// An image file and its label file disagree on the number of samples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Its number of images.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Its number of labels.
        labels: usize,
    },
    /// Train and test images have different sizes.
    #[error(
        "{} holds {}x{} images but {} holds {}x{} images (height x width)",
        train_path.display(),
        train.0,
        train.1,
        test_path.display(),
        test.0,
        test.1
    )]
    ShapeMismatch {
        /// The training image file.
        train_path: PathBuf,
        /// Its image size as (height, width).
        train: (usize, usize),
        /// The test image file.
        test_path: PathBuf,
        /// Its image size as (height, width).
        test: (usize, usize),
    },
    /// A validation split would leave no image to train on.
    #[error(
        "{dataset}: a validation split of {count} images leaves none to train on (the training \
         split holds {train}; use fewer, or a fraction below 1)"
    )]
    ValidationTooLarge {
        /// The dataset's name.
        dataset: String,
        /// Images asked for.
        count: usize,
        /// Images in the training split.
        train: usize,
    },
    /// A line of a CSV dataset is malformed.
    #[error("{}, line {line}: {problem}", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads the dataset a `--data` option names: the embedded optical digits for `None`, otherwise
/// the directory of IDX files at `dir`.
pub fn load(dir: Option<&Path>) -> Result<Dataset, DataError> {
    match dir {
        None => optdigits(),
        Some(dir) => load_idx_dir(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_indexes_images() {
        let s = Split {
            images: vec![1, 2, 3, 4, 5, 6],
            labels: vec![0, 1, 0],
        };
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
        assert_eq!(s.image(1, 2), &[3, 4]);
        assert_eq!(s.image(2, 2), &[5, 6]);
        assert!(Split::default().is_empty());
    }

    fn toy(labels: &[u8]) -> Dataset {
        Dataset {
            name: "toy".into(),
            width: 2,
            height: 1,
            channels: 1,
            pixel_bits: 8,
            classes: 3,
            train: Split {
                images: (0..labels.len() * 2).map(|i| (i / 2) as u8).collect(),
                labels: labels.to_vec(),
            },
            test: Split::default(),
        }
    }

    #[test]
    fn validation_split_is_stratified_disjoint_and_complete() {
        // 60 of class 0, 30 of class 1, 10 of class 2; images numbered so each is unique.
        let labels: Vec<u8> = (0..100u8)
            .map(|i| match i % 10 {
                0..=5 => 0,
                6..=8 => 1,
                _ => 2,
            })
            .collect();
        let d = toy(&labels);
        let (train, val) = d.split_validation(20, 7).unwrap();
        assert_eq!((train.len(), val.len()), (80, 20));
        let count = |s: &Split, c: u8| s.labels.iter().filter(|&&l| l == c).count();
        assert_eq!([count(&val, 0), count(&val, 1), count(&val, 2)], [12, 6, 2]);
        // Every image once, in one part or the other, with its own label.
        let mut seen: Vec<u8> = train
            .images
            .chunks(2)
            .chain(val.images.chunks(2))
            .map(|p| p[0])
            .collect();
        seen.sort();
        assert_eq!(seen, (0..100u8).collect::<Vec<_>>());
        for s in [&train, &val] {
            for (img, &l) in s.images.chunks(2).zip(&s.labels) {
                assert_eq!(labels[img[0] as usize], l);
            }
            let ids: Vec<u8> = s.images.chunks(2).map(|p| p[0]).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "order kept");
        }
        // Deterministic in the seed, and the seed matters.
        assert_eq!(
            d.split_validation(20, 7).unwrap(),
            (train.clone(), val.clone())
        );
        assert_ne!(d.split_validation(20, 8).unwrap().1, val);
    }

    #[test]
    fn validation_split_sizes() {
        let d = toy(&[0, 0, 0, 1, 1, 2, 2]);
        let (train, val) = d.split_validation(0, 1).unwrap();
        assert_eq!((train, val.len()), (d.train.clone(), 0));
        assert_eq!(d.split_validation(6, 1).unwrap().0.len(), 1);
        let err = d.split_validation(7, 1).unwrap_err();
        assert!(err.to_string().contains("7 images"), "{err}");
        // Rounding by largest remainders: 2 of 7 is 0.86, 0.57, 0.57 -> 1, 1, 0.
        let (_, val) = d.split_validation(2, 1).unwrap();
        let mut l = val.labels.clone();
        l.sort();
        assert_eq!(l, vec![0, 1]);
        assert_eq!(proportional_shares(&[3, 2, 2], 7), vec![3, 2, 2]);
        assert_eq!(proportional_shares(&[0, 5], 3), vec![0, 3]);
    }

    #[test]
    fn digits_validation_split_keeps_class_proportions() {
        let d = optdigits().unwrap();
        let (train, val) = d.split_validation(144, 1).unwrap();
        assert_eq!(train.len() + val.len(), d.train.len());
        for c in 0..d.classes as u8 {
            let all = d.train.labels.iter().filter(|&&l| l == c).count() as f64;
            let held = val.labels.iter().filter(|&&l| l == c).count() as f64;
            assert!((held - all * 144.0 / d.train.len() as f64).abs() <= 1.0);
        }
    }

    #[test]
    fn load_none_is_optdigits() {
        let d = load(None).unwrap();
        assert_eq!(d.name, "optdigits");
        assert_eq!(d.pixels(), 64);
    }

    #[test]
    fn load_dir_that_does_not_exist() {
        let dir = std::env::temp_dir().join("flip-data-test-no-such-dir-7f3a");
        let err = load(Some(&dir)).unwrap_err();
        assert!(matches!(err, DataError::NotADirectory { .. }), "{err}");
        assert!(err.to_string().contains("flip-data-test-no-such-dir-7f3a"));
    }
}
