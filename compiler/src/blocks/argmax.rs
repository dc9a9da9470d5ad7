//! Argmax: an output stage that picks the first index of the largest signed score and passes
//! the scores on beside it.
//!
//! A sequential scan, so that the longest combinational path is one signed compare and a mux
//! (a single-cycle compare chain over every class was the critical path of whole designs).
//! Whether the score at the bottom beats the best so far is a register, decided a step ahead:
//! the next score is compared both with the bottom one and with the best, and the register
//! takes the compare of whichever will be the best. So no compare lies between a register and
//! the best's select (a compare, then the select and the step's enable, 8.1 ns on the ULX3S,
//! was the critical path of a Fashion-MNIST design built for 125 MHz).
//! The input handshake loads the scores into a rotating register, score 0 as the best so far;
//! then each of `classes - 1` scan steps compares the score at the bottom of the register
//! against the best (strictly greater wins, so the lowest index wins a tie) and rotates the
//! register by one score. The last step writes the class and the scores (rotated back into
//! order) into the output registers, waiting for `out_ready` if those are still full.
//!
//! Like an MVTU, the block takes a new frame when idle, or in the cycle of its last step if the
//! output register is free then. Cycles: `classes - 1`; latency: the handshake, then
//! `classes - 1` steps: `classes`. `in_ready` depends on registers only.
//!
//! With one or two classes there is nothing to scan: the block is a pipeline register (with
//! two, the class is the one compare of the scores, made as they load) whose `in_ready` is
//! `!out_valid || out_ready`: one cycle per frame, latency 1. A scan of two classes could take
//! a frame in its one step only while the output register was empty, two frames in three
//! cycles, so it is not used.

use super::{indent, lit, Beat, Block, CycleModel, Estimate, Family, Features, StageModel};
use crate::ir::{bits_for, Argmax};

impl Argmax {
    fn class_width(&self) -> u32 {
        bits_for(self.classes.saturating_sub(1) as u64)
    }

    /// Scan steps after the input handshake: one per score after the first, none with two
    /// classes or fewer (see the module docs).
    fn scan_steps(&self) -> u64 {
        if self.classes <= 2 {
            0
        } else {
            self.classes as u64 - 1
        }
    }
}

impl Block for Argmax {
    fn name(&self) -> String {
        "argmax".into()
    }

    fn cycles(&self) -> u64 {
        self.scan_steps().max(1)
    }

    fn latency(&self) -> u64 {
        self.scan_steps() + 1
    }

    fn features(&self, _family: Family) -> Features {
        let (n, sw, cw) = (
            self.classes as f64,
            f64::from(self.score_width),
            f64::from(self.class_width()),
        );
        if self.scan_steps() == 0 {
            // A pipeline register (its load is the flip-flops' enable) and, with two classes,
            // the one compare.
            return Features {
                activation: (n - 1.0) * sw,
                blocks: 1.0,
                ..Features::default()
            };
        }
        // The scan: a load-or-rotate mux per score bit, three signed compares (the load's and
        // the next score's two), the muxes of the best score and index, the step counter.
        Features {
            stream: n * sw,
            activation: 4.0 * sw + 2.0 * cw,
            blocks: 1.0,
            ..Features::default()
        }
    }

    fn estimate_for(&self, family: Family) -> Estimate {
        let (n, sw, cw) = (
            self.classes as u64,
            self.score_width as u64,
            u64::from(self.class_width()),
        );
        let ffs = if self.scan_steps() == 0 {
            // The output registers of the scores and the class, and valid.
            n * sw + cw + 1
        } else {
            // Scan and output registers of the scores, best score, counter, best and output
            // index, busy, valid and the compare decided ahead.
            2 * n * sw + sw + 3 * cw + 3
        };
        Estimate {
            luts: family.costs().luts(&self.features(family)).round() as u64,
            ffs,
            ..Estimate::default()
        }
    }

    fn in_width(&self) -> usize {
        self.classes * self.score_width as usize
    }

    fn out_width(&self) -> usize {
        self.in_width() + self.class_width() as usize
    }

