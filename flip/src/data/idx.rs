//! IDX files in the MNIST layout (also used by Fashion-MNIST).
//!
//! An IDX file is a big-endian header followed by raw elements: the magic number `0x0000TTDD`
//! (`TT` the element type, `DD` the number of dimensions), one `u32` per dimension, then the
//! product of the dimensions in elements. Images are `0x00000803` (`u8`, images x rows x
//! columns), labels `0x00000801` (`u8`, one per image).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{DataError, Dataset, Split};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Never reserve more than this up front: the header of a damaged or hostile file may claim
/// any size, and a `.gz` file gives no honest bound before it is decompressed.
const MAX_RESERVE: u128 = 256 << 20;

/// Loads a directory holding `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each plain or gzip-compressed
/// (`.gz` suffix; the plain file wins when both exist).
///
/// The dataset is named after the directory (`fashion-mnist` for `.../fashion-mnist/`); images
/// are grey (`channels = 1`, `pixel_bits = 8`) and `classes` is the largest label plus one.
pub fn load_idx_dir(dir: &Path) -> Result<Dataset, DataError> {
    if !dir.is_dir() {
        return Err(DataError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    // Find all four before reading any, so a missing file is reported at once rather than
    // after decompressing 50 MB.
    let train_images = find(dir, TRAIN_IMAGES)?;
    let train_labels = find(dir, TRAIN_LABELS)?;
    let test_images = find(dir, TEST_IMAGES)?;
    let test_labels = find(dir, TEST_LABELS)?;

    // One file after another: the training images are ~85% of the bytes, so reading them side
    // by side saved nothing measurable (0.21 s either way for Fashion-MNIST, release build).
    let (train, train_shape) = split(
        read_idx(&train_images, IMAGES_MAGIC)?,
        read_idx(&train_labels, LABELS_MAGIC)?,
    )?;
    let (test, test_shape) = split(
        read_idx(&test_images, IMAGES_MAGIC)?,
        read_idx(&test_labels, LABELS_MAGIC)?,
    )?;
    if train_shape != test_shape {
        return Err(DataError::ShapeMismatch {
            train_path: train_images,
            train: train_shape,
            test_path: test_images,
            test: test_shape,
        });
    }

    let classes = train
        .labels
        .iter()
        .chain(&test.labels)
        .max()
        .map_or(0, |&m| m as usize + 1);
    Ok(Dataset {
        name: dir_name(dir),
        width: train_shape.1,
        height: train_shape.0,
        channels: 1,
        pixel_bits: 8,
        classes,
        train,
        test,
    })
}

/// The directory's own name; `canonicalize` first so that `.` or `data/` still give a name.
fn dir_name(dir: &Path) -> String {
    let canonical = dir.canonicalize().ok();
    canonical
        .as_deref()
        .and_then(Path::file_name)
        .or_else(|| dir.file_name())
        .map_or_else(|| "idx".to_string(), |n| n.to_string_lossy().into_owned())
}

/// The plain file if present, else the `.gz` one.
fn find(dir: &Path, file: &'static str) -> Result<PathBuf, DataError> {
    let tried = vec![dir.join(file), dir.join(format!("{file}.gz"))];
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(DataError::Missing {
            dir: dir.to_path_buf(),
            file,
            tried,
        }),
    }
}

/// A parsed IDX file.
struct Idx {
    path: PathBuf,
    dims: Vec<usize>,
    data: Vec<u8>,
}

/// Pairs an image file with its label file; returns the split and the image size as
/// (height, width).
fn split(images: Idx, labels: Idx) -> Result<(Split, (usize, usize)), DataError> {
    let (n, height, width) = (images.dims[0], images.dims[1], images.dims[2]);
    if height * width == 0 {
        return Err(DataError::EmptyImages {
            path: images.path,
            height,
            width,
        });
    }
    if labels.dims[0] != n {
        return Err(DataError::CountMismatch {
            images_path: images.path,
            images: n,
            labels_path: labels.path,
            labels: labels.dims[0],
        });
    }
    if n == 0 {
        return Err(DataError::EmptySplit { path: images.path });
    }
    let split = Split {
        images: images.data,
        labels: labels.data,
    };
    Ok((split, (height, width)))
}

/// Reads and checks one IDX file whose magic number must be `magic` (`u8` elements; the low
/// byte gives the number of dimensions).
fn read_idx(path: &Path, magic: u32) -> Result<Idx, DataError> {
    let gz = path.extension().is_some_and(|e| e == "gz");
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut reader: Box<dyn Read> = if gz {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    // The decompressor reports damage as these kinds; anything else is the disk's problem.
    let read_err = |source: io::Error| {
        let damaged = matches!(
            source.kind(),
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
        );
        if gz && damaged {
            DataError::Gzip {
                path: path.to_path_buf(),
                source,
            }
        } else {
            io_err(source)
        }
    };

    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    let mut header = vec![0u8; header_len];
    let got = read_full(&mut reader, &mut header[..4]).map_err(read_err)?;
    let truncated_header = |found: usize| DataError::Truncated {
        path: path.to_path_buf(),
        part: "header",
        expected: header_len as u128,
        found: found as u64,
    };
    if got < 4 {
        return Err(truncated_header(got));
    }
    let found = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if found != magic {
        return Err(bad_magic(path, found, magic));
    }
    let got = 4 + read_full(&mut reader, &mut header[4..]).map_err(read_err)?;
    if got < header_len {
        return Err(truncated_header(got));
    }
    let dims: Vec<usize> = header[4..]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();

    // u128 holds the product of up to four u32 dimensions, so no header can overflow it.
    let expected: u128 = dims.iter().map(|&d| d as u128).product();
    let mut reserve = expected.min(MAX_RESERVE);
    if !gz {
        reserve = reserve.min(u128::from(file_len));
    }
    let mut data = Vec::with_capacity(reserve as usize);
    reader.read_to_end(&mut data).map_err(read_err)?;
    let found = data.len() as u128;
    if found < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            part: "data",
            expected,
            found: data.len() as u64,
        });
    }
    if found > expected {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            expected,
            extra: (found - expected) as u64,
        });
    }
    Ok(Idx {
        path: path.to_path_buf(),
        dims,
        data,
    })
}

