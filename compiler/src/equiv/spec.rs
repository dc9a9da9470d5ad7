//! The specification side of a datapath proof: each binary layer of a model, and the whole
//! network, as combinational Verilog written from the model file alone (the integer semantics
//! of `flip::reference`), with nothing of a folding, a pipeline or a handshake in it.
//!
//! - `l{N}_spec (x, y)`: layer `N` (1-based). `x` is the layer's input, plane `k` in bits
//!   `k * inputs ..`; neuron `i`'s sum is `sum_k 2^k * popcount(~(x_k ^ w_i))`, counted by halves
//!   (`spec_popcount`; nothing of the design's folding or pipeline). A hidden layer's `y` bit `i` is
//!   `(s_i >= T_i) ^ invert_i`, compared as signed integers; a scores layer's `y` holds class
//!   `i`'s score `scale_i * s_i + bias_i` as a signed 32-bit integer in bits `32 i ..`.
//! - `{top}_spec (pixels, class, scores)`: the input encoding of one frame's pixels (bytes,
//!   pixel `j` in bits `8 j ..`; or packed bits), every layer, and the argmax (the lowest index
//!   wins a tie).
//! - With a [`Chunking`]: `l{N}_spec_chunked (x, y)`, the same function as `l{N}_spec`, each
//!   sum added chunk by chunk (`SIMD` inputs a chunk, plane by plane, from the left) as a
//!   folded unit adds it, and `{top}_spec_chunked`, the network built from those layers. A
//!   prover matches a unit's partial sums with these nodes one by one, where the flat sum
//!   agrees with them only by associativity of the additions.
//!
//! Scores are 32 bits wide whatever the design's score width is, so a design whose scores
//! overflow their registers differs from its specification.

use flip::encoding::Encoding;
use flip::model::{Activation, BinaryLayer, Layer, Model};

use crate::ir::{bits_for, InputFormat};

/// Bits of a score in the specification (the reference's `i32`).
pub const SCORE_BITS: u32 = 32;

/// One binary layer and where it sits.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec<'a> {
    /// Layer number, 1-based, as in the design's `l{index}_mvtu`.
    pub index: usize,
    /// The layer as the model file gives it.
    pub layer: &'a BinaryLayer,
    /// Input planes: the encoding's for the first layer, else 1.
    pub planes: usize,
}

impl LayerSpec<'_> {
    /// The module's name.
    pub fn name(&self) -> String {
        format!("l{}_spec", self.index)
    }

    /// Bits of `x`.
    pub fn in_width(&self) -> usize {
        self.layer.inputs * self.planes
    }

    /// True for the last layer (class scores).
    pub fn is_scores(&self) -> bool {
        matches!(self.layer.activation, Activation::Scores { .. })
    }

    /// Bits of `y`.
    pub fn out_width(&self) -> usize {
        if self.is_scores() {
            self.layer.outputs * SCORE_BITS as usize
        } else {
            self.layer.outputs
        }
    }

    /// Bits of a neuron's sum: enough for `inputs * (2^planes - 1)`.
    pub fn sum_width(&self) -> u32 {
        bits_for(self.layer.inputs as u64 * ((1u64 << self.planes) - 1))
    }
}

/// The layers of a dense binary model, or why its datapath has no specification here.
pub fn layers(model: &Model) -> Result<Vec<LayerSpec<'_>>, String> {
    let mut out = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        match layer {
            Layer::Binary(l) if l.conv.is_none() => out.push(LayerSpec {
                index: i + 1,
                layer: l,
                planes: if i == 0 {
                    model.input.encoding.planes()
                } else {
                    1
                },
            }),
            Layer::Binary(_) | Layer::MaxPool(_) => {
                return Err(format!(
                    "layer {} ({}) is a convolution or pool: datapath proofs cover dense models",
                    i + 1,
                    layer.token()
                ))
            }
            Layer::Float(_) => {
                return Err(format!(
                    "layer {} has float weights: only binary models compile",
                    i + 1
                ))
            }
        }
    }
    match out.last() {
        Some(l) if l.is_scores() => Ok(out),
        _ => Err("the model does not end in a scores layer".into()),
    }
}

/// A signed decimal literal of `width` bits (`-33'sd5`, `33'sd7`).
fn signed_lit(width: u32, v: i64) -> String {
    if v < 0 {
        format!("-{width}'sd{}", v.unsigned_abs())
    } else {
        format!("{width}'sd{v}")
    }
}

