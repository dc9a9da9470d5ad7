//! The ONNX operators that compute shapes rather than values (`Shape`, `Gather`, `Unsqueeze`,
//! `Squeeze`, `Concat`, `Cast`), evaluated on constant tensors.
//!
//! PyTorch exports `x.view(x.size(0), -1)` with a dynamic batch axis as
//! `Shape -> Gather -> Unsqueeze -> Concat -> Reshape`: the target shape is computed from the
//! activation's shape at run time. The importer knows every activation's shape, so it takes
//! `Shape` as a constant and evaluates the rest of the chain with these functions, which leaves
//! an ordinary `Reshape` by a constant shape.

use crate::tensor::Tensor;

/// An axis attribute, negative counting from the end, as an index below `rank`.
pub fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let k = if a < 0 { a + r } else { a };
    if (0..r).contains(&k) {
        Ok(k as usize)
    } else {
        Err(format!("axis {a} is outside a tensor of rank {rank}"))
    }
}

/// `Shape`: the dimensions `dims[start..end]` as a 1-D tensor (`start`, `end` as ONNX clamps
/// them, negative from the end).
pub fn shape(dims: &[usize], start: i64, end: Option<i64>) -> Tensor {
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    let data: Vec<f64> = dims[s..e.max(s)].iter().map(|&d| d as f64).collect();
    Tensor {
        dims: vec![data.len()],
        data,
    }
}

/// `Gather` along `axis` with integer `indices` (negative from the end).
pub fn gather(data: &Tensor, indices: &Tensor, axis_attr: i64) -> Result<Tensor, String> {
    let ax = axis(axis_attr, data.dims.len())?;
    let n = data.dims[ax];
    let outer: usize = data.dims[..ax].iter().product();
    let inner: usize = data.dims[ax + 1..].iter().product();
    let mut picks = Vec::with_capacity(indices.numel());
    for &i in &indices.data {
        let k = if i < 0.0 { i + n as f64 } else { i };
        if k.fract() != 0.0 || k < 0.0 || k >= n as f64 {
            return Err(format!("index {i} is outside an axis of {n}"));
        }
        picks.push(k as usize);
    }
    let mut out = Vec::with_capacity(outer * picks.len() * inner);
    for o in 0..outer {
        for &k in &picks {
            let at = (o * n + k) * inner;
            out.extend_from_slice(&data.data[at..at + inner]);
        }
    }
    let mut dims = data.dims[..ax].to_vec();
    dims.extend_from_slice(&indices.dims);
    dims.extend_from_slice(&data.dims[ax + 1..]);
    Ok(Tensor { dims, data: out })
}

/// `Unsqueeze`: inserts axes of size 1 at `axes` of the output (negative from its end).
pub fn unsqueeze(t: &Tensor, axes: &[i64]) -> Result<Tensor, String> {
    let rank = t.dims.len() + axes.len();
    let mut new = vec![false; rank];
    for &a in axes {
        let k = axis(a, rank)?;
        if std::mem::replace(&mut new[k], true) {
            return Err(format!("axis {a} is given twice"));
        }
    }
    let mut rest = t.dims.iter();
    let dims = new
        .iter()
        .map(|&is_new| {
            if is_new {
                1
            } else {
                *rest.next().unwrap_or(&1)
            }
        })
        .collect();
    Ok(Tensor {
        dims,
        data: t.data.clone(),
    })
}

/// `Squeeze`: drops the axes `axes` (each of size 1), or every axis of size 1 without them.
pub fn squeeze(t: &Tensor, axes: Option<&[i64]>) -> Result<Tensor, String> {
    let rank = t.dims.len();
    let mut drop = vec![false; rank];
    match axes {
        Some(axes) => {
            for &a in axes {
                let k = axis(a, rank)?;
                if t.dims[k] != 1 {
                    return Err(format!("axis {a} has size {}, not 1", t.dims[k]));
                }
                drop[k] = true;
            }
        }
        None => {
            for (k, &d) in t.dims.iter().enumerate() {
                drop[k] = d == 1;
            }
        }
    }
    let dims = t
        .dims
        .iter()
        .zip(&drop)
        .filter(|(_, &d)| !d)
        .map(|(&x, _)| x)
        .collect();
    Ok(Tensor {
        dims,
        data: t.data.clone(),
    })
}

/// `Concat` of tensors of one rank along `axis`.
pub fn concat(parts: &[&Tensor], axis_attr: i64) -> Result<Tensor, String> {
    let Some(first) = parts.first() else {
        return Err("there is nothing to concatenate".into());
    };
    let rank = first.dims.len();
    let ax = axis(axis_attr, rank)?;
    for p in parts {
        let same = p.dims.len() == rank && (0..rank).all(|k| k == ax || p.dims[k] == first.dims[k]);
        if !same {
            return Err(format!(
                "shapes {:?} and {:?} do not concatenate on axis {ax}",
                first.dims, p.dims
            ));
        }
    }
    let outer: usize = first.dims[..ax].iter().product();
    let mut data = Vec::with_capacity(parts.iter().map(|p| p.numel()).sum());
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.dims[ax..].iter().product();
            data.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
        }
    }
    let mut dims = first.dims.clone();
    dims[ax] = parts.iter().map(|p| p.dims[ax]).sum();
    Ok(Tensor { dims, data })
}

