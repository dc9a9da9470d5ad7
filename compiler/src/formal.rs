//! Formal collateral beside a design: a checker module holding the stream properties of the
//! top as SystemVerilog immediate assertions and assumptions, and a wrapper that binds it to
//! the top's ports, in `<top>_props.sv`. The design's own files stay Verilog-2005; only a
//! formal tool (SymbiYosys, `flipchip prove`) reads this one.
//!
//! The properties come in groups, each checked by its own run of the prover (`define`
//! selects it), so that a hard group cannot hold up an easy one:
//! - `handshake`: while `m_valid` is high and `m_ready` low, `m_valid` stays high and
//!   `m_class`/`m_scores` keep their values;
//! - `frames`: the design never outputs a result for which no complete frame is waiting
//!   (outputs never outnumber frames accepted: nothing is duplicated or invented), the
//!   checker's beat counter stays in its frame and the number of frames waiting for their
//!   result stays below the counter's range (back-pressure reaches the input);
//! - `latency`: with `m_ready` always high and arbitrary input bubbles, a frame chosen by the
//!   prover (the "tagged" frame: any frame, at any time) gets its result, counted in order
//!   (the k-th result after the frames ahead of it), within [`latency_bound`] cycles of its
//!   last beat's handshake; so no frame is dropped and results come in frame order as far as
//!   counting can tell (telling a reordered pair apart needs the data, see the datapath
//!   equivalence in the issue tracker).
//!
//! Reset is asserted in the first cycle and never again: the proofs cover every run from
//! reset.

use crate::ir::Design;

/// A group of properties, proven by one prover run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// Name in reports and file names (`handshake`).
    pub name: &'static str,
    /// The preprocessor symbol that turns the group's assertions on.
    pub define: &'static str,
    /// One line for people.
    pub description: &'static str,
}

/// Every property group, in the order `flipchip prove` runs them.
pub const GROUPS: [Group; 3] = [
    Group {
        name: "handshake",
        define: "FLIPCHIP_HANDSHAKE",
        description: "m_valid stays high and m_class/m_scores stable while m_ready is low",
    },
    Group {
        name: "frames",
        define: "FLIPCHIP_FRAMES",
        description: "no result without a complete frame waiting for it (nothing duplicated or invented)",
    },
    Group {
        name: "latency",
        define: "FLIPCHIP_LATENCY",
        description: "with m_ready high, every frame's result, in order, within the latency bound of its last beat",
    },
];

/// Width of the checker's frame counters: frames waiting for their results must stay below
/// `2^COUNTER_BITS - 1`, far above what any design buffers.
const COUNTER_BITS: u32 = 8;

/// The checker file's name for a design (`flipchip_top_props.sv`).
pub fn file_name(d: &Design) -> String {
    format!("{}_props.sv", d.top)
}

/// The wrapper module a prover takes as its top (`flipchip_top_formal`).
pub fn wrapper_name(d: &Design) -> String {
    format!("{}_formal", d.top)
}

/// Input beats per frame.
pub fn beats_per_frame(d: &Design) -> u64 {
    (d.input().pixels / d.input().pixels_per_beat) as u64
}

/// Cycles from a frame's last input handshake to its result's handshake that the `latency`
/// group allows when the output is always ready: the design's latency (first beat to result,
/// pipeline empty) less the beats before the last, plus one frame interval for a frame that
/// finds the stages ahead of it still busy with the previous one.
pub fn latency_bound(d: &Design) -> u64 {
    d.latency_cycles() - (beats_per_frame(d) - 1) + d.cycles_per_frame()
}