/// Neuron `i`'s weights as a `inputs`-bit hex literal, input `j` in bit `j`.
fn weight_literal(l: &BinaryLayer, i: usize) -> String {
    let n = l.inputs;
    let digits = n.div_ceil(4);
    let mut s = String::with_capacity(digits + 8);
    s.push_str(&format!("{n}'h"));
    for d in (0..digits).rev() {
        let mut v = 0u32;
        for b in 0..4 {
            let j = d * 4 + b;
            if j < n && l.weights.get(i, j) {
                v |= 1 << b;
            }
        }
        s.push(char::from_digit(v, 16).expect("a nibble is a hex digit"));
    }
    s
}

/// Writes the ones of `v[lo +: n]` as wires named `{name}_*`, counted by halves (the first
/// `2^(ceil(log2 n) - 1)` bits, then the rest), each addition exactly as wide as its count:
/// the counts of neighbouring bits are added first, as a folded unit's balanced tree adds
/// them, so an equivalence prover meets the same structure on both sides. The tree is written
/// out in one module (no module per node) so that Yosys elaborates and flattens a sum as one
/// cell list; returns the expression of the count and its width.
pub(crate) fn popcount_tree(
    out: &mut String,
    v: &str,
    lo: usize,
    n: usize,
    name: &str,
) -> (String, u32) {
    if n == 1 {
        return (format!("{v}[{lo}]"), 1);
    }
    let h = popcount_split(n);
    let (a, _) = popcount_tree(out, v, lo, h, &format!("{name}l"));
    let (b, _) = popcount_tree(out, v, lo + h, n - h, &format!("{name}h"));
    let w = bits_for(n as u64);
    out.push_str(&format!("    wire [{}:0] {name} = {a} + {b};\n", w - 1));
    (name.to_string(), w)
}

/// Where [`popcount_tree`] splits a count of `n >= 2` bits: the largest power of two below `n`.
pub(crate) fn popcount_split(n: usize) -> usize {
    1usize << (usize::BITS - (n - 1).leading_zeros() - 1)
}

/// The combinational module of one layer, counting each neuron's sum flat (`l{N}_spec`).
pub fn layer_module(ls: &LayerSpec) -> String {
    layer_body(ls, None)
}

/// The module of one layer whose neurons count their sum in chunks of `simd` inputs, added in
/// the order a folded unit adds them: plane by plane, chunk by chunk, each chunk's popcount
/// shifted by its plane, from the left (`l{N}_spec_chunked`). The same function as
/// [`layer_module`]'s, written so that a prover meets the folding's additions one for one.
pub fn chunked_layer_module(ls: &LayerSpec, simd: usize) -> Result<String, String> {
    check_chunk(ls, simd)?;
    Ok(layer_body(ls, Some(simd)))
}

/// Chunks of `simd` inputs must cut layer `ls`'s inputs evenly.
fn check_chunk(ls: &LayerSpec, simd: usize) -> Result<(), String> {
    let n = ls.layer.inputs;
    if simd == 0 || !n.is_multiple_of(simd) {
        return Err(format!(
            "layer {}: chunks of {simd} inputs do not divide its {n} inputs",
            ls.index
        ));
    }
    Ok(())
}

/// The name of layer `ls`'s module that counts in chunks.
pub fn chunked_name(ls: &LayerSpec) -> String {
    format!("{}_chunked", ls.name())
}

/// The start of every sum module's name ([`sum_name`]): a prover's script selects them by it.
pub const SUM_PREFIX: &str = "spec_sum_";

/// The module that adds one neuron's sum from its XNOR bits `v` (plane `k` in bits
/// `k * inputs ..`) for layer `ls`: `spec_sum_{inputs}x{planes}` counts flat,
/// `..._by{chunk}` in chunks of `chunk` inputs. It holds no weights, so one proof that the two
/// agree on every `v` covers every neuron of every layer of that shape.
pub fn sum_name(ls: &LayerSpec, chunk: Option<usize>) -> String {
    let base = format!("{SUM_PREFIX}{}x{}", ls.layer.inputs, ls.planes);
    match chunk {
        Some(c) => format!("{base}_by{c}"),
        None => base,
    }
}

