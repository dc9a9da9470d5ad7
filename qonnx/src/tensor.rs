//! Constant tensors: ONNX initializers and what constant folding makes of them.
//!
//! Values are held as `f64`, which represents every `f32`, `i32` and the `i64` shapes ONNX uses
//! exactly, so weights, thresholds and shape vectors share one type.

use crate::proto::{data_type, TensorProto};

/// A dense row-major tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape, outermost first (empty for a scalar).
    pub dims: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl Tensor {
    /// A scalar.
    pub fn scalar(v: f64) -> Tensor {
        Tensor {
            dims: Vec::new(),
            data: vec![v],
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Reads an ONNX tensor: its data fields or `raw_data`, for the numeric types QONNX graphs
    /// use. Returns why not for other types, external data or a size that does not match.
    pub fn from_proto(t: &TensorProto) -> Result<Tensor, String> {
        if t.data_location == 1 || !t.external_data.is_empty() {
            return Err("its data is in an external file, which is not supported".into());
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            if d < 0 {
                return Err(format!("it has a negative dimension {d}"));
            }
            dims.push(d as usize);
        }
        let numel = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or("its shape overflows")?;
        let raw = &t.raw_data;
        let data: Vec<f64> = if !raw.is_empty() {
            let size = match t.data_type {
                data_type::FLOAT | data_type::INT32 => 4,
                data_type::DOUBLE | data_type::INT64 => 8,
                data_type::INT16 | data_type::UINT16 => 2,
                data_type::INT8 | data_type::UINT8 | data_type::BOOL => 1,
                other => return Err(format!("its element type {other} is not numeric")),
            };
            if raw.len() != numel * size {
                return Err(format!(
                    "raw_data has {} bytes for {numel} elements of {size} bytes",
                    raw.len()
                ));
            }
            raw.chunks_exact(size)
                .map(|b| match t.data_type {
                    data_type::FLOAT => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                    data_type::INT32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                    data_type::DOUBLE => f64::from_le_bytes(b.try_into().expect("8 bytes")),
                    data_type::INT64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
                    data_type::INT16 => i16::from_le_bytes([b[0], b[1]]) as f64,
                    data_type::UINT16 => u16::from_le_bytes([b[0], b[1]]) as f64,
                    data_type::INT8 => b[0] as i8 as f64,
                    _ => b[0] as f64,
                })
                .collect()
        } else {
            match t.data_type {
                data_type::FLOAT => t.float_data.iter().map(|&v| v as f64).collect(),
                data_type::DOUBLE => t.double_data.clone(),
                data_type::INT64 => t.int64_data.iter().map(|&v| v as f64).collect(),
                data_type::INT32
                | data_type::INT16
                | data_type::UINT16
                | data_type::INT8
                | data_type::UINT8
                | data_type::BOOL => t.int32_data.iter().map(|&v| v as f64).collect(),
                other => return Err(format!("its element type {other} is not numeric")),
            }
        };
        if data.len() != numel {
            return Err(format!(
                "it holds {} values for shape {dims:?} ({numel} elements)",
                data.len()
            ));
        }
        Ok(Tensor { dims, data })
    }

    /// An ONNX FLOAT tensor named `name` (values rounded to `f32`).
    pub fn to_proto(&self, name: &str) -> TensorProto {
        TensorProto {
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.to_string(),
            raw_data: self
                .data
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect(),
            ..Default::default()
        }
    }

    /// Elementwise `f(a, b)` with numpy broadcasting.
    pub fn broadcast(&self, other: &Tensor, f: impl Fn(f64, f64) -> f64) -> Result<Tensor, String> {
        let rank = self.dims.len().max(other.dims.len());
        let pad = |d: &[usize]| {
            let mut v = vec![1; rank - d.len()];
            v.extend_from_slice(d);
            v
        };
        let (a, b) = (pad(&self.dims), pad(&other.dims));
        let mut dims = Vec::with_capacity(rank);
        for (&x, &y) in a.iter().zip(&b) {
            if x != y && x != 1 && y != 1 {
                return Err(format!(
                    "shapes {:?} and {:?} do not broadcast",
                    self.dims, other.dims
                ));
            }
            dims.push(x.max(y));
        }
        let numel: usize = dims.iter().product();
        let strides = |d: &[usize]| {
            let mut s = vec![0; rank];
            let mut acc = 1;
            for i in (0..rank).rev() {
                s[i] = if d[i] == 1 { 0 } else { acc };
                acc *= d[i];
            }
            s
        };
        let (sa, sb) = (strides(&a), strides(&b));
        let mut data = Vec::with_capacity(numel);
        let mut idx = vec![0; rank];
        for _ in 0..numel {
            let ia: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
            let ib: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
            data.push(f(self.data[ia], other.data[ib]));
            for k in (0..rank).rev() {
                idx[k] += 1;
                if idx[k] < dims[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        Ok(Tensor { dims, data })
    }

    /// The axes permuted: output axis `i` is input axis `perm[i]`.
    pub fn transpose(&self, perm: &[usize]) -> Result<Tensor, String> {
        let rank = self.dims.len();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(format!("perm {perm:?} is not a permutation of {rank} axes"));
        }
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let mut in_strides = vec![1; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            in_strides[i] = in_strides[i + 1] * self.dims[i + 1];
        }
        let mut data = Vec::with_capacity(self.numel());
        let mut idx = vec![0; rank];
        for _ in 0..self.numel() {
            let at: usize = idx
                .iter()
                .enumerate()
                .map(|(i, &v)| v * in_strides[perm[i]])
                .sum();
            data.push(self.data[at]);
            for k in (0..rank).rev() {
                idx[k] += 1;
                if idx[k] < dims[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        Ok(Tensor { dims, data })
    }

    /// The values per channel of a constant that broadcasts against a tensor with `channels`
    /// channels on axis 1 (NCHW or NC): one value per channel, or one for all. `None` if it
    /// varies along another axis.
    pub fn per_channel(&self, channels: usize, rank: usize) -> Option<Vec<f64>> {
        if self.numel() == 1 {
            return Some(vec![self.data[0]; channels]);
        }
        if self.numel() != channels || self.dims.len() > rank {
            return None;
        }
        // Right-aligned against the activation's shape, the axis holding the values must be 1.
        let axis = rank - self.dims.len() + self.dims.iter().position(|&d| d == channels)?;
        (axis == 1).then(|| self.data.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_row_against_column() {
        let a = Tensor {
            dims: vec![2, 1],
            data: vec![1.0, 2.0],
        };
        let b = Tensor {
            dims: vec![3],
            data: vec![10.0, 20.0, 30.0],
        };
        let c = a.broadcast(&b, |x, y| x * y).unwrap();
        assert_eq!(c.dims, vec![2, 3]);
        assert_eq!(c.data, vec![10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
    }

    #[test]
    fn transpose_swaps_axes() {
        let a = Tensor {
            dims: vec![2, 3],
            data: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        };
        let t = a.transpose(&[1, 0]).unwrap();
        assert_eq!(t.dims, vec![3, 2]);
        assert_eq!(t.data, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn raw_float_roundtrip() {
        let a = Tensor {
            dims: vec![2],
            data: vec![0.5, -3.0],
        };
        assert_eq!(Tensor::from_proto(&a.to_proto("a")).unwrap(), a);
    }

    #[test]
    fn per_channel_needs_the_channel_axis() {
        let c = Tensor {
            dims: vec![1, 4, 1, 1],
            data: vec![1.0, 2.0, 3.0, 4.0],
        };
        assert_eq!(c.per_channel(4, 4), Some(vec![1.0, 2.0, 3.0, 4.0]));
        let wrong = Tensor {
            dims: vec![4, 1],
            data: vec![1.0, 2.0, 3.0, 4.0],
        };
        assert_eq!(wrong.per_channel(4, 4), None);
        assert_eq!(wrong.per_channel(4, 2), None);
        let flat = Tensor {
            dims: vec![4],
            data: vec![1.0, 2.0, 3.0, 4.0],
        };
        assert_eq!(flat.per_channel(4, 2), Some(vec![1.0, 2.0, 3.0, 4.0]));
    }
}
