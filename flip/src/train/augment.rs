//! Data augmentation: each training image is shown in a random variant every epoch.
//!
//! A binary MLP on Fashion-MNIST ends its 10 epochs about 4 points more accurate on its
//! training images than on held-out ones; showing each image mirrored or moved by a pixel
//! makes the net learn what does not depend on either. Variants are drawn per (seed, epoch,
//! image), so a run does not depend on the thread count or the batch order, and the
//! validation and test images are never altered.

use std::fmt;
use std::str::FromStr;

use super::rng::mix;

/// The largest shift `shift:K` accepts, in pixels.
pub const MAX_SHIFT: usize = 4;

/// Which variants an image may be shown in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Augment {
    /// Mirror left-right with probability one half.
    pub hflip: bool,
    /// Move by up to this many pixels in each direction (uniform), filling with value 0.
    pub shift: usize,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        hflip: false,
        shift: 0,
    };

    /// Whether any variant differs from the image itself.
    pub fn is_none(self) -> bool {
        self == Self::NONE
    }

    /// Rejects a shift that would leave nothing of an image of `width` x `height`.
    pub fn check(self, width: usize, height: usize) -> Result<(), String> {
        if self.shift > 0 && (2 * self.shift >= width || 2 * self.shift >= height) {
            return Err(format!(
                "augmentation shift:{} is too large for {width}x{height} images (at most {})",
                self.shift,
                (width.min(height).saturating_sub(1)) / 2
            ));
        }
        Ok(())
    }

    /// Writes the variant of `img` (`width` x `height`, `channels` interleaved per pixel)
    /// chosen by `key` into `out`.
    pub fn apply(
        self,
        img: &[u8],
        (width, height, channels): (usize, usize, usize),
        key: u64,
        out: &mut [u8],
    ) {
        let h = mix(key, 0xa46e_0000);
        let flip = self.hflip && h & 1 == 1;
        let span = 2 * self.shift as u64 + 1;
        let dx = ((h >> 8) % span) as isize - self.shift as isize;
        let dy = ((h >> 24) % span) as isize - self.shift as isize;
        for y in 0..height {
            for x in 0..width {
                // The output pixel (x, y) shows source pixel (sx, sy): shifted, then mirrored.
                let sx = x as isize - dx;
                let sy = y as isize - dy;
                let o = (y * width + x) * channels;
                if sx < 0 || sy < 0 || sx >= width as isize || sy >= height as isize {
                    out[o..o + channels].fill(0);
                    continue;
                }
                let sx = if flip {
                    width - 1 - sx as usize
                } else {
                    sx as usize
                };
                let s = (sy as usize * width + sx) * channels;
                out[o..o + channels].copy_from_slice(&img[s..s + channels]);
            }
        }
    }
}

impl FromStr for Augment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut a = Augment::NONE;
        if s == "none" {
            return Ok(a);
        }
        for part in s.split(',') {
            match part.split_once(':') {
                None if part == "hflip" => a.hflip = true,
                Some(("shift", k)) => {
                    a.shift = k
                        .parse()
                        .ok()
                        .filter(|k| (1..=MAX_SHIFT).contains(k))
                        .ok_or_else(|| {
                            format!(
                                "augmentation {part:?}: the shift must be 1..={MAX_SHIFT} pixels"
                            )
                        })?;
                }
                _ => {
                    return Err(format!(
                        "unknown augmentation {part:?}: expected none, or a comma-separated list \
                         of hflip and shift:K"
                    ))
                }
            }
        }
        Ok(a)
    }
}

impl fmt::Display for Augment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.hflip {
            parts.push("hflip".to_string());
        }
        if self.shift > 0 {
            parts.push(format!("shift:{}", self.shift));
        }
        if parts.is_empty() {
            parts.push("none".into());
        }
        write!(f, "{}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for s in ["none", "hflip", "shift:1", "hflip,shift:2"] {
            assert_eq!(s.parse::<Augment>().unwrap().to_string(), s);
        }
        for bad in ["flip", "shift:0", "shift:9", "shift:x", "hflip,", ""] {
            assert!(bad.parse::<Augment>().is_err(), "{bad:?} parsed");
        }
        let big: Augment = "shift:4".parse().unwrap();
        assert!(big.check(8, 8).is_err());
        assert!(big.check(28, 28).is_ok());
    }

    #[test]
    fn variants_mirror_and_move_the_image() {
        // A 4x3 image with 2 channels, every value distinct.
        let (w, h, c) = (4, 3, 2);
        let img: Vec<u8> = (1..=(w * h * c) as u8).collect();
        let at = |v: &[u8], x: usize, y: usize| v[(y * w + x) * c..(y * w + x) * c + c].to_vec();
        let mut out = vec![0u8; img.len()];
        let mut seen = std::collections::HashSet::new();
        let a = Augment {
            hflip: true,
            shift: 1,
        };
        for key in 0..200u64 {
            a.apply(&img, (w, h, c), key, &mut out);
            // Recover the variant from where the image's corner pixels went.
            let mut found = None;
            for flip in [false, true] {
                for dy in -1isize..=1 {
                    for dx in -1isize..=1 {
                        let ok = (0..h).all(|y| {
                            (0..w).all(|x| {
                                let (sx, sy) = (x as isize - dx, y as isize - dy);
                                let want =
                                    if sx < 0 || sy < 0 || sx >= w as isize || sy >= h as isize {
                                        vec![0; c]
                                    } else {
                                        let sx = if flip {
                                            w - 1 - sx as usize
                                        } else {
                                            sx as usize
                                        };
                                        at(&img, sx, sy as usize)
                                    };
                                at(&out, x, y) == want
                            })
                        });
                        if ok {
                            found = Some((flip, dx, dy));
                        }
                    }
                }
            }
            seen.insert(found.expect("every output is one of the 18 variants"));
        }
        assert_eq!(seen.len(), 18, "all variants drawn: {seen:?}");
        // No augmentation leaves the image as it is.
        Augment::NONE.apply(&img, (w, h, c), 7, &mut out);
        assert_eq!(out, img);
    }
}
