//! The miters of a datapath proof: a folded unit (or the whole top) and its specification on the
//! same input, with assertions that their results agree.
//!
//! Each harness drives its design with one frame from reset: the frame is an `anyconst` vector
//! (the prover picks any value, the same in every cycle), handed in with the design's own input
//! protocol as fast as the design takes it, with the output always ready. The assertions say
//! that the one result the design gives equals the specification's on that vector, that it
//! comes within the design's latency (plus a small slack), and that no second result follows.
//! A bounded check of [`Harness::depth`] cycles covers the whole frame: passing it proves the
//! datapath for every input vector of a frame after reset.

use super::spec::{self, Chunking, LayerSpec, SCORE_BITS};
use crate::blocks::Block;
use crate::ir::{bits_for, Design, Mvtu};

/// Cycles beyond the design's latency that a result may take in a harness (the handshakes
/// around a frame that nothing stalls).
pub(super) const SLACK: u64 = 4;

/// One harness: its top module and how deep the bounded check must go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Harness {
    /// Name of the harness module (the prover's top).
    pub top: String,
    /// The Verilog of the harness module.
    pub text: String,
    /// Cycles the bounded check covers: reset, the frame, the latency and the slack, and one
    /// cycle after the bound.
    pub depth: u64,
    /// The design modules it instantiates (their files are read with it).
    pub design_top: String,
    /// Wires of the harness driven from inside the design once it is flattened: (harness
    /// wire, the design's net by its flattened name, `dut.<instance>.<port>`). Verilog-2005
    /// has no reference into an instance that Yosys reads, so every script that reads the
    /// harness connects these after `flatten` ([`Harness::tap_commands`]); until then they
    /// are undriven.
    pub taps: Vec<(String, String)>,
    /// Output ports of design modules, as (module, port), that a proof may cut: their drivers
    /// removed inside the module before it is flattened, the port's net is free in every cycle
    /// for all its readers alike. What holds for every value of a cut net holds for the value
    /// its driver gives, so a proof with cuts proves the harness; a refutation with cuts may be
    /// spurious ([`Harness::cut_commands`]).
    pub cuts: Vec<(String, String)>,
}

impl Harness {
    /// The Yosys commands that drive the harness's taps, for a script that has just flattened
    /// it (empty without taps).
    pub fn tap_commands(&self) -> String {
        if self.taps.is_empty() {
            return String::new();
        }
        let mut v = format!("cd {}\n", self.top);
        for (wire, net) in &self.taps {
            v.push_str(&format!("connect -set {wire} {net}\n"));
        }
        v.push_str("cd ..\n");
        v
    }

    /// The Yosys commands that keep the design's instance `dut` through a script's `prep`, for
    /// a harness with taps (empty otherwise): until the taps are connected after `flatten`, no
    /// output of `dut` may be read, and `prep`'s clean-up would remove the instance.
    pub fn keep_commands(&self) -> String {
        if self.taps.is_empty() {
            return String::new();
        }
        format!(
            "hierarchy -top {top}\nsetattr -set keep 1 {top}/dut\n",
            top = self.top
        )
    }

    /// The Yosys commands that cut the harness's cut ports, for a script before its `flatten`.
    /// Each is cut inside its module: there the port has no alias but the module's own wires,
    /// so after `flatten` the net it drove (the port, the top's wire, the next unit's input
    /// and any tap) is one net without a driver, one free input. (Cut after `flatten`,
    /// `connect -unset` disconnects every alias of the net from the others.)
    pub fn cut_commands(&self) -> String {
        let mut v = String::new();
        for (module, port) in &self.cuts {
            v.push_str(&format!("cd {module}\nconnect -unset {port}\ncd ..\n"));
        }
        v
    }
}

/// The MVTU that computes layer `index`, if the design has one.
pub fn mvtu(design: &Design, index: usize) -> Option<&Mvtu> {
    design.mvtus().find(|m| m.index == index)
}

