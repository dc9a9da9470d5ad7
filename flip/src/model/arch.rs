//! The architecture syntax of `--arch`: dash-separated layer tokens.
//!
//! - `cN`: 3x3 convolution with `N` output channels (stride 1, no padding);
//! - `cNkK`: the same with a `K`x`K` kernel;
//! - `p`: 2x2 max-pool, stride 2;
//! - a plain number: a dense layer of that many neurons; the last one gives the class scores.
//!
//! The flatten between the last convolution or pool and the first dense layer is implicit. A
//! dense-only architecture may start with the input width (`784-256-256-10`, as
//! [`super::Model::arch`] prints it); a convolutional one starts with its first layer
//! (`c32-c32-p-c64-c64-p-256-10`).

use super::{Conv, InputSpec, MaxPool};

/// One layer as the architecture names it, before shapes are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerSpec {
    /// A dense layer of this many neurons.
    Dense(usize),
    /// A convolution.
    Conv {
        /// Output channels.
        channels: usize,
        /// Kernel side.
        kernel: usize,
    },
    /// A 2x2 max-pool with stride 2.
    Pool,
}

impl std::fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            LayerSpec::Dense(n) => write!(f, "{n}"),
            LayerSpec::Conv {
                channels,
                kernel: 3,
            } => write!(f, "c{channels}"),
            LayerSpec::Conv { channels, kernel } => write!(f, "c{channels}k{kernel}"),
            LayerSpec::Pool => f.write_str("p"),
        }
    }
}

/// A layer with its shapes resolved against the input: what a trainer builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerShape {
    /// A dense layer.
    Dense {
        /// Input width (bits per plane).
        inputs: usize,
        /// Neurons.
        outputs: usize,
    },
    /// A convolution with `outputs` channels.
    Conv {
        /// Where it slides.
        conv: Conv,
        /// Output channels.
        outputs: usize,
    },
    /// A max-pool.
    Pool(MaxPool),
}

impl LayerShape {
    /// Weights per neuron (0 for a pool).
    pub fn fan_in(&self) -> usize {
        match self {
            LayerShape::Dense { inputs, .. } => *inputs,
            LayerShape::Conv { conv, .. } => conv.window(),
            LayerShape::Pool(_) => 0,
        }
    }

    /// Neurons or output channels (channels kept by a pool).
    pub fn neurons(&self) -> usize {
        match self {
            LayerShape::Dense { outputs, .. } | LayerShape::Conv { outputs, .. } => *outputs,
            LayerShape::Pool(p) => p.channels,
        }
    }

    /// Flattened input size.
    pub fn in_size(&self) -> usize {
        match self {
            LayerShape::Dense { inputs, .. } => *inputs,
            LayerShape::Conv { conv, .. } => conv.input_size(),
            LayerShape::Pool(p) => p.input_size(),
        }
    }

    /// Flattened output size.
    pub fn out_size(&self) -> usize {
        match self {
            LayerShape::Dense { outputs, .. } => *outputs,
            LayerShape::Conv { conv, outputs } => conv.output_pixels() * outputs,
            LayerShape::Pool(p) => p.output_size(),
        }
    }
}

/// Dense layers of these widths (the last one the classes).
pub fn dense(widths: &[usize]) -> Vec<LayerSpec> {
    widths.iter().map(|&n| LayerSpec::Dense(n)).collect()
}