/// The sum module [`sum_name`] names.
pub fn sum_module(ls: &LayerSpec, chunk: Option<usize>) -> String {
    let (n, sw) = (ls.layer.inputs, ls.sum_width());
    let mut v = format!(
        "// The weighted popcount of {} plane(s) of {n} bits{}.\n\
         module {} (\n    input  wire [{}:0] v,\n    output wire [{}:0] s\n);\n",
        ls.planes,
        match chunk {
            Some(c) => format!(", added chunk by chunk ({c} bits a chunk, plane by plane)"),
            None => String::new(),
        },
        sum_name(ls, chunk),
        ls.in_width() - 1,
        sw - 1
    );
    let mut terms = Vec::new();
    let simd = chunk.unwrap_or(n);
    for k in 0..ls.planes {
        for c in 0..n / simd {
            let lo = k * n + c * simd;
            let name = match chunk {
                Some(_) => format!("c{k}_{c}"),
                None => format!("c{k}"),
            };
            let (count, _) = popcount_tree(&mut v, "v", lo, simd, &name);
            terms.push(shifted(&count, k));
        }
    }
    // `+` is left-associative: the terms are added in the order listed, each in the sum's
    // width (the context widens them before the shift).
    v.push_str(&format!(
        "    assign s = {};\nendmodule\n",
        terms.join(" + ")
    ));
    v
}

/// The module of outputs `outputs` of layer `ls` alone (flat, or counting in chunks of
/// `chunk` inputs), named `{layer module}_{start}_{end}`: output `i` in `y`'s bit (or score)
/// `i - start`. A proof of some of a layer's outputs reads this module, so that Yosys never
/// elaborates the other neurons' sums only to remove them again. It instantiates the sum
/// module [`sum_name`] names, which [`spec_file`] writes.
pub fn layer_part_module(
    ls: &LayerSpec,
    chunk: Option<usize>,
    outputs: std::ops::Range<usize>,
) -> Result<(String, String), String> {
    if let Some(simd) = chunk {
        check_chunk(ls, simd)?;
    }
    if outputs.is_empty() || outputs.end > ls.layer.outputs {
        return Err(format!(
            "layer {}: outputs {}..{} are not a part of its {} outputs",
            ls.index, outputs.start, outputs.end, ls.layer.outputs
        ));
    }
    let name = format!(
        "{}_{}_{}",
        match chunk {
            Some(_) => chunked_name(ls),
            None => ls.name(),
        },
        outputs.start,
        outputs.end
    );
    let text = layer_text(ls, chunk, outputs, &name);
    Ok((name, text))
}

/// A layer module, flat (`chunk` none) or counting in chunks of `chunk` inputs: the two differ
/// only in the sum module they instantiate.
fn layer_body(ls: &LayerSpec, chunk: Option<usize>) -> String {
    let name = match chunk {
        Some(_) => chunked_name(ls),
        None => ls.name(),
    };
    layer_text(ls, chunk, 0..ls.layer.outputs, &name)
}

/// The module `name` of layer `ls`'s outputs `outputs` (all of them in the layer's modules).
fn layer_text(
    ls: &LayerSpec,
    chunk: Option<usize>,
    outputs: std::ops::Range<usize>,
    name: &str,
) -> String {
    let l = ls.layer;
    let sw = ls.sum_width();
    let first = outputs.start;
    let per_output = if ls.is_scores() {
        SCORE_BITS as usize
    } else {
        1
    };
    let mut v = format!(
        "// Layer {}: {} inputs x {} plane(s) -> {} {}{}, unfolded.\n\
         module {name} (\n    input  wire [{}:0] x,\n    output wire [{}:0] y\n);\n",
        ls.index,
        l.inputs,
        ls.planes,
        l.outputs,
        if ls.is_scores() {
            "signed 32-bit scores"
        } else {
            "threshold bits"
        },
        if outputs.len() == l.outputs {
            String::new()
        } else {
            format!(
                " (outputs {}..{} only, output {first} in y's first)",
                outputs.start, outputs.end
            )
        },
        ls.in_width() - 1,
        outputs.len() * per_output - 1
    );
    let sum = sum_name(ls, chunk);
    for i in outputs {
        // Where output i sits in y.
        let o = i - first;
        let w = weight_literal(l, i);
        // The XNOR of every plane with the neuron's weights, then its weighted popcount.
        v.push_str(&format!(
            "    wire [{}:0] s{i};\n    {sum} a{i} (.v(~(x ^ {{{}{{{w}}}}})), .s(s{i}));\n",
            sw - 1,
            ls.planes
        ));
        // Compared and scaled as signed integers one bit wider than the sum, then 32 bits.
        let s = format!("$signed({{1'b0, s{i}}})");
        match &l.activation {
            Activation::Threshold { thresholds, invert } => {
                let t = i64::from(thresholds[i]);
                // The threshold as a (sw + 1)-bit signed number; one outside that range
                // decides the bit alone.
                let lo = -(1i64 << sw);
                let hi = (1i64 << sw) - 1;
                let cmp = if t <= lo {
                    "1'b1".to_string()
                } else if t > hi {
                    "1'b0".to_string()
                } else {
                    format!("({s} >= {})", signed_lit(sw + 1, t))
                };
                v.push_str(&format!(
                    "    assign y[{o}] = {cmp} ^ 1'b{};\n",
                    u8::from(invert[i])
                ));
            }
            Activation::Scores { bias, scale } => {
                let m = scale.get(i).copied().unwrap_or(1);
                v.push_str(&format!(
                    "    assign y[{}:{}] = $signed({{{{{}{{1'b0}}}}, s{i}}}) * {} + {};\n",
                    (o + 1) * SCORE_BITS as usize - 1,
                    o * SCORE_BITS as usize,
                    SCORE_BITS - sw,
                    signed_lit(SCORE_BITS, i64::from(m)),
                    signed_lit(SCORE_BITS, i64::from(bias[i]))
                ));
            }
        }
    }
    v.push_str("endmodule\n");
    v
}