/// Checks that `m` computes what `ls` specifies (same shape), so that a harness cannot compare
/// unrelated layers.
pub(super) fn same_shape(m: &Mvtu, ls: &LayerSpec) -> Result<(), String> {
    if m.is_conv()
        || m.inputs != ls.layer.inputs
        || m.outputs != ls.layer.outputs
        || m.planes != ls.planes
        || m.is_scores() != ls.is_scores()
    {
        return Err(format!(
            "the design's {} ({} inputs x {} planes -> {}) is not the model's layer {} ({} x {} -> {})",
            m.name(),
            m.inputs,
            m.planes,
            m.outputs,
            ls.index,
            ls.layer.inputs,
            ls.planes,
            ls.layer.outputs
        ));
    }
    if m.is_loaded() {
        return Err(format!(
            "{} loads its weights after power-up; datapath proofs cover weight ROMs",
            m.name()
        ));
    }
    if m.frames_per_read() > 1 {
        return Err(format!(
            "{} works on {} frames per weight read; datapath proofs cover one frame at a time",
            m.name(),
            m.mmv
        ));
    }
    Ok(())
}

/// The frame's register and the reset cycle, declared before anything reads them.
pub(super) fn frame(v: &mut String, input_bits: usize, vector: &str, beats: usize) {
    let bb = bits_for(beats as u64).max(1);
    v.push_str(&format!(
        "    input wire [{ib1}:0] {vector}_in\n);\n\
         \x20   // The frame: any value, taken from a free input in the reset cycle and held.\n\
         \x20   reg [{ib1}:0] {vector};\n\
         \x20   reg init = 1'b1;\n\
         \x20   always @(posedge clk) begin\n\
         \x20       init <= 1'b0;\n\
         \x20       if (init) {vector} <= {vector}_in;\n\
         \x20   end\n\
         \x20   // Beats handed in so far; the frame has {beats}.\n\
         \x20   reg [{}:0] fed = {bb}'d0;\n",
        bb - 1,
        ib1 = input_bits - 1,
    ));
}

/// The checks every harness shares: the result comes within the latency bound, and only one.
pub(super) fn timing(v: &mut String, out_valid: &str, bound: u64) {
    v.push_str(&format!(
        "    reg [15:0] cycles = 16'd0;\n\
         \x20   reg done = 1'b0;\n\
         \x20   always @(posedge clk) begin\n\
         \x20       if (!init && cycles != 16'hffff) cycles <= cycles + 16'd1;\n\
         \x20       if (!init && {out_valid}) done <= 1'b1;\n\
         \x20   end\n\
         \x20   // The result within the latency bound ({bound} cycles after reset), and only one.\n\
         \x20   always @(*) if (!init) begin\n\
         \x20       assert(done || {out_valid} || cycles <= 16'd{bound});\n\
         \x20       assert(!(done && {out_valid}));\n\
         \x20   end\n",
    ));
}

/// The layers whose MVTU in `design` adds each neuron's sum over two or more SIMD chunks, with
/// their SIMD: the layers whose proofs go through the chunked specification.
pub fn chunking(design: &Design, specs: &[LayerSpec]) -> Chunking {
    Chunking(
        specs
            .iter()
            .filter_map(|ls| mvtu(design, ls.index))
            .filter(|m| m.synapse_folds() >= 2)
            .map(|m| (m.index, m.simd))
            .collect(),
    )
}