/// The shape a `Reshape` to `target` gives a tensor of shape `dims`: a 0 copies the input's
/// dimension (unless `allowzero`), one -1 takes what is left.
pub fn reshaped(dims: &[usize], target: &[f64], allowzero: bool) -> Result<Vec<usize>, String> {
    let numel: usize = dims.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        if d.fract() != 0.0 || d < -1.0 {
            return Err(format!("the target shape {target:?} has the entry {d}"));
        }
        if d == -1.0 {
            if infer.replace(i).is_some() {
                return Err(format!("the target shape {target:?} has two -1 entries"));
            }
            out.push(1);
        } else if d == 0.0 && !allowzero {
            let &copy = dims.get(i).ok_or_else(|| {
                format!(
                    "the target shape {target:?} copies axis {i} of a rank-{} tensor",
                    dims.len()
                )
            })?;
            out.push(copy);
        } else {
            out.push(d as usize);
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(format!(
                "{numel} elements do not fill the target shape {target:?}"
            ));
        }
        out[i] = numel / known;
    } else if known != numel {
        return Err(format!(
            "the target shape {target:?} holds {known} elements, not {numel}"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dims: &[usize], data: &[f64]) -> Tensor {
        Tensor {
            dims: dims.to_vec(),
            data: data.to_vec(),
        }
    }

    /// PyTorch's `x.view(x.size(0), -1)` on a `[1, 8, 3, 3]` map, evaluated step by step.
    #[test]
    fn the_dynamic_flatten_chain_gives_one_by_n() {
        let s = shape(&[1, 8, 3, 3], 0, None);
        assert_eq!(s, t(&[4], &[1.0, 8.0, 3.0, 3.0]));
        let g = gather(&s, &Tensor::scalar(0.0), 0).unwrap();
        assert_eq!(g, t(&[], &[1.0]));
        let u = unsqueeze(&g, &[0]).unwrap();
        assert_eq!(u, t(&[1], &[1.0]));
        let c = concat(&[&u, &t(&[1], &[-1.0])], 0).unwrap();
        assert_eq!(c, t(&[2], &[1.0, -1.0]));
        assert_eq!(
            reshaped(&[1, 8, 3, 3], &c.data, false).unwrap(),
            vec![1, 72]
        );
        // x.view(x.size(1), -1) mixes the batch into the rows.
        let g1 = gather(&s, &Tensor::scalar(1.0), 0).unwrap();
        let c1 = concat(&[&unsqueeze(&g1, &[0]).unwrap(), &t(&[1], &[-1.0])], 0).unwrap();
        assert_eq!(
            reshaped(&[1, 8, 3, 3], &c1.data, false).unwrap(),
            vec![8, 9]
        );
    }

    #[test]
    fn shape_takes_start_and_end() {
        assert_eq!(shape(&[1, 3, 5, 7], 1, Some(-1)), t(&[2], &[3.0, 5.0]));
        assert_eq!(shape(&[1, 3], -9, Some(9)), t(&[2], &[1.0, 3.0]));
    }

    #[test]
    fn gather_picks_rows_and_counts_negative_indices_from_the_end() {
        let m = t(&[3, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let g = gather(&m, &t(&[2], &[-1.0, 0.0]), 0).unwrap();
        assert_eq!(g, t(&[2, 2], &[4.0, 5.0, 0.0, 1.0]));
        let g = gather(&m, &Tensor::scalar(1.0), 1).unwrap();
        assert_eq!(g, t(&[3], &[1.0, 3.0, 5.0]));
        assert!(gather(&m, &Tensor::scalar(3.0), 0).is_err());
    }

    #[test]
    fn squeeze_and_unsqueeze_undo_each_other() {
        let a = t(&[2, 3], &[0.0; 6]);
        let u = unsqueeze(&a, &[0, -1]).unwrap();
        assert_eq!(u.dims, vec![1, 2, 3, 1]);
        assert_eq!(squeeze(&u, None).unwrap(), a);
        assert_eq!(squeeze(&u, Some(&[0, 3])).unwrap(), a);
        assert!(squeeze(&u, Some(&[1])).is_err());
    }

    #[test]
    fn concat_joins_inner_blocks() {
        let a = t(&[2, 1], &[1.0, 2.0]);
        let b = t(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
        let c = concat(&[&a, &b], 1).unwrap();
        assert_eq!(c, t(&[2, 3], &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0]));
        assert!(concat(&[&a, &b], 0).is_err());
    }

    #[test]
    fn reshape_targets_follow_onnx() {
        assert_eq!(
            reshaped(&[1, 4, 2, 2], &[0.0, -1.0], false).unwrap(),
            vec![1, 16]
        );
        assert_eq!(
            reshaped(&[1, 16], &[1.0, 4.0, 2.0, 2.0], false).unwrap(),
            vec![1, 4, 2, 2]
        );
        assert!(reshaped(&[1, 16], &[-1.0, -1.0], false).is_err());
        assert!(reshaped(&[1, 16], &[3.0, -1.0], false).is_err());
        assert!(reshaped(&[1, 16], &[1.0, 15.0], false).is_err());
    }
}