/// A count shifted left by plane `k`.
pub(crate) fn shifted(c: &str, k: usize) -> String {
    if k == 0 {
        c.to_string()
    } else {
        format!("({c} << {k})")
    }
}

/// The network module's name for a top named `top`.
pub fn network_name(top: &str) -> String {
    format!("{top}_spec")
}

/// The name of the network module whose layers count in chunks where [`Chunking`] says so.
pub fn chunked_network_name(top: &str) -> String {
    format!("{top}_spec_chunked")
}

/// Which layers count their sums in chunks, and of how many inputs: layer number (1-based) to
/// chunk width. Layers not named count flat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunking(pub std::collections::BTreeMap<usize, usize>);

impl Chunking {
    /// The chunk width of layer `index`, if it counts in chunks.
    pub fn simd(&self, index: usize) -> Option<usize> {
        self.0.get(&index).copied()
    }
}

/// Bits of the network module's `pixels` input for `pixels` pixels in `format`.
pub fn pixel_width(pixels: usize, format: InputFormat) -> usize {
    pixels * format.bits_per_pixel()
}

/// The whole network: encoding, every layer, argmax. `top` names it (`{top}_spec`); with a
/// `chunking` it is `{top}_spec_chunked` and its layers are the chunked ones where it says so.
pub fn network_module(
    model: &Model,
    top: &str,
    format: InputFormat,
    chunking: Option<&Chunking>,
) -> Result<String, String> {
    let specs = layers(model)?;
    let layer_name = |ls: &LayerSpec| match chunking.and_then(|c| c.simd(ls.index)) {
        Some(_) => chunked_name(ls),
        None => ls.name(),
    };
    let input = &model.input;
    let pixels = input.pixels();
    let pw = pixel_width(pixels, format);
    let last = specs
        .last()
        .expect("layers() returns at least the scores layer");
    let classes = last.layer.outputs;
    let cw = bits_for(classes.saturating_sub(1) as u64).max(1);
    let sb = SCORE_BITS as usize;
    let mut v = format!(
        "// The whole network on one frame of {pixels} pixels ({}), unfolded.\n\
         module {} (\n    input  wire [{}:0] pixels,\n    output reg  [{}:0] class,\n    \
         output wire [{}:0] scores\n);\n",
        match format {
            InputFormat::Pixels => "bytes, pixel j in bits 8j..",
            InputFormat::Packed => "binarised bits, pixel j in bit j",
        },
        match chunking {
            Some(_) => chunked_network_name(top),
            None => network_name(top),
        },
        pw - 1,
        cw - 1,
        classes * sb - 1
    );
    v.push_str(&encoding_lines(model, format, &specs[0], "x1"));
    for (i, ls) in specs.iter().enumerate() {
        let n = ls.index;
        let out = if i + 1 == specs.len() {
            "scores".to_string()
        } else {
            v.push_str(&format!(
                "    wire [{}:0] x{};\n",
                ls.out_width() - 1,
                n + 1
            ));
            format!("x{}", n + 1)
        };
        v.push_str(&format!(
            "    {} u{n} (.x(x{n}), .y({out}));\n",
            layer_name(ls)
        ));
    }
    v.push_str(&argmax_lines(classes));
    v.push_str("endmodule\n");
    Ok(v)
}