/// The harness of layer `ls` against its MVTU in `design`, asserting the outputs `outputs`
/// (neurons or classes; all of them for the whole layer): against the flat specification, or
/// with `chunked` against the one that counts in the unit's SIMD chunks. The module is named
/// `l{N}_equiv` with a suffix `_{part}` when `part` is given.
pub fn layer(
    design: &Design,
    ls: &LayerSpec,
    outputs: std::ops::Range<usize>,
    part: Option<usize>,
    chunked: bool,
) -> Result<Harness, String> {
    let m = mvtu(design, ls.index)
        .ok_or_else(|| format!("the design has no MVTU for layer {}", ls.index))?;
    same_shape(m, ls)?;
    let n = m.name();
    let top = part_name(&format!("l{}_equiv", ls.index), part);
    // A part of the layer reads a specification of its own outputs alone (written below the
    // harness), whose y holds output `outputs.start` first.
    let whole = outputs.len() == ls.layer.outputs;
    let (spec_name, part_spec) = if whole {
        let name = if chunked {
            spec::chunked_name(ls)
        } else {
            ls.name()
        };
        (name, None)
    } else {
        let chunk = chunked.then_some(m.simd);
        let (name, text) = spec::layer_part_module(ls, chunk, outputs.clone())?;
        (name, Some(text))
    };
    let first = outputs.start;
    // A chunked result's last chunk comes `beats - 1` cycles after its first.
    let bound = m.latency() + SLACK + m.out_beats() as u64 - 1;
    let (iw, ow) = (ls.in_width(), m.out_width());
    let beats = if m.input_ram() { m.synapse_folds() } else { 1 };
    let mut v = format!(
        "// Datapath proof of layer {}: {n} (PE {}, SIMD {}) against {} on one frame.\n\
         module {top} (\n    input wire clk,\n",
        ls.index, m.pe, m.simd, spec_name
    );
    frame(&mut v, iw, "x", beats);
    let data = if m.input_ram() {
        // Chunk sf of every plane per beat: plane k's SIMD bits in bits k * SIMD.
        let parts: Vec<String> = (0..m.planes)
            .rev()
            .map(|k| format!("chunk{k}[{}:0]", m.simd - 1))
            .collect();
        format!("{{{}}}", parts.join(", "))
    } else {
        "x".to_string()
    };
    v.push_str(&format!(
        "    wire in_valid = !init && fed != {bb}'d{beats};\n\
{chunks}\
         \x20   wire in_ready;\n\
         \x20   wire [{}:0] in_data = {data};\n\
         \x20   always @(posedge clk) if (in_valid && in_ready) fed <= fed + {bb}'d1;\n\
         \x20   wire out_valid;\n    wire [{}:0] out_data;\n\
         \x20   {n} dut (\n        .clk(clk),\n        .rst(init),\n        .in_valid(in_valid),\n        \
         .in_ready(in_ready),\n        .in_data(in_data),\n        .out_valid(out_valid),\n        \
         .out_ready(1'b1),\n        .out_data(out_data)\n    );\n\
         \x20   wire [{}:0] y;\n    {} spec (.x(x), .y(y));\n",
        m.in_width() - 1,
        ow - 1,
        if whole {
            ls.out_width()
        } else {
            outputs.len() * if ls.is_scores() { SCORE_BITS as usize } else { 1 }
        } - 1,
        spec_name,
        bb = bits_for(beats as u64).max(1),
        chunks = (0..if m.input_ram() { m.planes } else { 0 })
            .map(|k| chunk_select(k, m.inputs, m.simd, beats, bits_for(beats as u64).max(1)))
            .collect::<String>(),
    ));
    // A chunked result is gathered chunk by chunk (the output is always ready, so each cycle
    // of out_valid hands one on) and checked with its last chunk.
    let (valid, data) = if m.chunked_output() {
        let (beats, c) = (m.out_beats(), m.out_chunk);
        let cw = bits_for(beats as u64 - 1);
        v.push_str(&format!(
            "    reg [{}:0] got;\n    reg [{}:0] oc = {cw}'d0;\n\
             \x20   always @(posedge clk) if (!init && out_valid) begin\n\
             \x20       got[oc*{c} +: {c}] <= out_data;\n\
             \x20       oc <= (oc == {cw}'d{}) ? {cw}'d0 : oc + {cw}'d1;\n\
             \x20   end\n\
             \x20   wire res_valid = out_valid && oc == {cw}'d{};\n\
             \x20   wire [{}:0] res = {{out_data, got[{}:0]}};\n",
            m.outputs - 1,
            cw - 1,
            beats - 1,
            beats - 1,
            m.outputs - 1,
            (beats - 1) * c - 1
        ));
        ("res_valid", "res")
    } else {
        ("out_valid", "out_data")
    };
    timing(&mut v, valid, bound);
    v.push_str(&format!("    always @(*) if (!init && {valid}) begin\n"));
    let ew = m.element_width() as usize;
    for i in outputs {
        // Output i's place in the specification's y.
        let o = if whole { i } else { i - first };
        if ls.is_scores() {
            v.push_str(&format!(
                "        assert({} == y[{}:{}]);\n",
                sign_extend(data, i * ew, ew),
                (o + 1) * SCORE_BITS as usize - 1,
                o * SCORE_BITS as usize
            ));
        } else {
            v.push_str(&format!("        assert({data}[{i}] == y[{o}]);\n"));
        }
    }
    v.push_str("    end\nendmodule\n");
    if let Some(text) = part_spec {
        v.push_str("\n// The specification of this part's outputs, from the model file alone.\n");
        v.push_str(&text);
    }
    Ok(Harness {
        top,
        text: v,
        depth: bound + 2,
        design_top: n,
        taps: Vec::new(),
        cuts: Vec::new(),
    })
}

