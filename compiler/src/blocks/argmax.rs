//! Argmax: a registered output stage that picks the first index of the largest signed score and
//! passes the scores on beside it.
//!
//! Cycles 1, latency 1. It is the only block whose `in_ready` looks at its `out_ready`
//! (`!out_valid || out_ready`, a plain pipeline register), so the top's `m_ready` reaches back
//! one block and no further.

use super::{indent, lit, Beat, Block, CycleModel, Estimate, Family, StageModel};
use crate::ir::{bits_for, Argmax};

impl Argmax {
    fn class_width(&self) -> u32 {
        bits_for(self.classes.saturating_sub(1) as u64)
    }
}

impl Block for Argmax {
    fn name(&self) -> String {
        "argmax".into()
    }

    fn cycles(&self) -> u64 {
        1
    }

    fn latency(&self) -> u64 {
        1
    }

    fn estimate_for(&self, family: Family) -> Estimate {
        let c = family.costs();
        let (n, sw, cw) = (
            self.classes as u64,
            self.score_width as u64,
            u64::from(self.class_width()),
        );
        // A chain of `classes - 1` signed compares, each selecting a score and an index.
        let luts = c.activation_bit * (n.saturating_sub(1) * (2 * sw + cw)) as f64 + c.block;
        Estimate {
            luts: luts.round() as u64,
            ffs: n * sw + cw + 1,
            memory_bits: 0,
            brams: 0,
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
        let mut b = String::new();
        b.push_str(&format!(
            "assign in_ready = !out_valid || out_ready;\nwire {n}_in_fire = in_valid && in_ready;\n"
        ));
        // A compare chain: entry i replaces the best so far only if strictly greater.
        b.push_str(&format!(
            "wire [{}:0] {n}_best0 = {};\n",
            cw - 1,
            lit(cw, 0)
        ));
        if c > 1 {
            b.push_str(&format!(
                "wire [{}:0] {n}_val0 = in_data[{}:0];\n",
                sw - 1,
                sw - 1
            ));
        }
        for i in 1..c {
            b.push_str(&format!(
                "wire {n}_gt{i} = $signed(in_data[{}:{}]) > $signed({n}_val{});\n",
                (i + 1) * sw - 1,
                i * sw,
                i - 1
            ));
            b.push_str(&format!(
                "wire [{}:0] {n}_best{i} = {n}_gt{i} ? {} : {n}_best{};\n",
                cw - 1,
                lit(cw, i as u64),
                i - 1
            ));
            if i + 1 < c {
                b.push_str(&format!(
                    "wire [{}:0] {n}_val{i} = {n}_gt{i} ? in_data[{}:{}] : {n}_val{};\n",
                    sw - 1,
                    (i + 1) * sw - 1,
                    i * sw,
                    i - 1
                ));
            }
        }
        b.push_str(&format!(
            "\nalways @(posedge clk) begin\n    if (rst) begin\n        out_valid <= 1'b0;\n    end else begin\n        \
             if (out_valid && out_ready) out_valid <= 1'b0;\n        if ({n}_in_fire) begin\n            \
             out_valid <= 1'b1;\n            out_class <= {n}_best{};\n            out_scores <= in_data;\n        \
             end\n    end\nend\n",
            c - 1
        ));
        indent(&mut v, 4, &b);
        v.push_str("endmodule\n");
        v
    }

    fn cycle_model(&self) -> StageModel {
        StageModel::Argmax(ArgmaxModel {
            out_valid: false,
            out: Beat::Result {
                class: 0,
                scores: vec![0; self.classes],
            },
        })
    }
}

/// Cycle model of the argmax register.
pub struct ArgmaxModel {
    out_valid: bool,
    out: Beat,
}

impl CycleModel for ArgmaxModel {
    fn in_ready(&self, out_ready: bool) -> bool {
        !self.out_valid || out_ready
    }

    fn out_valid(&self) -> bool {
        self.out_valid
    }

    fn out_data(&self) -> &Beat {
        &self.out
    }

    fn quiet_cycles(&self) -> u64 {
        u64::MAX
    }

    fn clock(&mut self, input: Option<&Beat>, out_ready: bool) {
        if self.out_valid && out_ready {
            self.out_valid = false;
        }
        if let Some(beat) = input {
            let Beat::Scores(s) = beat else {
                panic!("the argmax takes score beats")
            };
            let Beat::Result { class, scores } = &mut self.out else {
                unreachable!("the argmax outputs results")
            };
            scores.copy_from_slice(s);
            *class = flip::reference::argmax(s) as u32;
            self.out_valid = true;
        }
    }
}