/// The error for a magic number that is not `expected`, as specific as the bytes allow.
fn bad_magic(path: &Path, found: u32, expected: u32) -> DataError {
    let [b0, b1, code, ndims] = found.to_be_bytes();
    if b0 == 0 && b1 == 0 && ndims == expected as u8 && code != 0x08 {
        if let Some(name) = type_name(code) {
            return DataError::UnsupportedType {
                path: path.to_path_buf(),
                code,
                name,
            };
        }
    }
    let hint = if [b0, b1] == [0x1f, 0x8b] {
        " (the file looks gzip-compressed; give it a .gz suffix)"
    } else if found == LABELS_MAGIC {
        " (this is a label file)"
    } else if found == IMAGES_MAGIC {
        " (this is an image file)"
    } else {
        ""
    };
    DataError::BadMagic {
        path: path.to_path_buf(),
        found,
        expected,
        hint,
    }
}

/// IDX element types other than `u8`.
fn type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x09 => "signed byte",
        0x0b => "i16",
        0x0c => "i32",
        0x0d => "f32",
        0x0e => "f64",
        _ => return None,
    })
}

/// Fills `buf` as far as the stream allows; returns the bytes read (less than `buf.len()` only
/// at end of stream). Unlike `read_exact`, it says how much was there, for the error message.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("flip-data-test-{}-{n}/{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            // Remove the unique parent, not just `tag`.
            if let Some(parent) = self.0.parent() {
                let _ = std::fs::remove_dir_all(parent);
            }
        }
    }

    fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn write(path: &Path, bytes: &[u8]) {
        let bytes = if path.extension().is_some_and(|e| e == "gz") {
            gzip(bytes)
        } else {
            bytes.to_vec()
        };
        std::fs::write(path, bytes).unwrap();
    }

    /// Pixel values that differ per image, row and column, so a mix-up shows.
    fn pixels(n: usize, h: usize, w: usize, salt: u8) -> Vec<u8> {
        (0..n * h * w)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(salt))
            .collect()
    }

    fn labels(n: usize, salt: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8 + salt) % 4).collect()
    }

    /// Writes a 5-train / 3-test dataset of 3x2 images; `suffix` is `""` or `".gz"`.
    fn write_dataset(dir: &TempDir, suffix: &str) -> (Split, Split) {
        let (h, w) = (3, 2);
        let train = Split {
            images: pixels(5, h, w, 1),
            labels: labels(5, 0),
        };
        let test = Split {
            images: pixels(3, h, w, 100),
            labels: labels(3, 2),
        };
        for (name, magic, dims, data) in [
            (TRAIN_IMAGES, IMAGES_MAGIC, vec![5, 3, 2], &train.images),
            (TRAIN_LABELS, LABELS_MAGIC, vec![5], &train.labels),
            (TEST_IMAGES, IMAGES_MAGIC, vec![3, 3, 2], &test.images),
            (TEST_LABELS, LABELS_MAGIC, vec![3], &test.labels),
        ] {
            write(
                &dir.path(&format!("{name}{suffix}")),
                &idx_bytes(magic, &dims, data),
            );
        }
        (train, test)
    }

    fn round_trip(suffix: &str) {
        let dir = TempDir::new("tiny-set");
        let (train, test) = write_dataset(&dir, suffix);
        let d = load_idx_dir(&dir.0).unwrap();
        assert_eq!(d.name, "tiny-set");
        assert_eq!((d.width, d.height, d.channels, d.pixel_bits), (2, 3, 1, 8));
        assert_eq!(d.pixels(), 6);
        // Labels are 0..=3 in train and test alike.
        assert_eq!(d.classes, 4);
        assert_eq!(d.train, train);
        assert_eq!(d.test, test);
        assert_eq!(d.test.image(2, 6), &test.images[12..18]);
    }

    #[test]
    fn round_trip_plain() {
        round_trip("");
    }

    #[test]
    fn round_trip_gz() {
        round_trip(".gz");
    }

    #[test]
    fn plain_file_wins_over_gz() {
        let dir = TempDir::new("both");
        write_dataset(&dir, "");
        // A .gz twin with different content that must not be read.
        write(
            &dir.path(&format!("{TRAIN_LABELS}.gz")),
            &idx_bytes(LABELS_MAGIC, &[5], &[9; 5]),
        );
        let d = load_idx_dir(&dir.0).unwrap();
        assert_eq!(d.train.labels, labels(5, 0));
        assert_eq!(d.classes, 4);
    }

    #[test]
    fn missing_file_names_what_was_tried() {
        let dir = TempDir::new("missing");
        write_dataset(&dir, ".gz");
        std::fs::remove_file(dir.path(&format!("{TEST_LABELS}.gz"))).unwrap();
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Missing {
                    file: TEST_LABELS,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.path(TEST_LABELS).display().to_string()),
            "{msg}"
        );
        assert!(msg.contains(&format!("{TEST_LABELS}.gz")), "{msg}");
    }

    #[test]
    fn labels_in_place_of_images_is_wrong_magic() {
        let dir = TempDir::new("magic");
        write_dataset(&dir, "");
        let path = dir.path(TRAIN_IMAGES);
        write(&path, &idx_bytes(LABELS_MAGIC, &[5], &[0; 5]));
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadMagic {
                    found: LABELS_MAGIC,
                    expected: IMAGES_MAGIC,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("0x00000801") && msg.contains("0x00000803"),
            "{msg}"
        );
    }

    #[test]
    fn gzip_data_without_gz_suffix_gets_a_hint() {
        let dir = TempDir::new("hint");
        write_dataset(&dir, "");
        let path = dir.path(TEST_IMAGES);
        std::fs::write(&path, gzip(&idx_bytes(IMAGES_MAGIC, &[1, 1, 1], &[0]))).unwrap();
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(err.to_string().contains("gzip-compressed"), "{err}");
    }

    #[test]
    fn float_elements_are_unsupported() {
        let dir = TempDir::new("float");
        write_dataset(&dir, "");
        write(
            &dir.path(TRAIN_IMAGES),
            &idx_bytes(0x0000_0d03, &[1, 1, 1], &[0; 4]),
        );
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(
            matches!(err, DataError::UnsupportedType { code: 0x0d, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("f32"), "{err}");
    }

    #[test]
    fn truncated_data_says_how_much() {
        for suffix in ["", ".gz"] {
            let dir = TempDir::new("truncated");
            write_dataset(&dir, suffix);
            let path = dir.path(&format!("{TRAIN_IMAGES}{suffix}"));
            write(&path, &idx_bytes(IMAGES_MAGIC, &[5, 3, 2], &[0; 29]));
            let err = load_idx_dir(&dir.0).unwrap_err();
            assert!(
                matches!(
                    err,
                    DataError::Truncated {
                        part: "data",
                        expected: 30,
                        found: 29,
                        ..
                    }
                ),
                "{err}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("expected 30 bytes of data, found 29"), "{msg}");
        }
    }

    #[test]
    fn truncated_header() {
        let dir = TempDir::new("header");
        write_dataset(&dir, "");
        // Magic and two of the three dimensions.
        write(
            &dir.path(TEST_IMAGES),
            &idx_bytes(IMAGES_MAGIC, &[3, 3], &[]),
        );
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    part: "header",
                    expected: 16,
                    found: 12,
                    ..
                }
            ),
            "{err}"
        );
        // An empty file cannot even hold the magic number.
        write(&dir.path(TEST_IMAGES), &[]);
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { found: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let dir = TempDir::new("trailing");
        write_dataset(&dir, "");
        write(
            &dir.path(TEST_LABELS),
            &idx_bytes(LABELS_MAGIC, &[3], &[0; 5]),
        );
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TrailingData {
                    expected: 3,
                    extra: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = TempDir::new("count");
        write_dataset(&dir, ".gz");
        let labels_path = dir.path(&format!("{TRAIN_LABELS}.gz"));
        write(&labels_path, &idx_bytes(LABELS_MAGIC, &[4], &[0; 4]));
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CountMismatch {
                    images: 5,
                    labels: 4,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        let images_path = dir.path(&format!("{TRAIN_IMAGES}.gz"));
        assert!(msg.contains(&images_path.display().to_string()), "{msg}");
        assert!(msg.contains(&labels_path.display().to_string()), "{msg}");
    }

    #[test]
    fn train_and_test_shapes_must_agree() {
        let dir = TempDir::new("shape");
        write_dataset(&dir, "");
        write(
            &dir.path(TEST_IMAGES),
            &idx_bytes(IMAGES_MAGIC, &[3, 2, 3], &[0; 18]),
        );
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::ShapeMismatch {
                    train: (3, 2),
                    test: (2, 3),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_splits_and_images_are_rejected() {
        let dir = TempDir::new("empty");
        write_dataset(&dir, "");
        write(
            &dir.path(TEST_IMAGES),
            &idx_bytes(IMAGES_MAGIC, &[0, 3, 2], &[]),
        );
        write(&dir.path(TEST_LABELS), &idx_bytes(LABELS_MAGIC, &[0], &[]));
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(matches!(err, DataError::EmptySplit { .. }), "{err}");

        write(
            &dir.path(TEST_IMAGES),
            &idx_bytes(IMAGES_MAGIC, &[3, 0, 2], &[]),
        );
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(matches!(err, DataError::EmptyImages { .. }), "{err}");
    }

    #[test]
    fn corrupt_gzip() {
        let dir = TempDir::new("corrupt");
        write_dataset(&dir, ".gz");
        let path = dir.path(&format!("{TRAIN_IMAGES}.gz"));
        let good = std::fs::read(&path).unwrap();

        // Cut short: the stream ends before its trailer.
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );

        // Damaged checksum.
        let mut bad = good.clone();
        let crc = bad.len() - 8;
        bad[crc] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");

        // Not gzip at all.
        std::fs::write(&path, idx_bytes(IMAGES_MAGIC, &[5, 3, 2], &[0; 30])).unwrap();
        let err = load_idx_dir(&dir.0).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let dir = TempDir::new("file");
        let path = dir.path("plain-file");
        write(&path, b"x");
        let err = load_idx_dir(&path).unwrap_err();
        assert!(matches!(err, DataError::NotADirectory { .. }), "{err}");
    }

    #[test]
    fn fashion_mnist_if_installed() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        if !dir.is_dir() {
            eprintln!("skipped: {} not present", dir.display());
            return;
        }
        let start = std::time::Instant::now();
        let d = load_idx_dir(dir).unwrap();
        eprintln!(
            "loaded {} in {:.3} s",
            dir.display(),
            start.elapsed().as_secs_f64()
        );
        assert_eq!(d.name, "fashion-mnist");
        assert_eq!((d.train.len(), d.test.len()), (60000, 10000));
        assert_eq!(
            (d.width, d.height, d.channels, d.pixel_bits),
            (28, 28, 1, 8)
        );
        assert_eq!(d.classes, 10);
        assert_eq!(d.train.images.len(), 60000 * 784);
        assert_eq!(d.test.images.len(), 10000 * 784);
        // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
        let mut per_class = [0usize; 10];
        for &l in &d.train.labels {
            per_class[l as usize] += 1;
        }
        assert_eq!(per_class, [6000; 10]);
    }
}