/// Plane `k`'s chunk of the frame `x` for beat `fed` (`bb` bits): `simd` bits a chunk, planes of
/// `inputs` bits; zeros once every beat is in. A case over the beats, not a shift of the whole
/// frame by `fed`: for Fashion-MNIST's first layer (3,136 frame bits) the shift was a barrel
/// shifter of 3,152 bits per plane, whatever part of the layer was proven.
fn chunk_select(k: usize, inputs: usize, simd: usize, beats: usize, bb: u32) -> String {
    let mut v = format!(
        "    reg [{}:0] chunk{k};\n    always @(*) begin\n        chunk{k} = {simd}'d0;\n        \
         case (fed)\n",
        simd - 1
    );
    for sf in 0..beats {
        v.push_str(&format!(
            "            {bb}'d{sf}: chunk{k} = x[{} +: {simd}];\n",
            k * inputs + sf * simd
        ));
    }
    v.push_str("        endcase\n    end\n");
    v
}

/// `base`, with a suffix `_{part}` when `part` is given.
pub(super) fn part_name(base: &str, part: Option<usize>) -> String {
    match part {
        Some(p) => format!("{base}_{p}"),
        None => base.to_string(),
    }
}

/// The lemma that a neuron's sum of layer `ls` added in chunks of `simd` inputs equals the sum
/// counted flat, for every vector of XNOR bits: a miter of the two sum modules
/// ([`spec::sum_name`]), named `l{N}_lemma`. The two layer modules differ only in which of
/// these they instantiate (the XNOR with the weights and the activation are the same lines),
/// so with this lemma a proof against the chunked layer is one against the flat layer, for
/// every neuron at once.
pub fn lemma(ls: &LayerSpec, simd: usize) -> Harness {
    let top = format!("l{}_lemma", ls.index);
    let (flat, chunked) = (spec::sum_name(ls, None), spec::sum_name(ls, Some(simd)));
    let (iw, sw) = (ls.in_width(), ls.sum_width());
    let mut v = format!(
        "// Lemma of layer {}: {chunked} equals {flat}, for every input.\n\
         module {top} (\n    input wire clk,\n",
        ls.index
    );
    // The vector taken in the reset cycle and checked in the next: the bounded check's engine
    // works on sequential circuits only.
    frame(&mut v, iw, "v", 1);
    v.push_str(&format!(
        "    wire [{s1}:0] s_flat;\n    wire [{s1}:0] s_chunked;\n\
         \x20   {flat} flat (.v(v), .s(s_flat));\n    {chunked} chunked (.v(v), .s(s_chunked));\n\
         \x20   always @(*) if (!init) assert(s_chunked == s_flat);\n",
        s1 = sw - 1,
    ));
    // Without them ABC's sweep did not decide the chain of a 256-input layer in chunks of 4.
    let (steps, pairs) = super::steps::lemma_steps(ls, simd, "v");
    v.push_str(&steps);
    v.push_str("    always @(*) if (!init) begin\n");
    for (running, stone) in &pairs {
        v.push_str(&format!("        assert({running} == {stone});\n"));
    }
    v.push_str("    end\nendmodule\n");
    Harness {
        top,
        text: v,
        // The reset cycle, the check, and one more as for every harness.
        depth: 3,
        design_top: chunked,
        taps: Vec::new(),
        cuts: Vec::new(),
    }
}