/// Parses the layer tokens of an architecture. A leading plain number is the input width when
/// more than one plain number follows it and no convolution or pool does: it must then equal
/// `input_width` and is dropped. Errors name the token.
pub fn parse(arch: &str, input_width: usize) -> Result<Vec<LayerSpec>, String> {
    let mut specs = Vec::new();
    for tok in arch.split('-') {
        let t = tok.trim();
        let bad = |why: &str| format!("--arch {arch}: '{t}' {why}");
        let spec = if t == "p" {
            LayerSpec::Pool
        } else if let Some(rest) = t.strip_prefix('c') {
            let (ch, k) = match rest.split_once('k') {
                Some((ch, k)) => (ch, Some(k)),
                None => (rest, None),
            };
            let channels: usize = ch
                .parse()
                .map_err(|_| bad("is not a convolution (cN or cNkK)"))?;
            let kernel: usize = match k {
                Some(k) => k
                    .parse()
                    .map_err(|_| bad("is not a convolution (cN or cNkK)"))?,
                None => 3,
            };
            if channels == 0 {
                return Err(bad("has zero channels"));
            }
            if kernel == 0 {
                return Err(bad("has a zero kernel"));
            }
            LayerSpec::Conv { channels, kernel }
        } else {
            let n: usize = t.parse().map_err(|_| {
                bad("is not a layer (a width, cN, cNkK for a KxK convolution, or p for a pool)")
            })?;
            if n == 0 {
                return Err(bad("is a layer of width 0"));
            }
            LayerSpec::Dense(n)
        };
        specs.push(spec);
    }
    let dense_only = specs.iter().all(|s| matches!(s, LayerSpec::Dense(_)));
    if dense_only {
        if specs.len() < 2 {
            return Err(format!(
                "--arch {arch}: need at least an input and an output width"
            ));
        }
        if specs[0] != LayerSpec::Dense(input_width) {
            return Err(format!(
                "--arch {arch}: the data has {input_width} pixels per image, not {}",
                specs[0]
            ));
        }
        specs.remove(0);
    }
    Ok(specs)
}

/// Resolves every layer's shape against the input, checking that each fits: a kernel no
/// larger than its feature map, a pool over an even size, convolutions and pools before the
/// dense layers, a dense layer last with `classes` outputs. Errors name the token.
pub fn shapes(
    specs: &[LayerSpec],
    input: &InputSpec,
    classes: usize,
) -> Result<Vec<LayerShape>, String> {
    let arch: Vec<String> = specs.iter().map(ToString::to_string).collect();
    let arch = arch.join("-");
    let mut map = Some((
        input.height,
        input.width,
        input.channels * input.encoding.bits_per_pixel(),
    ));
    let mut width = input.encoded_inputs();
    let mut out = Vec::with_capacity(specs.len());
    for (i, &spec) in specs.iter().enumerate() {
        let at = |why: String| format!("--arch {arch}: layer {} '{spec}' {why}", i + 1);
        let shape = match spec {
            LayerSpec::Dense(n) => {
                map = None;
                LayerShape::Dense {
                    inputs: width,
                    outputs: n,
                }
            }
            LayerSpec::Conv { channels, kernel } => {
                let Some((h, w, c)) = map else {
                    return Err(at("follows a dense layer; convolutions come first".into()));
                };
                if kernel > h || kernel > w {
                    return Err(at(format!(
                        "has a {kernel}x{kernel} kernel, larger than its {h}x{w} input"
                    )));
                }
                let conv = Conv {
                    height: h,
                    width: w,
                    channels: c,
                    kernel,
                };
                map = Some((conv.out_height(), conv.out_width(), channels));
                LayerShape::Conv {
                    conv,
                    outputs: channels,
                }
            }
            LayerSpec::Pool => {
                if i == 0 {
                    return Err(at("pools the input; a pool follows a convolution".into()));
                }
                let Some((h, w, c)) = map else {
                    return Err(at("follows a dense layer; pools come first".into()));
                };
                if h % 2 != 0 || w % 2 != 0 {
                    return Err(at(format!(
                        "pools a {h}x{w} feature map; a 2x2 pool needs even sizes"
                    )));
                }
                let p = MaxPool {
                    height: h,
                    width: w,
                    channels: c,
                    size: 2,
                };
                map = Some((p.out_height(), p.out_width(), c));
                LayerShape::Pool(p)
            }
        };
        width = shape.out_size();
        out.push(shape);
    }
    match out.last() {
        Some(LayerShape::Dense { outputs, .. }) if *outputs == classes => Ok(out),
        Some(LayerShape::Dense { outputs, .. }) => Err(format!(
            "--arch {arch}: the data has {classes} classes, not {outputs}"
        )),
        Some(_) => Err(format!(
            "--arch {arch}: the last layer must be dense (it gives the {classes} class scores)"
        )),
        None => Err(format!("--arch {arch}: no layers")),
    }
}