/// The checker and its wrapper for `d`, or `None` for a design with a weight-load port (its
/// frames wait for a load sequence the checker does not model).
pub fn checker(d: &Design) -> Option<String> {
    if d.has_loaded_weights() {
        return None;
    }
    let top = &d.top;
    let iw = d.input().input_width();
    let cw = d.class_width();
    let sw = d.argmax().classes * d.argmax().score_width as usize;
    let fw = d.stage_names().len();
    let beats = beats_per_frame(d);
    let beat_bits = crate::ir::bits_for(beats).max(1);
    let bound = latency_bound(d);
    let age_bits = crate::ir::bits_for(bound + 1).max(1);
    let n = COUNTER_BITS;
    let mut v = crate::verilog::header(d);
    v.push_str(&format!(
        "// Stream properties of {top} for a formal tool (SymbiYosys); not part of the design.\n\
         // Groups, each turned on by its define: FLIPCHIP_HANDSHAKE, FLIPCHIP_FRAMES, FLIPCHIP_LATENCY\n\
         // (see `flipchip prove`). {beats} input beats per frame; latency bound {bound} cycles from a\n\
         // frame's last beat to its result.\n\n"
    ));
    v.push_str(&format!(
        "module {top}_props (
    input wire clk,
    input wire rst,
    input wire s_valid,
    input wire s_ready,
    input wire [{iw1}:0] s_data,
    input wire m_valid,
    input wire m_ready,
    input wire [{cw1}:0] m_class,
    input wire [{sw1}:0] m_scores
);
    // Reset in the first cycle, never after.
    reg init = 1'b1;
    always @(posedge clk) init <= 1'b0;
    always @(*) begin
        if (init) assume(rst);
        else assume(!rst);
    end
`ifdef FLIPCHIP_LATENCY
    // Latency is measured with the output always ready; input bubbles stay arbitrary.
    always @(*) assume(m_ready);
`endif

    wire in_fire = s_valid && s_ready;
    wire out_fire = m_valid && m_ready;
    // Beat of the frame being accepted; a frame is complete at the handshake of its last beat.
    reg [{bb1}:0] beat;
    wire frame_in = in_fire && beat == {bb}'d{last};
    // Complete frames accepted and not yet answered.
    reg [{n1}:0] waiting;
    // The tagged frame: any one frame the prover picks as it completes (tag_now). `ahead`
    // counts the results still owed to frames before it, `age` the cycles since its last beat.
    (* anyseq *) wire tag_now;
    reg tagged;
    reg answered;
    reg [{n1}:0] ahead;
    reg [{ab1}:0] age;
    always @(posedge clk) begin
        if (rst) begin
            beat <= 0;
            waiting <= 0;
            tagged <= 1'b0;
            answered <= 1'b0;
            ahead <= 0;
            age <= 0;
        end else begin
            if (in_fire) beat <= frame_in ? {bb}'d0 : beat + 1'b1;
            waiting <= waiting + frame_in - out_fire;
            if (tagged && !answered) begin
                if (age != {{{ab}{{1'b1}}}}) age <= age + 1'b1;
                if (out_fire) begin
                    if (ahead == 0) answered <= 1'b1;
                    else ahead <= ahead - 1'b1;
                end
            end
            if (!tagged && frame_in && tag_now) begin
                tagged <= 1'b1;
                ahead <= waiting - out_fire;
                age <= 0;
            end
        end
    end

    // The output as it was in the previous cycle, and whether it was held back then.
    reg held;
    reg [{cw1}:0] held_class;
    reg [{sw1}:0] held_scores;
    always @(posedge clk) begin
        held <= !rst && m_valid && !m_ready;
        held_class <= m_class;
        held_scores <= m_scores;
    end

    always @(*) begin
        if (!init && !rst) begin
`ifdef FLIPCHIP_HANDSHAKE
            if (held) assert(m_valid && m_class == held_class && m_scores == held_scores);
`endif
`ifdef FLIPCHIP_FRAMES
            if (m_valid) assert(waiting != 0);
            assert(beat < {bb}'d{beats});
            assert(waiting != {{{n}{{1'b1}}}});
`endif
`ifdef FLIPCHIP_LATENCY
            if (tagged && !answered) assert(age <= {ab}'d{bound});
            // Strengthening: the tagged frame is among those waiting, behind `ahead` of them.
            if (tagged && !answered) assert(ahead < waiting);
`endif
        end
    end
endmodule

// The prover's top: the design and its checker on the same wires, every input free.
module {top}_formal (
    input wire clk,
    input wire rst,
    input wire s_valid,
    input wire [{iw1}:0] s_data,
    input wire m_ready
);
    wire s_ready;
    wire m_valid;
    wire [{cw1}:0] m_class;
    wire [{sw1}:0] m_scores;
    wire [{fw1}:0] dbg_fire;
    {top} dut (
        .clk(clk),
        .rst(rst),
        .s_valid(s_valid),
        .s_ready(s_ready),
        .s_data(s_data),
        .m_valid(m_valid),
        .m_ready(m_ready),
        .m_class(m_class),
        .m_scores(m_scores),
        .dbg_fire(dbg_fire)
    );
    {top}_props props (
        .clk(clk),
        .rst(rst),
        .s_valid(s_valid),
        .s_ready(s_ready),
        .s_data(s_data),
        .m_valid(m_valid),
        .m_ready(m_ready),
        .m_class(m_class),
        .m_scores(m_scores)
    );
endmodule
",
        iw1 = iw - 1,
        cw1 = cw - 1,
        sw1 = sw - 1,
        fw1 = fw - 1,
        bb = beat_bits,
        bb1 = beat_bits - 1,
        last = beats - 1,
        n1 = n - 1,
        ab = age_bits,
        ab1 = age_bits - 1,
    ));
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design() -> Design {
        let mut rng = crate::random::Rng(3);
        let encoding = flip::encoding::Encoding::Threshold(128);
        let model = crate::random::random_model(&mut rng, 16, 8, encoding, &[8, 4]);
        let fold = crate::passes::folding::FoldSpec::auto(None);
        crate::compile(&model, &fold).unwrap()
    }

    #[test]
    fn the_checker_names_the_design_and_holds_every_group() {
        let d = design();
        let text = checker(&d).unwrap();
        assert!(
            text.contains(&format!("module {}_props (", d.top)),
            "{text}"
        );
        assert!(text.contains(&format!("module {} (", wrapper_name(&d))));
        assert!(text.contains(&format!("    {} dut (", d.top)));
        for g in GROUPS {
            assert!(text.contains(&format!("`ifdef {}", g.define)), "{}", g.name);
        }
        let beats = beats_per_frame(&d);
        assert!(text.contains(&format!("'d{}", beats - 1)), "{text}");
        assert!(
            text.contains(&format!("'d{})", latency_bound(&d))),
            "{text}"
        );
        // The same design gives the same file.
        assert_eq!(checker(&d), checker(&design()));
    }
}