/// The wire `x` (layer 1's input) and its assignments from `pixels`: the input encoding, as
/// `Encoding::encode` writes it.
fn encoding_lines(model: &Model, format: InputFormat, first: &LayerSpec, x: &str) -> String {
    let input = &model.input;
    let pixels = input.pixels();
    let mut v = format!("    wire [{}:0] {x};\n", first.in_width() - 1);
    for p in 0..pixels {
        let byte = format!("pixels[{}:{}]", 8 * p + 7, 8 * p);
        match (format, &input.encoding) {
            (InputFormat::Packed, _) => {
                v.push_str(&format!("    assign {x}[{p}] = pixels[{p}];\n"))
            }
            (InputFormat::Pixels, Encoding::Threshold(t)) => {
                v.push_str(&format!("    assign {x}[{p}] = ({byte} >= 9'd{t});\n"))
            }
            (InputFormat::Pixels, Encoding::Thermometer(ts)) => {
                for (k, t) in ts.iter().enumerate() {
                    v.push_str(&format!(
                        "    assign {x}[{}] = ({byte} >= 9'd{t});\n",
                        p * ts.len() + k
                    ));
                }
            }
            (InputFormat::Pixels, Encoding::BitPlanes(planes)) => {
                let shift = u32::from(input.pixel_bits) - u32::from(*planes);
                for k in 0..u32::from(*planes) {
                    v.push_str(&format!(
                        "    assign {x}[{}] = pixels[{}];\n",
                        k as usize * pixels + p,
                        8 * p as u32 + shift + k
                    ));
                }
            }
        }
    }
    v
}

/// The argmax of `scores` into `class` (declared by the module): strictly greater wins, so the
/// lowest index wins a tie.
fn argmax_lines(classes: usize) -> String {
    let cw = bits_for(classes.saturating_sub(1) as u64).max(1);
    let sb = SCORE_BITS as usize;
    let mut v = format!(
        "    reg signed [{}:0] best;\n    always @(*) begin\n        class = {cw}'d0;\n        \
         best = scores[{}:0];\n",
        sb - 1,
        sb - 1
    );
    for c in 1..classes {
        v.push_str(&format!(
            "        if ($signed(scores[{hi}:{lo}]) > best) begin\n            class = {cw}'d{c};\n            \
             best = scores[{hi}:{lo}];\n        end\n",
            hi = (c + 1) * sb - 1,
            lo = c * sb
        ));
    }
    v.push_str("    end\n");
    v
}

/// The name of the module that encodes a frame's pixels into layer 1's input.
pub fn encode_name(top: &str) -> String {
    format!("{top}_spec_encode")
}

/// The input encoding alone, `{top}_spec_encode (pixels, x)`: `x` is layer 1's input, as the
/// network module computes it. The proofs of the network's first hand-over read it.
pub fn encode_module(model: &Model, top: &str, format: InputFormat) -> Result<String, String> {
    let specs = layers(model)?;
    let pw = pixel_width(model.input.pixels(), format);
    let mut v = format!(
        "// The input encoding of one frame, as the network module's first step.\n\
         module {} (\n    input  wire [{}:0] pixels,\n    output wire [{}:0] x\n);\n",
        encode_name(top),
        pw - 1,
        specs[0].in_width() - 1
    );
    v.push_str(&encoding_lines(model, format, &specs[0], "x1"));
    v.push_str("    assign x = x1;\nendmodule\n");
    Ok(v)
}

/// The name of the module of the last layer and the argmax ([`out_module`]).
pub fn out_name(top: &str, chunked: bool) -> String {
    if chunked {
        format!("{top}_spec_out_chunked")
    } else {
        format!("{top}_spec_out")
    }
}

