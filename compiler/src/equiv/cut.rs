//! The proof of the whole network, cut at its hand-overs into pieces of a layer's size.
//!
//! A miter of the whole top against the whole specification carries every layer's
//! specification at once (for the digits 64-128-10 model a million and-gates, of which the
//! first layer's 128 neurons are most), where a layer's proof split into parts never holds more
//! than a part's. So the network is proven in pieces, all on the same harness of the whole top
//! (the same frame, fed with the same timing), which also captures each hand-over: the bits
//! layer `N` hands to layer `N + 1` (`y{N}`), taken beat by beat as `l{N+1}_mvtu` accepts them,
//! the first vector only, frozen once complete (`done{N}`).
//!
//! - `net_l{N}_{k}` (or `net_l{N}` unsplit): once `y{N}` is complete, `y{N - 1}` is complete too
//!   and `y{N}`'s bits of part `k` equal layer `N`'s specification of those neurons on
//!   `y{N - 1}` (for `N = 1`, on the encoding of the frame's pixels);
//! - `net_out`: when the top gives its result, `y{L - 1}` is complete and the class and scores
//!   equal the scores layer's specification and the argmax on `y{L - 1}` (plus the network
//!   proof's timing: the result within the latency bound, and only one).
//!
//! Each piece but layer 1's also names a cut: the output port of the unit before the layer it
//! checks (`l{N-1}_mvtu`'s `out_data`; `l{L-1}_mvtu`'s for the output). The proof first runs
//! with that port's driver removed, its net free in every cycle: the unit is then proven for
//! every vector it may be handed, which covers the one the layers before it hand it (every
//! reader of the net sees the free value where it saw the driver's), and the miter holds nothing
//! of those layers' datapath. Only if that
//! is refuted (possibly by a vector those layers never hand on) does the whole top decide.
//!
//! Why together they prove the whole network: the pieces drive the design with the same lines,
//! so each captured `y{N}` and `done{N}` is the same function of the frame and the cycle in every
//! piece, and all cover the same cycles. At the result's cycle `net_out` gives `done{L-1}` and
//! result = out(`y{L-1}`); every part of layer `L - 1` then gives `done{L-2}` and `y{L-1}` =
//! `spec_{L-1}(y{L-2})`, and so on down to `y{1}` = `spec_1(encode(pixels))`: the result is the
//! network's specification of the frame. None of the pieces holds more than one layer's
//! specification (or a part of it); the design before the cut is in each, but as the source of
//! the captured bits, not as a side to be matched.

use super::harness::{
    class_and_scores_asserts, mvtu, network_head, part_name, spec_class_width, timing, Harness,
};
use super::spec::{self, Chunking, LayerSpec, SCORE_BITS};
use crate::blocks::Block;
use crate::ir::{bits_for, Design};

/// One piece of the network's proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Its harness.
    pub harness: Harness,
    /// The layer whose hand-over it checks, or `None` for the output (`net_out`).
    pub layer: Option<usize>,
    /// The outputs of that layer it checks.
    pub outputs: Option<std::ops::Range<usize>>,
    /// Which part of that layer's split (`None`: the layer unsplit, or the output).
    pub part: Option<usize>,
}

/// The pieces of the network's proof of `design` ([`Piece`]): per hidden layer its parts of
/// `per` neurons (0: the whole layer in one), then the output; against the chunked layers where
/// `chunking` names them. `None` for a model without a hidden layer (nothing to cut).
pub fn pieces(
    design: &Design,
    model: &flip::model::Model,
    chunking: &Chunking,
    per: usize,
) -> Result<Option<Vec<Piece>>, String> {
    let specs = spec::layers(model)?;
    if specs.len() < 2 {
        return Ok(None);
    }
    let top = &design.top;
    let mut out = Vec::new();
    for ls in &specs[..specs.len() - 1] {
        let n = ls.layer.outputs;
        let per = if per == 0 { n } else { per.min(n) };
        let parts = n.div_ceil(per);
        for p in 0..parts {
            let range = p * per..((p + 1) * per).min(n);
            let name = part_name(&format!("net_l{}", ls.index), (parts > 1).then_some(p));
            let harness = hand_over(design, model, &specs, ls, range.clone(), &name, chunking)?;
            out.push(Piece {
                harness,
                layer: Some(ls.index),
                outputs: Some(range),
                part: (parts > 1).then_some(p),
            });
        }
    }
    // The output on the last hand-over.
    let last = specs.len() - 1;
    let name = "net_out".to_string();
    let chunked = !chunking.0.is_empty();
    let spec_name = spec::out_name(top, chunked);
    let mut v = format!(
        "// Datapath proof of the network, its output: {top}'s class and scores against \
         {spec_name} on the bits its layer {last} handed on, one frame.\n"
    );
    let bound = network_head(&mut v, design, model, &name)?;
    let taps = captures(&mut v, design, &specs)?;
    let classes = design.argmax().classes;
    v.push_str(&format!(
        "    wire [{}:0] class;\n    wire [{}:0] scores;\n\
         \x20   {spec_name} spec (.x(y{last}), .class(class), .scores(scores));\n",
        spec_class_width(classes) - 1,
        classes * SCORE_BITS as usize - 1,
    ));
    timing(&mut v, "m_valid", bound);
    v.push_str(&format!(
        "    always @(*) if (!init && m_valid) begin\n        assert(done{last});\n"
    ));
    v.push_str(&class_and_scores_asserts(design));
    v.push_str("    end\nendmodule\n");
    out.push(Piece {
        harness: Harness {
            top: name,
            text: v,
            depth: bound + 2,
            design_top: top.clone(),
            taps,
            // What the scores layer is handed: its unit is proven on every vector.
            cuts: vec![(unit_name(design, last)?, "out_data".to_string())],
        },
        layer: None,
        outputs: None,
        part: None,
    });
    Ok(Some(out))
}