/// The architecture string of `shapes`, as [`super::Model::arch`] prints it for a model with
/// these layers.
pub fn to_string(input_width: usize, shapes: &[LayerShape]) -> String {
    let conv = shapes
        .iter()
        .any(|s| !matches!(s, LayerShape::Dense { .. }));
    let mut parts = Vec::new();
    if !conv {
        parts.push(input_width.to_string());
    }
    for s in shapes {
        parts.push(match s {
            LayerShape::Dense { outputs, .. } => outputs.to_string(),
            LayerShape::Conv { conv, outputs } if conv.kernel == 3 => format!("c{outputs}"),
            LayerShape::Conv { conv, outputs } => format!("c{outputs}k{}", conv.kernel),
            LayerShape::Pool(_) => "p".into(),
        });
    }
    parts.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::Encoding;

    fn image(side: usize, encoding: Encoding) -> InputSpec {
        InputSpec {
            width: side,
            height: side,
            channels: 1,
            pixel_bits: 8,
            encoding,
        }
    }

    #[test]
    fn the_reference_network_resolves_as_documented() {
        let input = image(28, Encoding::BitPlanes(4));
        let specs = parse("c32-c32-p-c64-c64-p-256-10", 784).unwrap();
        let s = shapes(&specs, &input, 10).unwrap();
        let sizes: Vec<usize> = s.iter().map(LayerShape::out_size).collect();
        assert_eq!(
            sizes,
            vec![
                26 * 26 * 32,
                24 * 24 * 32,
                12 * 12 * 32,
                10 * 10 * 64,
                8 * 8 * 64,
                4 * 4 * 64,
                256,
                10
            ]
        );
        assert_eq!(
            s[6],
            LayerShape::Dense {
                inputs: 1024,
                outputs: 256
            }
        );
        assert_eq!(s[0].fan_in(), 9);
        assert_eq!(s[1].fan_in(), 9 * 32);
        assert_eq!(to_string(784, &s), "c32-c32-p-c64-c64-p-256-10");
    }

    #[test]
    fn kernels_and_thermometer_channels() {
        let input = image(8, Encoding::Thermometer(vec![4, 8]));
        let specs = parse("c16k5-p-64-10", 64).unwrap();
        assert_eq!(
            specs[0],
            LayerSpec::Conv {
                channels: 16,
                kernel: 5
            }
        );
        let s = shapes(&specs, &input, 10).unwrap();
        // Two thermometer levels are two input channels.
        assert_eq!(s[0].fan_in(), 5 * 5 * 2);
        assert_eq!(s[1].out_size(), 2 * 2 * 16);
        assert_eq!(to_string(64, &s), "c16k5-p-64-10");
    }

    #[test]
    fn dense_architectures_keep_their_input_width() {
        assert_eq!(
            parse("64-128-10", 64).unwrap(),
            vec![LayerSpec::Dense(128), LayerSpec::Dense(10)]
        );
        let e = parse("63-128-10", 64).unwrap_err();
        assert!(e.contains("64 pixels per image, not 63"), "{e}");
        assert!(parse("64", 64).unwrap_err().contains("at least"));
    }

    #[test]
    fn bad_shapes_name_the_token() {
        let input = image(8, Encoding::Threshold(128));
        let err = |a: &str| {
            parse(a, 64)
                .and_then(|s| shapes(&s, &input, 10))
                .unwrap_err()
        };
        assert!(err("c16k9-10").contains("'c16k9' has a 9x9 kernel, larger than its 8x8"));
        assert!(
            err("c16-c8-p-c4-10").contains("layer 4 'c4' has a 3x3 kernel, larger than its 2x2")
        );
        assert!(err("c16k4-p-10").contains("layer 2 'p' pools a 5x5 feature map"));
        assert!(err("c0-10").contains("'c0' has zero channels"));
        assert!(err("cx-10").contains("'cx' is not a convolution"));
        assert!(err("c16-q-10").contains("'q' is not a layer"));
        assert!(err("p-10").contains("'p' pools the input"));
        assert!(err("c8-32-c8-10").contains("layer 3 'c8' follows a dense layer"));
        assert!(err("c8-p").contains("the last layer must be dense"));
        assert!(err("c8-12").contains("10 classes, not 12"));
    }
}
