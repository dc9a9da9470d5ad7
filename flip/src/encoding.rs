//! Turning pixels into the bits the first layer reads.
//!
//! Every encoding is a handful of comparators or wires in hardware, so the input adapter can
//! apply it to a pixel stream as it arrives.

use crate::bits::{set_bit, words_for};

/// How the first layer sees a pixel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Encoding {
    /// One bit per pixel: `v >= t`. Cheapest, loses grey levels.
    Threshold(u16),
    /// One bit per threshold per pixel, `v >= t_k`, stored pixel-major (pixel `p`, level `k` is
    /// input `p * L + k`). Each bit has its own weight, so the first layer is `L` times wider.
    Thermometer(Vec<u16>),
    /// The pixel's top `P` bits as `P` bit planes sharing one weight per pixel; plane `k` counts
    /// with weight `2^k`. Keeps grey levels at the first layer's width, at the price of a
    /// shifted add per plane.
    BitPlanes(u8),
}

impl Encoding {
    /// Input bits per pixel seen by the first layer's weights.
    pub fn bits_per_pixel(&self) -> usize {
        match self {
            Encoding::Thermometer(t) => t.len(),
            _ => 1,
        }
    }

    /// Bit planes of the first layer's input (1 unless [`Encoding::BitPlanes`]).
    pub fn planes(&self) -> usize {
        match self {
            Encoding::BitPlanes(p) => *p as usize,
            _ => 1,
        }
    }

    /// A sensible default for pixels of `pixel_bits` bits: all grey levels as bit planes, at
    /// most four (the rest add cost and little accuracy).
    pub fn default_for(pixel_bits: u8) -> Encoding {
        Encoding::BitPlanes(pixel_bits.min(4))
    }

    /// Why this encoding cannot be used with `pixel_bits`-bit pixels, if it cannot.
    pub fn check(&self, pixel_bits: u8) -> Result<(), String> {
        let max = (1u32 << pixel_bits) - 1;
        match self {
            Encoding::Threshold(t) if *t as u32 > max => Err(format!(
                "threshold {t} exceeds the largest {pixel_bits}-bit pixel {max}"
            )),
            Encoding::Thermometer(ts) if ts.is_empty() => {
                Err("thermometer needs at least one level".into())
            }
            Encoding::Thermometer(ts) if ts.iter().any(|&t| t as u32 > max) => Err(format!(
                "a thermometer level exceeds the largest {pixel_bits}-bit pixel {max}"
            )),
            Encoding::BitPlanes(p) if *p == 0 || *p > pixel_bits => Err(format!(
                "bit planes must be 1..={pixel_bits} for {pixel_bits}-bit pixels, got {p}"
            )),
            _ => Ok(()),
        }
    }

    /// Words one encoded sample takes: `planes` blocks of `words_for(inputs)` words.
    pub fn encoded_words(&self, pixels: usize) -> usize {
        self.planes() * words_for(pixels * self.bits_per_pixel())
    }

    /// Encodes one image into `out` (length [`Encoding::encoded_words`]), plane after plane.
    pub fn encode(&self, pixel_bits: u8, pixels: &[u8], out: &mut [u64]) {
        out.fill(0);
        match self {
            Encoding::Threshold(t) => {
                for (i, &v) in pixels.iter().enumerate() {
                    if v as u16 >= *t {
                        set_bit(out, i, true);
                    }
                }
            }
            Encoding::Thermometer(ts) => {
                let l = ts.len();
                for (i, &v) in pixels.iter().enumerate() {
                    for (k, &t) in ts.iter().enumerate() {
                        if v as u16 >= t {
                            set_bit(out, i * l + k, true);
                        }
                    }
                }
            }
            Encoding::BitPlanes(p) => {
                let w = words_for(pixels.len());
                let shift = pixel_bits - p;
                for (i, &v) in pixels.iter().enumerate() {
                    let q = v >> shift;
                    for k in 0..*p as usize {
                        if (q >> k) & 1 == 1 {
                            set_bit(&mut out[k * w..(k + 1) * w], i, true);
                        }
                    }
                }
            }
        }
    }