/// The harness `name` of hand-over `ls.index`, outputs `range`.
fn hand_over(
    design: &Design,
    model: &flip::model::Model,
    specs: &[LayerSpec],
    ls: &LayerSpec,
    range: std::ops::Range<usize>,
    name: &str,
    chunking: &Chunking,
) -> Result<Harness, String> {
    let n = ls.index;
    let chunk = chunking.simd(n);
    let whole = range.len() == ls.layer.outputs;
    let (spec_name, part_spec) = if whole {
        let name = match chunk {
            Some(_) => spec::chunked_name(ls),
            None => ls.name(),
        };
        (name, None)
    } else {
        let (name, text) = spec::layer_part_module(ls, chunk, range.clone())?;
        (name, Some(text))
    };
    let mut v = format!(
        "// Datapath proof of the network, hand-over {n}: what {top} hands from layer {n} to \
         layer {} (outputs {}..{}) against {spec_name} on {}, one frame.\n",
        n + 1,
        range.start,
        range.end,
        if n == 1 {
            "the frame's encoding".to_string()
        } else {
            format!("what it handed from layer {} to layer {n}", n - 1)
        },
        top = design.top,
    );
    network_head(&mut v, design, model, name)?;
    let taps = captures(&mut v, design, specs)?;
    let input = if n == 1 {
        v.push_str(&format!(
            "    wire [{}:0] x1;\n    {} enc (.pixels(pixels), .x(x1));\n",
            ls.in_width() - 1,
            spec::encode_name(&design.top)
        ));
        "x1".to_string()
    } else {
        format!("y{}", n - 1)
    };
    v.push_str(&format!(
        "    wire [{}:0] want;\n    {spec_name} spec (.x({input}), .y(want));\n\
         \x20   always @(*) if (!init && done{n}) begin\n",
        range.len() - 1
    ));
    if n > 1 {
        v.push_str(&format!("        assert(done{});\n", n - 1));
    }
    for i in range.clone() {
        v.push_str(&format!(
            "        assert(y{n}[{i}] == want[{}]);\n",
            i - range.start
        ));
    }
    v.push_str("    end\nendmodule\n");
    if let Some(text) = part_spec {
        v.push_str("\n// The specification of this part's outputs, from the model file alone.\n");
        v.push_str(&text);
    }
    Ok(Harness {
        top: name.to_string(),
        text: v,
        depth: design.latency_cycles() + super::harness::SLACK + 2,
        design_top: design.top.clone(),
        taps,
        // What layer N is handed by layer N - 1: its unit is proven on every vector.
        cuts: if n > 1 {
            vec![(unit_name(design, n - 1)?, "out_data".to_string())]
        } else {
            Vec::new()
        },
    })
}

/// The name of layer `n`'s unit (its instance in the top).
fn unit_name(design: &Design, n: usize) -> Result<String, String> {
    mvtu(design, n)
        .map(|m| m.name())
        .ok_or_else(|| format!("the design has no MVTU for layer {n}"))
}