    fn emit_verilog(&self, header: &str) -> String {
        let n = self.name();
        let (c, sw, cw) = (self.classes, self.score_width as usize, self.class_width());
        let mut v = String::new();
        v.push_str(header);
        v.push_str(&format!(
            "// Argmax over {c} signed {sw}-bit scores; the lowest index wins a tie.\n"
        ));
        v.push_str(&format!(
            "module {n} (\n    input  wire clk,\n    input  wire rst,\n    input  wire in_valid,\n    \
             output wire in_ready,\n    input  wire [{w}:0] in_data,\n    output reg  out_valid,\n    \
             input  wire out_ready,\n    output reg  [{}:0] out_class,\n    output reg  [{w}:0] out_scores\n);\n",
            cw - 1,
            w = c * sw - 1
        ));
        // `a > b` for the signed scores at bits `a_at` of `a` and `b_at` of `b`, as an unsigned
        // compare with the sign bits inverted: one carry chain whose carry out is the result
        // (Yosys maps a signed compare to a chain and an overflow correction after it).
        let greater = |a: &str, a_at: usize, b: &str, b_at: usize| {
            let offset = |x: &str, at: usize| {
                if sw == 1 {
                    format!("~{x}[{at}]")
                } else {
                    format!("{{~{x}[{}], {x}[{}:{at}]}}", at + sw - 1, at + sw - 2)
                }
            };
            format!("({} > {})", offset(a, a_at), offset(b, b_at))
        };
        let mut b = String::new();
        if self.scan_steps() == 0 {
            // Nothing to scan: a pipeline register, loaded with the class of the one compare.
            let class = if c == 1 {
                lit(cw, 0)
            } else {
                greater("in_data", sw, "in_data", 0)
            };
            b.push_str(&format!(
                "assign in_ready = !out_valid || out_ready;\nwire {n}_in_fire = in_valid && in_ready;\n\n\
                 always @(posedge clk) begin\n    if (rst) begin\n        out_valid <= 1'b0;\n    \
                 end else begin\n        if (out_valid && out_ready) out_valid <= 1'b0;\n        \
                 if ({n}_in_fire) out_valid <= 1'b1;\n    end\nend\n\n\
                 always @(posedge clk) begin\n    if ({n}_in_fire) begin\n        \
                 out_class <= {};\n        out_scores <= in_data;\n    end\nend\n",
                class
            ));
        } else {
            let w = c * sw;
            // Rotate right by one score: the next score comes to the bottom, the bottom one
            // goes to the top, so that after `classes` rotations the order is restored.
            let rot = |x: &str| format!("{{{x}[{}:0], {x}[{}:{sw}]}}", sw - 1, w - 1);
            b.push_str(&format!(
                "// Scan state: `{n}_sc` holds the scores rotated so that the one compared next is \
                 at the\n// bottom; `{n}_cnt` is its index.\n\
                 reg  {n}_busy;\nreg  [{cm}:0] {n}_cnt;\nreg  [{wm}:0] {n}_sc;\n\
                 reg  [{sm}:0] {n}_best;\nreg  [{cm}:0] {n}_best_idx;\n\
                 // `{n}_gt`: the score at the bottom beats the best (strictly, so the lowest index\n\
                 // wins a tie), decided a step ahead for either best the step can leave.\n\
                 reg  {n}_gt;\n\
                 wire [{sm}:0] {n}_next = {n}_sc[{nm}:{sw}];\n\
                 wire {n}_gt_bottom = {gt_bottom};\n\
                 wire {n}_gt_best = {gt_best};\n\
                 wire {n}_gt_in = {gt_in};\n\
                 wire {n}_last = {n}_cnt == {last};\n\
                 wire {n}_finish = {n}_busy && {n}_last && (!out_valid || out_ready);\n\
                 assign in_ready = !{n}_busy || ({n}_last && !out_valid);\n\
                 wire {n}_in_fire = in_valid && in_ready;\n\
                 wire [{cm}:0] {n}_win = {n}_gt ? {n}_cnt : {n}_best_idx;\n\n\
                 always @(posedge clk) begin\n    if (rst) begin\n        {n}_busy <= 1'b0;\n        \
                 out_valid <= 1'b0;\n    end else begin\n        \
                 if (out_valid && out_ready) out_valid <= 1'b0;\n        \
                 if ({n}_finish) out_valid <= 1'b1;\n        \
                 if ({n}_in_fire) {n}_busy <= 1'b1;\n        \
                 else if ({n}_finish) {n}_busy <= 1'b0;\n    end\nend\n\n\
                 always @(posedge clk) begin\n    if ({n}_finish) begin\n        \
                 out_class <= {n}_win;\n        out_scores <= {rot_sc};\n    end\n    \
                 if ({n}_in_fire) begin\n        {n}_sc <= {rot_in};\n        \
                 {n}_best <= in_data[{sm}:0];\n        {n}_best_idx <= {zero};\n        \
                 {n}_gt <= {n}_gt_in;\n        \
                 {n}_cnt <= {one};\n    end else if ({n}_busy && !{n}_last) begin\n        \
                 {n}_sc <= {rot_sc};\n        \
                 if ({n}_gt) {n}_best <= {n}_sc[{sm}:0];\n        \
                 {n}_gt <= {n}_gt ? {n}_gt_bottom : {n}_gt_best;\n        \
                 {n}_best_idx <= {n}_win;\n        {n}_cnt <= {n}_cnt + {one};\n    end\nend\n",
                cm = cw - 1,
                wm = w - 1,
                sm = sw - 1,
                nm = 2 * sw - 1,
                gt_bottom = greater(&format!("{n}_next"), 0, &format!("{n}_sc"), 0),
                gt_best = greater(&format!("{n}_next"), 0, &format!("{n}_best"), 0),
                gt_in = greater("in_data", sw, "in_data", 0),
                last = lit(cw, c as u64 - 1),
                zero = lit(cw, 0),
                one = lit(cw, 1),
                rot_sc = rot(&format!("{n}_sc")),
                rot_in = rot("in_data"),
            ));
        }
        indent(&mut v, 4, &b);
        v.push_str("endmodule\n");
        v
    }