/// The network's last step alone, `{top}_spec_out (x, class, scores)`: the scores layer on its
/// input `x` (the last hidden layer's bits) and the argmax, as the network module computes
/// them; with a `chunking` that names the scores layer, its chunked module. The proof of the
/// network's output reads it on the bits the design itself handed to its last layer.
pub fn out_module(model: &Model, top: &str, chunking: Option<&Chunking>) -> Result<String, String> {
    let specs = layers(model)?;
    let last = specs
        .last()
        .expect("layers() returns at least the scores layer");
    let layer = match chunking.and_then(|c| c.simd(last.index)) {
        Some(_) => chunked_name(last),
        None => last.name(),
    };
    let classes = last.layer.outputs;
    let cw = bits_for(classes.saturating_sub(1) as u64).max(1);
    let mut v = format!(
        "// The scores layer and the argmax on the last hidden layer's bits.\n\
         module {} (\n    input  wire [{}:0] x,\n    output reg  [{}:0] class,\n    \
         output wire [{}:0] scores\n);\n    {layer} u{} (.x(x), .y(scores));\n",
        out_name(top, chunking.is_some()),
        last.in_width() - 1,
        cw - 1,
        classes * SCORE_BITS as usize - 1,
        last.index
    );
    v.push_str(&argmax_lines(classes));
    v.push_str("endmodule\n");
    Ok(v)
}

