//! QONNX's quantisers, evaluated as the `qonnx` package does (`custom_op/general/intquant.py`,
//! `bipolar_quant.py`, `multithreshold.py`), so that folding them gives the same bits.

/// How `Quant` rounds (its `rounding_mode` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// `ROUND` / `HALF_EVEN` (numpy's `round`).
    HalfEven,
    /// `CEIL`.
    Ceil,
    /// `FLOOR`.
    Floor,
    /// `UP`: away from zero.
    Up,
    /// `DOWN`: towards zero.
    Down,
    /// `HALF_UP`: halves away from zero.
    HalfUp,
    /// `HALF_DOWN`: halves towards zero.
    HalfDown,
}

impl Rounding {
    /// Parses a `rounding_mode` attribute (case-insensitive, as qonnx does).
    pub fn parse(s: &str) -> Option<Rounding> {
        Some(match s.to_ascii_uppercase().as_str() {
            "ROUND" | "HALF_EVEN" => Rounding::HalfEven,
            "CEIL" => Rounding::Ceil,
            "FLOOR" => Rounding::Floor,
            "UP" => Rounding::Up,
            "DOWN" => Rounding::Down,
            "HALF_UP" => Rounding::HalfUp,
            "HALF_DOWN" => Rounding::HalfDown,
            _ => return None,
        })
    }

    /// Rounds `x` to an integer.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Rounding::HalfEven => x.round_ties_even(),
            Rounding::Ceil => x.ceil(),
            Rounding::Floor => x.floor(),
            Rounding::Up => x.signum() * x.abs().ceil(),
            Rounding::Down => x.trunc(),
            Rounding::HalfUp => x.signum() * (x.abs() + 0.5).floor(),
            Rounding::HalfDown => x.signum() * (x.abs() - 0.5).ceil(),
        }
    }
}

/// `BipolarQuant`: `+scale` where `x >= 0`, else `-scale`.
pub fn bipolar(x: f64, scale: f64) -> f64 {
    if x >= 0.0 {
        scale
    } else {
        -scale
    }
}

/// The integer grid of a `Quant` node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntQuant {
    /// Bit width.
    pub bits: u32,
    /// Signed range.
    pub signed: bool,
    /// Narrow range (drops the most negative value, or the largest unsigned one).
    pub narrow: bool,
    /// Rounding.
    pub rounding: Rounding,
}

impl IntQuant {
    /// The smallest integer of the grid.
    pub fn min_int(&self) -> f64 {
        if self.signed {
            -(2f64.powi(self.bits as i32 - 1)) + if self.narrow { 1.0 } else { 0.0 }
        } else {
            0.0
        }
    }

    /// The largest integer of the grid.
    pub fn max_int(&self) -> f64 {
        match (self.signed, self.narrow) {
            (false, false) => 2f64.powi(self.bits as i32) - 1.0,
            (false, true) => 2f64.powi(self.bits as i32) - 2.0,
            _ => 2f64.powi(self.bits as i32 - 1) - 1.0,
        }
    }

    /// The integer `x` quantises to, before the zero point is taken off again. qonnx treats a
    /// signed 1-bit grid as bipolar (`+-1` by the sign of `x / scale + zeropt`).
    pub fn integer(&self, x: f64, scale: f64, zeropt: f64) -> f64 {
        let y = x / scale + zeropt;
        if self.bits == 1 && self.signed {
            return if y >= 0.0 { 1.0 } else { -1.0 };
        }
        self.rounding.apply(y.clamp(self.min_int(), self.max_int()))
    }

    /// [`IntQuant::integer`] with `x / scale + zeropt` in `f32`, as qonnx computes it on a
    /// float32 tensor.
    pub fn integer_f32(&self, x: f64, scale: f64, zeropt: f64) -> f64 {
        let y = (x as f32 / scale as f32 + zeropt as f32) as f64;
        if self.bits == 1 && self.signed {
            return if y >= 0.0 { 1.0 } else { -1.0 };
        }
        self.rounding.apply(y.clamp(self.min_int(), self.max_int()))
    }

    /// The smallest and largest integer [`IntQuant::integer`] gives.
    pub fn range(&self) -> (f64, f64) {
        if self.bits == 1 && self.signed {
            (-1.0, 1.0)
        } else {
            (self.min_int(), self.max_int())
        }
    }

    /// The output value `(integer - zeropt) * scale`.
    pub fn value(&self, x: f64, scale: f64, zeropt: f64) -> f64 {
        (self.integer(x, scale, zeropt) - zeropt) * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_even_rounds_halves_to_even() {
        let r = Rounding::HalfEven;
        assert_eq!(
            (r.apply(0.5), r.apply(1.5), r.apply(-0.5)),
            (0.0, 2.0, -0.0)
        );
    }

    #[test]
    fn signed_one_bit_is_bipolar() {
        let q = IntQuant {
            bits: 1,
            signed: true,
            narrow: false,
            rounding: Rounding::HalfEven,
        };
        assert_eq!(q.integer(0.0, 1.0, 0.0), 1.0);
        assert_eq!(q.integer(-0.1, 1.0, 0.0), -1.0);
    }

    #[test]
    fn unsigned_two_bit_clamps() {
        let q = IntQuant {
            bits: 2,
            signed: false,
            narrow: false,
            rounding: Rounding::HalfEven,
        };
        assert_eq!(q.range(), (0.0, 3.0));
        assert_eq!(q.integer(10.0, 1.0, 0.0), 3.0);
        assert_eq!(q.value(0.7, 0.5, 0.0), 0.5);
    }
}