/// Captures every hand-over of the top into `y{N}` / `done{N}` (see the module's docs) and
/// returns the taps that drive them; a capture no assertion reads is dropped by Yosys.
fn captures(
    v: &mut String,
    design: &Design,
    specs: &[LayerSpec],
) -> Result<Vec<(String, String)>, String> {
    let mut taps = Vec::new();
    for ls in &specs[..specs.len() - 1] {
        let n = ls.index;
        let m = mvtu(design, n + 1)
            .ok_or_else(|| format!("the design has no MVTU for layer {}", n + 1))?;
        let (planes, inputs, simd) = (m.planes, m.inputs, m.simd);
        let beats = if m.input_ram() { m.synapse_folds() } else { 1 };
        let bw = if m.input_ram() {
            planes * simd
        } else {
            inputs * planes
        };
        if m.in_width() != bw || inputs * planes != ls.out_width() {
            return Err(format!(
                "{}: an input of {} bits a beat in {beats} beats does not carry layer {n}'s {} \
                 bits",
                m.name(),
                m.in_width(),
                ls.out_width()
            ));
        }
        let cb = bits_for(beats as u64).max(1);
        let inst = format!("dut.{}", m.name());
        v.push_str(&format!(
            "    // Hand-over {n}: layer {n}'s bits as {} takes them, the first vector only.\n\
             \x20   wire h{n}_valid;\n    wire h{n}_ready;\n    wire [{}:0] h{n}_data;\n\
             \x20   reg [{}:0] y{n};\n    reg [{}:0] b{n} = {cb}'d0;\n    reg done{n} = 1'b0;\n\
             \x20   always @(posedge clk) if (!init && !done{n} && h{n}_valid && h{n}_ready) begin\n\
             \x20       case (b{n})\n",
            m.name(),
            bw - 1,
            inputs * planes - 1,
            cb - 1
        ));
        for sf in 0..beats {
            v.push_str(&format!("            {cb}'d{sf}: begin\n"));
            for k in 0..planes {
                let (at, w) = if m.input_ram() {
                    (k * inputs + sf * simd, simd)
                } else {
                    (k * inputs, inputs)
                };
                v.push_str(&format!(
                    "                y{n}[{at} +: {w}] <= h{n}_data[{} +: {w}];\n",
                    k * w
                ));
            }
            v.push_str("            end\n");
        }
        v.push_str(&format!(
            "            default: ;\n        endcase\n        b{n} <= b{n} + {cb}'d1;\n        \
             if (b{n} == {cb}'d{}) done{n} <= 1'b1;\n    end\n",
            beats - 1
        ));
        for port in ["valid", "ready", "data"] {
            taps.push((format!("h{n}_{port}"), format!("{inst}.in_{port}")));
        }
    }
    Ok(taps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{random_model, Rng};

    /// The pieces of a 2-hidden-layer network: each hand-over split into parts, every piece on
    /// the same lines that drive the top and capture the hand-overs, and the output piece with
    /// no layer's specification but the last.
    #[test]
    fn the_network_is_cut_at_every_hand_over_into_parts() {
        let model = random_model(
            &mut Rng(4),
            16,
            8,
            "bitplanes:2".parse().unwrap(),
            &[6, 4, 3],
        );
        let design = crate::equiv::compile_auto(&model);
        let specs = spec::layers(&model).unwrap();
        let chunking = super::super::harness::chunking(&design, &specs);
        let cut = pieces(&design, &model, &chunking, 4).unwrap().unwrap();
        let pieces = &cut;
        let names: Vec<&str> = pieces.iter().map(|p| p.harness.top.as_str()).collect();
        assert_eq!(names, ["net_l1_0", "net_l1_1", "net_l2", "net_out"]);
        assert_eq!(pieces[1].outputs, Some(4..6));
        assert_eq!(pieces[2].layer, Some(2));
        // The same drive and capture in every piece: the text up to the specification.
        let common = |h: &Harness| {
            let t = &h.text;
            let from = t.find("    input wire clk").unwrap();
            let to = t.rfind("done2 <= 1'b1;").unwrap();
            t[from..to].to_string()
        };
        for p in &pieces[1..] {
            assert_eq!(common(&p.harness), common(&pieces[0].harness));
            assert_eq!(p.harness.depth, pieces[0].harness.depth);
            assert_eq!(p.harness.taps, pieces[0].harness.taps);
        }
        assert!(pieces[0]
            .harness
            .taps
            .contains(&("h1_data".to_string(), "dut.l2_mvtu.in_data".to_string())));
        // A piece may cut the input of the layer it checks, never anything else: layer 1's
        // input is the encoding of the frame, with nothing to cut.
        assert!(pieces[0].harness.cuts.is_empty());
        let cut = |m: &str| vec![(m.to_string(), "out_data".to_string())];
        assert_eq!(pieces[2].harness.cuts, cut("l1_mvtu"));
        assert_eq!(pieces[3].harness.cuts, cut("l2_mvtu"));
        // Layer 1's part reads the encoding; layer 2 reads the captured layer 1; the output
        // reads the captured layer 2 and no layer's module of its own.
        let t1 = &pieces[0].harness.text;
        assert!(t1.contains(".x(x1), .y(want)") && t1.contains("assert(y1[3] == want[3]);"));
        let t2 = &pieces[2].harness.text;
        assert!(
            t2.contains(".x(y1), .y(want)") && t2.contains("assert(done1);"),
            "{t2}"
        );
        let out = &pieces[3].harness.text;
        assert!(out.contains(".x(y2), .class(class)") && out.contains("assert(done2);"));
        assert!(
            !out.contains("l1_spec") && !out.contains("l2_spec"),
            "{out}"
        );
        // One hidden layer less: nothing to cut below one.
        let single = random_model(&mut Rng(4), 16, 8, "bitplanes:2".parse().unwrap(), &[3]);
        let d = crate::equiv::compile_auto(&single);
        assert_eq!(
            super::pieces(&d, &single, &Chunking::default(), 0).unwrap(),
            None
        );
    }
}