/// Every layer's module and the network's, as one file; with a non-empty `chunking` also the
/// chunked modules of the layers it names and the network built from them.
pub fn spec_file(
    model: &Model,
    top: &str,
    format: InputFormat,
    chunking: &Chunking,
) -> Result<String, String> {
    let mut v = String::from(
        "// Written by flipchip prove from the model file alone: the reference's integer\n\
         // semantics, combinational (no folding, no pipeline). Not part of the design.\n\n",
    );
    let specs = layers(model)?;
    for ls in &specs {
        if let Some(simd) = chunking.simd(ls.index) {
            check_chunk(ls, simd)?;
        }
    }
    // One sum module per shape, however many layers share it.
    let mut sums = std::collections::BTreeMap::new();
    for ls in &specs {
        for chunk in std::iter::once(None).chain(chunking.simd(ls.index).map(Some)) {
            sums.entry(sum_name(ls, chunk))
                .or_insert_with(|| sum_module(ls, chunk));
        }
    }
    for text in sums.values() {
        v.push_str(text);
        v.push('\n');
    }
    for ls in &specs {
        v.push_str(&layer_module(ls));
        v.push('\n');
        if let Some(simd) = chunking.simd(ls.index) {
            v.push_str(&chunked_layer_module(ls, simd)?);
            v.push('\n');
        }
    }
    v.push_str(&network_module(model, top, format, None)?);
    if !chunking.0.is_empty() {
        v.push('\n');
        v.push_str(&network_module(model, top, format, Some(chunking))?);
    }
    // The network's ends alone, for the proofs of the network cut at its hand-overs.
    v.push('\n');
    v.push_str(&encode_module(model, top, format)?);
    v.push('\n');
    v.push_str(&out_module(model, top, None)?);
    if !chunking.0.is_empty() {
        v.push('\n');
        v.push_str(&out_module(model, top, Some(chunking))?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    //! The specification run in Icarus Verilog on random frames of random models, held to the
    //! software reference layer by layer: a wrong specification would make every proof
    //! against it worthless, so it is checked by simulation, not by reading.

    use super::*;
    use crate::random::{random_model, Rng};
    use flip::bits::{get_bit, words_for};
    use flip::reference::{argmax, binary_scores, layer_sums, threshold_bits};

    /// A hex string (most significant digit first) as packed bits.
    fn parse_hex(s: &str) -> Vec<u64> {
        let digits: Vec<u32> = s
            .chars()
            .rev()
            .map(|c| c.to_digit(16).unwrap_or_else(|| panic!("not hex: {s}")))
            .collect();
        let mut w = vec![0u64; digits.len().div_ceil(16) + 1];
        for (i, d) in digits.iter().enumerate() {
            w[i / 16] |= u64::from(*d) << (4 * (i % 16));
        }
        w
    }

    fn run(dir: &std::path::Path, prog: &str, args: &[&str]) {
        let path = tools::require(&[prog], tools::INSTALL).unwrap_or_else(|e| panic!("{e}"));
        tools::Run::new(prog, path, format!("{prog}.log"))
            .args(args)
            .current_dir(dir)
            .run()
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs `model`'s specification on `frames` in Icarus and checks every layer's output,
    /// the scores and the class against the reference: the flat network, or with a non-empty
    /// `chunking` the network whose layers count in its chunks.
    fn check(
        tag: &str,
        model: &Model,
        format: InputFormat,
        frames: &[Vec<u8>],
        chunking: &Chunking,
    ) {
        let specs = layers(model).unwrap();
        let pixels = model.input.pixels();
        let pw = pixel_width(pixels, format);
        let dir = std::env::temp_dir().join(format!("flipchip-spec-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("spec.v"),
            spec_file(model, "t", format, chunking).unwrap(),
        )
        .unwrap();
        let dut = if chunking.0.is_empty() {
            network_name("t")
        } else {
            chunked_network_name("t")
        };
        // The frames as the network module takes them: bytes, or the packed encoding.
        let mut hex = String::new();
        for f in frames {
            let mut words = vec![0u64; words_for(pw) + 1];
            for (p, &v) in f.iter().enumerate() {
                match format {
                    InputFormat::Pixels => {
                        for b in 0..8 {
                            flip::bits::set_bit(&mut words, 8 * p + b, (v >> b) & 1 == 1);
                        }
                    }
                    InputFormat::Packed => {
                        let Encoding::Threshold(t) = model.input.encoding else {
                            panic!("packed frames need a threshold encoding")
                        };
                        flip::bits::set_bit(&mut words, p, u16::from(v) >= t);
                    }
                }
            }
            hex.push_str(&crate::blocks::hex(&words, pw));
            hex.push('\n');
        }
        std::fs::write(dir.join("frames.hex"), hex).unwrap();
        let mut tb = format!(
            "module tb;\n    reg [{}:0] frames [0:{}];\n    reg [{}:0] pixels;\n    wire [{}:0] class;\n    \
             wire [{}:0] scores;\n    {dut} spec (.pixels(pixels), .class(class), .scores(scores));\n    \
             integer i;\n    initial begin\n        $readmemh(\"frames.hex\", frames);\n        \
             for (i = 0; i < {}; i = i + 1) begin\n            pixels = frames[i];\n            #1;\n",
            pw - 1,
            frames.len() - 1,
            pw - 1,
            bits_for(specs.last().unwrap().layer.outputs as u64 - 1).max(1) - 1,
            specs.last().unwrap().out_width() - 1,
            frames.len()
        );
        for ls in &specs {
            tb.push_str(&format!(
                "            $display(\"%h\", spec.x{});\n",
                ls.index
            ));
        }
        tb.push_str(
            "            $display(\"%h\", scores);\n            $display(\"%0d\", class);\n",
        );
        // The network's ends alone (what the pieces of the network's proof read) agree with
        // the network module on the same frame.
        tb.push_str(
            "            $display(\"%0d\", ex === spec.x1 && oscores === scores && oclass === class);\n",
        );
        tb.push_str("        end\n    end\n");
        let last = specs.last().unwrap();
        tb.push_str(&format!(
            "    wire [{}:0] ex;\n    {} e (.pixels(pixels), .x(ex));\n    wire [{}:0] oclass;\n    \
             wire [{}:0] oscores;\n    {} o (.x(spec.x{}), .class(oclass), .scores(oscores));\n\
             endmodule\n",
            specs[0].in_width() - 1,
            encode_name("t"),
            bits_for(last.layer.outputs as u64 - 1).max(1) - 1,
            last.out_width() - 1,
            out_name("t", !chunking.0.is_empty()),
            last.index
        ));
        std::fs::write(dir.join("tb.v"), tb).unwrap();
        run(
            &dir,
            "iverilog",
            &["-g2005", "-o", "sim.vvp", "tb.v", "spec.v"],
        );
        run(&dir, "vvp", &["-n", "-l", "out.txt", "sim.vvp"]);
        let out = std::fs::read_to_string(dir.join("out.txt")).unwrap();
        let mut lines = out.lines().filter(|l| !l.trim().is_empty());
        for (i, f) in frames.iter().enumerate() {
            // The reference, layer by layer.
            let enc = &model.input.encoding;
            let mut x = vec![0u64; enc.encoded_words(pixels)];
            enc.encode(model.input.pixel_bits, f, &mut x);
            for ls in &specs {
                let got = parse_hex(lines.next().expect("a line per layer input"));
                let w = words_for(ls.layer.inputs);
                for k in 0..ls.planes {
                    for j in 0..ls.layer.inputs {
                        assert_eq!(
                            get_bit(&got, k * ls.layer.inputs + j),
                            get_bit(&x[k * w..], j),
                            "{tag}: frame {i}, layer {} input plane {k} bit {j}; files in {}",
                            ls.index,
                            dir.display()
                        );
                    }
                }
                let mut sums = vec![0i32; ls.layer.outputs];
                layer_sums(&ls.layer.weights, ls.layer.inputs, &x, ls.planes, &mut sums);
                if let Activation::Threshold { thresholds, invert } = &ls.layer.activation {
                    x = vec![0u64; words_for(ls.layer.outputs)];
                    threshold_bits(thresholds, invert, &sums, &mut x);
                }
            }
            let want = binary_scores(model, f);
            let got = parse_hex(lines.next().expect("a scores line"));
            for (c, &s) in want.iter().enumerate() {
                let v = crate::blocks::get_bits(&got, c * SCORE_BITS as usize, 32) as u32 as i32;
                assert_eq!(
                    v,
                    s,
                    "{tag}: frame {i}, class {c}'s score; files in {}",
                    dir.display()
                );
            }
            let class: usize = lines.next().expect("a class line").trim().parse().unwrap();
            assert_eq!(class, argmax(&want), "{tag}: frame {i}'s class");
            assert_eq!(
                lines.next().map(str::trim),
                Some("1"),
                "{tag}: frame {i}: the encoding or the output module differs from the network's; \
                 files in {}",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Random frames, with the extremes (all 0, all 255) first.
    fn frames(rng: &mut Rng, pixels: usize, n: usize) -> Vec<Vec<u8>> {
        let mut f = vec![vec![0u8; pixels], vec![255u8; pixels]];
        while f.len() < n {
            f.push((0..pixels).map(|_| rng.next_u64() as u8).collect());
        }
        f
    }

    #[test]
    fn the_specification_computes_what_the_reference_computes() {
        let mut rng = Rng(11);
        // (tag, pixels, pixel bits, encoding, layer widths, input format)
        type Case<'a> = (&'a str, usize, u8, &'a str, &'a [usize], InputFormat);
        let cases: [Case; 4] = [
            ("planes", 12, 8, "bitplanes:3", &[8, 5], InputFormat::Pixels),
            (
                "planes-5bit",
                9,
                5,
                "bitplanes:4",
                &[6, 4, 3],
                InputFormat::Pixels,
            ),
            (
                "thermometer",
                7,
                8,
                "thermometer:40,128,200",
                &[9, 4],
                InputFormat::Pixels,
            ),
            (
                "packed",
                20,
                8,
                "threshold:100",
                &[7, 6],
                InputFormat::Packed,
            ),
        ];
        for (tag, pixels, bits, enc, widths, format) in cases {
            let model = random_model(&mut rng, pixels, bits, enc.parse().unwrap(), widths);
            let f = frames(&mut rng, pixels, 40);
            check(tag, &model, format, &f, &Chunking::default());
            // Every layer counted in chunks: any divisor of its inputs below them (one input
            // a chunk for a prime count), so that every layer adds at least two chunks.
            let mut chunking = Chunking::default();
            for ls in layers(&model).unwrap() {
                let n = ls.layer.inputs;
                let divisors: Vec<usize> = (1..n).filter(|d| n.is_multiple_of(*d)).collect();
                let simd = divisors[rng.next_u64() as usize % divisors.len()];
                chunking.0.insert(ls.index, simd);
            }
            check(&format!("{tag}-chunked"), &model, format, &f, &chunking);
        }
    }

    #[test]
    fn chunks_must_divide_the_inputs() {
        let model = random_model(&mut Rng(2), 6, 8, Encoding::Threshold(9), &[3, 2]);
        let specs = layers(&model).unwrap();
        let err = chunked_layer_module(&specs[0], 4).unwrap_err();
        assert!(err.contains("layer 1") && err.contains("6 inputs"), "{err}");
        assert!(chunked_layer_module(&specs[0], 3)
            .unwrap()
            .contains("module l1_spec_chunked"));
    }

    #[test]
    fn convolutions_have_no_specification_yet() {
        let mut model = random_model(&mut Rng(1), 4, 8, Encoding::Threshold(9), &[3, 2]);
        if let Layer::Binary(l) = &mut model.layers[0] {
            l.conv = Some(flip::model::Conv {
                height: 2,
                width: 2,
                channels: 1,
                kernel: 1,
            });
        }
        let err = layers(&model).unwrap_err();
        assert!(err.contains("layer 1") && err.contains("dense"), "{err}");
    }
}