/// `{bits}[at +: w]` sign-extended to a score of the specification.
pub(super) fn sign_extend(bits: &str, at: usize, w: usize) -> String {
    let msb = format!("{bits}[{}]", at + w - 1);
    let field = format!("{bits}[{}:{at}]", at + w - 1);
    match (SCORE_BITS as usize).checked_sub(w) {
        Some(0) => field,
        Some(pad) => format!("{{{{{pad}{{{msb}}}}}, {field}}}"),
        // Wider than a specification's score: compare the value's low bits and require the
        // high ones to be its sign.
        None => format!("{bits}[{}:{at}]", at + SCORE_BITS as usize - 1),
    }
}

/// The harness of the whole top against the network's specification: class and every score.
/// With `chunked`, against the network whose layers count in the design's SIMD chunks where
/// the design adds two or more ([`chunking`]).
pub fn network(
    design: &Design,
    model: &flip::model::Model,
    chunked: bool,
) -> Result<Harness, String> {
    let top = &design.top;
    let name = format!("{top}_equiv");
    let spec_name = if chunked {
        spec::chunked_network_name(top)
    } else {
        spec::network_name(top)
    };
    let mut v = format!(
        "// Datapath proof of the whole network: {top} against {spec_name} on one frame.\n"
    );
    let bound = network_head(&mut v, design, model, &name)?;
    let classes = design.argmax().classes;
    v.push_str(&format!(
        "    wire [{}:0] class;\n    wire [{}:0] scores;\n\
         \x20   {spec_name} spec (.pixels(pixels), .class(class), .scores(scores));\n",
        spec_class_width(classes) - 1,
        classes * SCORE_BITS as usize - 1,
    ));
    timing(&mut v, "m_valid", bound);
    v.push_str("    always @(*) if (!init && m_valid) begin\n");
    v.push_str(&class_and_scores_asserts(design));
    v.push_str("    end\nendmodule\n");
    Ok(Harness {
        top: name,
        text: v,
        depth: bound + 2,
        design_top: top.clone(),
        taps: Vec::new(),
        cuts: Vec::new(),
    })
}

/// The module header of a harness `name` of the whole top, its frame `pixels` (free in the
/// reset cycle), the pixel beats fed as fast as the top takes them, and the top as `dut` with
/// its output always ready; returns the latency bound. Every harness of the whole network
/// drives the top with these same lines, so that the design's signals are the same function
/// of the frame and the cycle in each.
pub(super) fn network_head(
    v: &mut String,
    design: &Design,
    model: &flip::model::Model,
    name: &str,
) -> Result<u64, String> {
    let specs = spec::layers(model)?;
    for ls in &specs {
        let m = mvtu(design, ls.index)
            .ok_or_else(|| format!("the design has no MVTU for layer {}", ls.index))?;
        same_shape(m, ls)?;
    }
    let input = design.input();
    let top = &design.top;
    let beats = input.pixels / input.pixels_per_beat;
    let iw = input.input_width();
    let pw = spec::pixel_width(input.pixels, input.format);
    let cw = design.class_width() as usize;
    let sw = design.argmax().score_width as usize;
    let classes = design.argmax().classes;
    let fw = design.stage_names().len();
    v.push_str(&format!("module {name} (\n    input wire clk,\n"));
    frame(v, pw, "pixels", beats);
    let bb = bits_for(beats as u64).max(1);
    v.push_str(&format!(
        "    wire s_valid = !init && fed != {bb}'d{beats};\n\
         \x20   wire s_ready;\n\
         \x20   // One beat of zeros above the frame keeps the select in range once every beat is in.\n\
         \x20   wire [{}:0] padded = {{{iw}'d0, pixels}};\n\
         \x20   // A shift, not a variable part select, whose out-of-range bits would be undefined.\n\
         \x20   wire [{}:0] s_data = padded >> (fed * {iw});\n\
         \x20   always @(posedge clk) if (s_valid && s_ready) fed <= fed + {bb}'d1;\n\
         \x20   wire m_valid;\n    wire [{}:0] m_class;\n    wire [{}:0] m_scores;\n    wire [{}:0] dbg_fire;\n\
         \x20   {top} dut (\n        .clk(clk),\n        .rst(init),\n        .s_valid(s_valid),\n        \
         .s_ready(s_ready),\n        .s_data(s_data),\n        .m_valid(m_valid),\n        \
         .m_ready(1'b1),\n        .m_class(m_class),\n        .m_scores(m_scores),\n        \
         .dbg_fire(dbg_fire)\n    );\n",
        pw + iw - 1,
        iw - 1,
        cw - 1,
        classes * sw - 1,
        fw - 1,
    ));
    Ok(design.latency_cycles() + SLACK)
}

