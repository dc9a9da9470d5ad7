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