    fn cycle_model(&self) -> StageModel {
        let result = || Beat::Result {
            class: 0,
            scores: vec![0; self.classes],
        };
        StageModel::Argmax(ArgmaxModel {
            steps: self.scan_steps(),
            left: 0,
            pending: result(),
            out_valid: false,
            out: result(),
        })
    }
}

/// Cycle model of the argmax scan: the same handshakes and step timing as the Verilog.
///
/// The scan's result depends on nothing but the scores loaded at the handshake, so the model
/// computes it then (into `pending`) and only counts the steps; the last step moves it into
/// the output register, as the Verilog does.
pub struct ArgmaxModel {
    /// Scan steps per frame (`classes - 1`).
    steps: u64,
    /// Steps still to run, the current one included (0: idle); the Verilog's
    /// `classes - cnt` while busy.
    left: u64,
    /// The result of the frame being scanned.
    pending: Beat,
    out_valid: bool,
    out: Beat,
}

impl CycleModel for ArgmaxModel {
    fn in_ready(&self, out_ready: bool) -> bool {
        if self.steps == 0 {
            !self.out_valid || out_ready
        } else {
            self.left == 0 || (self.left == 1 && !self.out_valid)
        }
    }

    fn out_valid(&self) -> bool {
        self.out_valid
    }

    fn out_data(&self) -> &Beat {
        &self.out
    }

    fn quiet_cycles(&self) -> u64 {
        if self.left == 0 || (self.left == 1 && self.out_valid) {
            // Idle, or finished and waiting for the output register: only a handshake moves it.
            u64::MAX
        } else {
            // Steps before the last one change nothing visible.
            self.left - 1
        }
    }

    fn skip(&mut self, cycles: u64) {
        if self.left > 1 {
            self.left -= cycles;
        }
    }

    fn clock(&mut self, input: Option<&Beat>, out_ready: bool) {
        if self.out_valid && out_ready {
            self.out_valid = false;
        }
        if self.left > 1 {
            self.left -= 1;
        } else if self.left == 1 && !self.out_valid {
            // The last step: the result moves into the (now free) output register.
            std::mem::swap(&mut self.out, &mut self.pending);
            self.out_valid = true;
            self.left = 0;
        }
        if let Some(beat) = input {
            let Beat::Scores(s) = beat else {
                panic!("the argmax takes score beats")
            };
            let Beat::Result { class, scores } = &mut self.pending else {
                unreachable!("the argmax outputs results")
            };
            scores.copy_from_slice(s);
            *class = flip::reference::argmax(s) as u32;
            if self.steps == 0 {
                std::mem::swap(&mut self.out, &mut self.pending);
                self.out_valid = true;
            } else {
                self.left = self.steps;
            }
        }
    }
}