/// The assertions that the top's class and every score equal the specification's `class` and
/// `scores`.
pub(super) fn class_and_scores_asserts(design: &Design) -> String {
    let cw = design.class_width() as usize;
    let sw = design.argmax().score_width as usize;
    let classes = design.argmax().classes;
    let mut v = format!(
        "        assert({} == class);\n",
        pad_class("m_class", cw, spec_class_width(classes))
    );
    for c in 0..classes {
        v.push_str(&format!(
            "        assert({} == scores[{}:{}]);\n",
            sign_extend("m_scores", c * sw, sw),
            (c + 1) * SCORE_BITS as usize - 1,
            c * SCORE_BITS as usize
        ));
    }
    v
}

/// Bits of the specification's class output.
pub(super) fn spec_class_width(classes: usize) -> usize {
    bits_for(classes.saturating_sub(1) as u64).max(1) as usize
}

/// The design's class, zero-extended to the specification's width.
pub(super) fn pad_class(name: &str, w: usize, to: usize) -> String {
    if to > w {
        format!("{{{}'d0, {name}}}", to - w)
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{random_model, Rng};

    /// A part of a layer reads a specification of its own outputs alone, and checks each of
    /// them against the right bit of it: Yosys never elaborates the other neurons' sums.
    #[test]
    fn a_part_of_a_layer_reads_only_its_own_neurons_specification() {
        let model = random_model(&mut Rng(3), 16, 8, "bitplanes:2".parse().unwrap(), &[12, 4]);
        let design = crate::equiv::compile_auto(&model);
        let specs = spec::layers(&model).unwrap();
        let ls = &specs[0];
        let h = layer(&design, ls, 4..8, Some(1), false).unwrap();
        assert_eq!(h.top, "l1_equiv_1");
        // The part's module: four sums (neurons 4 to 7), y of four bits, and nothing of the
        // layer's whole module.
        assert!(h.text.contains("module l1_spec_4_8 ("), "{}", h.text);
        assert!(
            h.text.contains("l1_spec_4_8 spec (.x(x), .y(y));"),
            "{}",
            h.text
        );
        assert_eq!(
            h.text
                .matches(&format!("{} a", spec::sum_name(ls, None)))
                .count(),
            4
        );
        for i in 4..8 {
            assert!(
                h.text.contains(&format!(" a{i} (")),
                "neuron {i}: {}",
                h.text
            );
        }
        assert!(!h.text.contains(" a3 (") && !h.text.contains(" a8 ("));
        assert!(h.text.contains("wire [3:0] y;"), "{}", h.text);
        // Output 5 of the unit against bit 1 of the part's y.
        assert!(h.text.contains("[5] == y[1]);"), "{}", h.text);
        // The whole layer still reads the layer's module.
        let whole = layer(&design, ls, 0..12, None, false).unwrap();
        assert!(whole.text.contains("l1_spec spec (.x(x), .y(y));"));
        assert!(!whole.text.contains("module l1_spec"));
        // A range outside the layer is an error, not a harness.
        assert!(layer(&design, ls, 10..14, Some(2), false)
            .unwrap_err()
            .contains("not a part"));
    }
}