    /// The integer each first-layer input contributes per unit of weight: `+-1` for binary
    /// encodings and the centred level `2q - (2^P - 1)` for bit planes. Trainers use it for the
    /// first layer's weight signal.
    pub fn input_values(&self, pixel_bits: u8, pixels: &[u8], out: &mut [i16]) {
        match self {
            Encoding::Threshold(t) => {
                for (o, &v) in out.iter_mut().zip(pixels) {
                    *o = if v as u16 >= *t { 1 } else { -1 };
                }
            }
            Encoding::Thermometer(ts) => {
                let l = ts.len();
                for (i, &v) in pixels.iter().enumerate() {
                    for (k, &t) in ts.iter().enumerate() {
                        out[i * l + k] = if v as u16 >= t { 1 } else { -1 };
                    }
                }
            }
            Encoding::BitPlanes(p) => {
                let shift = pixel_bits - p;
                let top = (1i16 << p) - 1;
                for (o, &v) in out.iter_mut().zip(pixels) {
                    *o = 2 * (v >> shift) as i16 - top;
                }
            }
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encoding::Threshold(t) => write!(f, "threshold {t}"),
            Encoding::Thermometer(ts) => {
                write!(f, "thermometer")?;
                for t in ts {
                    write!(f, " {t}")?;
                }
                Ok(())
            }
            Encoding::BitPlanes(p) => write!(f, "bitplanes {p}"),
        }
    }
}

impl std::str::FromStr for Encoding {
    type Err = String;

    /// Parses the CLI form: `threshold:T`, `thermometer:T1,T2,..` or `bitplanes:P`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, arg) = s.split_once(':').ok_or_else(|| {
            format!("encoding '{s}': expected threshold:T, thermometer:T1,T2,.. or bitplanes:P")
        })?;
        let num = |x: &str| {
            x.trim()
                .parse::<u16>()
                .map_err(|_| format!("encoding '{s}': '{x}' is not a number"))
        };
        match kind {
            "threshold" => Ok(Encoding::Threshold(num(arg)?)),
            "thermometer" => Ok(Encoding::Thermometer(
                arg.split(',').map(num).collect::<Result<_, _>>()?,
            )),
            "bitplanes" => {
                let p = num(arg)?;
                u8::try_from(p)
                    .map(Encoding::BitPlanes)
                    .map_err(|_| format!("encoding '{s}': too many planes"))
            }
            _ => Err(format!(
                "encoding '{s}': unknown kind '{kind}' (threshold, thermometer, bitplanes)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::get_bit;

    #[test]
    fn bit_planes_hold_the_top_bits() {
        let e = Encoding::BitPlanes(3);
        let mut out = vec![0u64; e.encoded_words(2)];
        e.encode(8, &[0b1010_0000, 0b0110_0000], &mut out);
        // q = 0b101 and 0b011
        assert!(get_bit(&out[0..1], 0) && get_bit(&out[0..1], 1));
        assert!(!get_bit(&out[1..2], 0) && get_bit(&out[1..2], 1));
        assert!(get_bit(&out[2..3], 0) && !get_bit(&out[2..3], 1));
        let mut v = [0i16; 2];
        e.input_values(8, &[0b1010_0000, 0b0110_0000], &mut v);
        assert_eq!(v, [2 * 5 - 7, 2 * 3 - 7]);
    }

    #[test]
    fn thermometer_is_pixel_major() {
        let e: Encoding = "thermometer:4,8".parse().unwrap();
        let mut out = vec![0u64; e.encoded_words(2)];
        e.encode(5, &[5, 9], &mut out);
        assert_eq!(out[0], 0b1101);
    }

    #[test]
    fn bad_encodings_are_rejected() {
        assert!("bitplanes:9".parse::<Encoding>().unwrap().check(8).is_err());
        assert!("threshold:300"
            .parse::<Encoding>()
            .unwrap()
            .check(8)
            .is_err());
        assert!("gray:3".parse::<Encoding>().is_err());
    }
}
