//! FIFO between two stages of a convolutional pipeline, where the streams are bursty: a
//! sliding window unit hands on nothing while it fills its first rows and then a window per
//! pixel, while the MVTU after it takes a window only every few cycles. A FIFO lets the
//! faster side run ahead (into the next frame's rows) so that the slowest stage never idles;
//! how deep each one must be is measured by simulation (`sim::fifo_sizing`), not guessed.
//!
//! Structure: a `depth`-entry RAM (written at `wp`, read at `rp`, `count` entries) and the
//! output register, loaded from the RAM by a synchronous read whenever it is free or being
//! emptied. The read is the RAM's own registered read port with an enable and no reset, the
//! shape Yosys maps to block RAM or LUT RAM; a beat written in a cycle is read at the
//! earliest in the next, so a beat crosses an empty FIFO in two cycles. `in_ready` is
//! `count != depth`, held in a flag register of its own, as the stream convention wants.
//!
//! Cycles per frame: one beat per cycle in and out, never slower than the stage before it
//! (its cycles are that stage's). Latency: 2 cycles.

use super::swu::{line_buffer_placement, RamPlacement};
use super::{
    indent, lit, stream_module, Beat, Block, CycleModel, Estimate, Family, Features, StageModel,
};
use crate::ir::bits_for;

/// A FIFO after stage `after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fifo {
    /// Name of the stage it follows (names: `{after}_fifo`).
    pub after: String,
    /// Wire name of the stage it follows.
    pub after_wire: String,
    /// Bits per beat.
    pub width: usize,
    /// Entries of its RAM (the output register holds one more beat).
    pub depth: usize,
    /// Cycles per frame of the stage it follows (it never needs more).
    pub cycles: u64,
}

impl Fifo {
    fn addr_width(&self) -> u32 {
        bits_for(self.depth.saturating_sub(1) as u64).max(1)
    }

    fn count_width(&self) -> u32 {
        bits_for(self.depth as u64)
    }

    /// Where Yosys puts the RAM: by the rule for RAMs with one write and one registered read
    /// port, as a window unit's line buffer (a RAM bit in logic costs it 1, a ROM bit 1/16, so
    /// the ROM rule this used to follow left ECP5 FIFOs in logic that Yosys maps to LUT RAM:
    /// a CNN's 15 x 576 FIFO estimated at 1,029 LUTs took 144 `TRELLIS_DPR16X4` and 33 LUT4).
    fn placement(&self, family: Family) -> RamPlacement {
        line_buffer_placement(family, self.depth as u64, self.width as u64)
    }

    /// Block RAMs the RAM takes.
    fn brams(&self, family: Family) -> u64 {
        match self.placement(family) {
            RamPlacement::Block(n) => n,
            RamPlacement::Logic | RamPlacement::Distributed(_) => 0,
        }
    }
}

impl Block for Fifo {
    fn name(&self) -> String {
        format!("{}_fifo", self.after)
    }

    fn wire_name(&self) -> String {
        format!("{}_fifo", self.after_wire)
    }

    fn cycles(&self) -> u64 {
        self.cycles
    }

    fn latency(&self) -> u64 {
        2
    }

    fn features(&self, family: Family) -> Features {
        // Pointers, count and their compares; a RAM left in logic reads through a mux per
        // bit. LUT RAM is not in the LUT count (see [`RamPlacement::Distributed`]).
        let logic = if self.placement(family) == RamPlacement::Logic {
            (self.depth * self.width) as f64
        } else {
            0.0
        };
        Features {
            rom_bits: logic,
            acc: f64::from(2 * self.addr_width() + self.count_width()),
            blocks: 1.0,
            ..Features::default()
        }
    }

    fn estimate_for(&self, family: Family) -> Estimate {
        let brams = self.brams(family);
        let ram_ffs = if self.placement(family) == RamPlacement::Logic {
            // A RAM in logic is flip-flops (iCE40 has no LUT RAM, standard cells no RAM).
            (self.depth * self.width) as u64
        } else {
            0
        };
        Estimate {
            luts: family.costs().luts(&self.features(family)).round() as u64,
            ffs: self.width as u64
                + ram_ffs
                + u64::from(2 * self.addr_width() + self.count_width())
                + 1,
            memory_bits: (self.depth * self.width) as u64,
            brams,
            sprams: 0,
        }
    }

    fn in_width(&self) -> usize {
        self.width
    }

    fn out_width(&self) -> usize {
        self.width
    }

    fn report_fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("fifo_depth", self.depth.into())]
    }

    fn emit_verilog(&self, header: &str) -> String {
        let n = self.name();
        let (d, w) = (self.depth, self.width);
        let (aw, cw) = (self.addr_width(), self.count_width());
        let mut v = String::new();
        v.push_str(header);
        v.push_str(&format!(
            "// FIFO after {}: {d} entries of {w} bits in RAM, plus the output register.\n",
            self.after
        ));
        v.push_str(&stream_module(&n, w, w));
        let next = |p: &str| {
            if d.is_power_of_two() && d > 1 {
                format!("{p} + {}", lit(aw, 1))
            } else {
                format!(
                    "({p} == {}) ? {} : {p} + {}",
                    lit(aw, d as u64 - 1),
                    lit(aw, 0),
                    lit(aw, 1)
                )
            }
        };
        let mut b = String::new();
        b.push_str(&format!(
            "reg  [{}:0] {n}_mem [0:{}];\nreg  [{}:0] {n}_wp;\nreg  [{}:0] {n}_rp;\n\
             reg  [{}:0] {n}_count;\n\
             // `count == depth`, kept in a register of its own: in_ready then leaves a flip-flop\n\
             // straight into the stage before, whose take decides the load of its wide output\n\
             // register (the compare in front of that was the critical path of a CNN design).\n\
             reg  {n}_full;\n\
             assign in_ready = !{n}_full;\n\
             wire {n}_in_fire = in_valid && in_ready;\n\
             // The output register takes the oldest entry whenever it is free or being emptied.\n\
             wire {n}_rd = ({n}_count != {}) && (!out_valid || out_ready);\n",
            w - 1,
            d - 1,
            aw - 1,
            aw - 1,
            cw - 1,
            lit(cw, 0),
        ));
        b.push_str("\nalways @(posedge clk) begin\n    if (rst) begin\n");
        b.push_str(&format!(
            "        {n}_wp <= {z};\n        {n}_rp <= {z};\n        {n}_count <= {};\n        \
             {n}_full <= 1'b0;\n        out_valid <= 1'b0;\n",
            lit(cw, 0),
            z = lit(aw, 0)
        ));
        b.push_str("    end else begin\n");
        b.push_str(&format!(
            "        if ({n}_in_fire) {n}_wp <= {};\n        if ({n}_rd) {n}_rp <= {};\n",
            next(&format!("{n}_wp")),
            next(&format!("{n}_rp"))
        ));
        b.push_str(&format!(
            "        if ({n}_in_fire && !{n}_rd) begin\n            \
             {n}_count <= {n}_count + {one};\n            \
             {n}_full <= ({n}_count == {last});\n        \
             end else if ({n}_rd && !{n}_in_fire) begin\n            \
             {n}_count <= {n}_count - {one};\n            {n}_full <= 1'b0;\n        end\n",
            one = lit(cw, 1),
            last = lit(cw, d as u64 - 1)
        ));
        b.push_str(&format!(
            "        if ({n}_rd) out_valid <= 1'b1;\n        else if (out_ready) out_valid <= 1'b0;\n"
        ));
        b.push_str(
            "    end\nend\n\n// The RAM and its registered read port (no reset: datapath).\n",
        );
        b.push_str(&format!(
            "always @(posedge clk) begin\n    if ({n}_in_fire) {n}_mem[{n}_wp] <= in_data;\n    \
             if ({n}_rd) out_data <= {n}_mem[{n}_rp];\nend\n"
        ));
        indent(&mut v, 4, &b);
        v.push_str("endmodule\n");
        v
    }

    fn cycle_model(&self) -> StageModel {
        // Entries take their size from the first beats copied in.
        let empty = Beat::Bits(Vec::new());
        StageModel::Fifo(FifoModel {
            ram: vec![empty.clone(); self.depth],
            wp: 0,
            rp: 0,
            count: 0,
            out_valid: false,
            out: empty,
        })
    }
}

/// Cycle model of the FIFO: a ring of preallocated beats, copied into (no allocation per
/// beat), with the Verilog's pointers and count.
pub struct FifoModel {
    ram: Vec<Beat>,
    wp: usize,
    rp: usize,
    count: usize,
    out_valid: bool,
    out: Beat,
}

impl CycleModel for FifoModel {
    fn in_ready(&self, _out_ready: bool) -> bool {
        self.count != self.ram.len()
    }

    fn out_valid(&self) -> bool {
        self.out_valid
    }

    fn out_data(&self) -> &Beat {
        &self.out
    }

    fn quiet_cycles(&self) -> u64 {
        // Only an entry facing a free output register moves without a handshake.
        if self.count != 0 && !self.out_valid {
            0
        } else {
            u64::MAX
        }
    }

    fn clock(&mut self, input: Option<&Beat>, out_ready: bool) {
        let d = self.ram.len();
        // The read sees the count before this edge's write, as the Verilog's does.
        let rd = self.count != 0 && (!self.out_valid || out_ready);
        if rd {
            std::mem::swap(&mut self.out, &mut self.ram[self.rp]);
            self.rp = (self.rp + 1) % d;
            self.count -= 1;
            self.out_valid = true;
        } else if out_ready {
            self.out_valid = false;
        }
        if let Some(b) = input {
            self.ram[self.wp].clone_from(b);
            self.wp = (self.wp + 1) % d;
            self.count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::rtl_check::{self, bits_hex, pattern, Run};
    use flip::bits::words_for;
    use flip::train::rng::splitmix;

    fn fifo(width: usize, depth: usize) -> Fifo {
        Fifo {
            after: "l3_swu".into(),
            after_wire: "l3_swu".into(),
            width,
            depth,
            cycles: 10,
        }
    }

    /// Random beats with bubbles and back-pressure: the Verilog against the model each cycle,
    /// and what comes out is what went in, in order.
    fn check(f: &Fifo, seed: u64, offer: u64, ready: u64) {
        rtl_check::lint(f);
        let mut r = seed;
        let beats: Vec<Beat> = (0..60)
            .map(|_| {
                let mut w: Vec<u64> = (0..words_for(f.width)).map(|_| splitmix(&mut r)).collect();
                let tail = f.width % 64;
                if tail != 0 {
                    *w.last_mut().expect("a beat has a word") &= (1u64 << tail) - 1;
                }
                Beat::Bits(w)
            })
            .collect();
        let cycles = beats.len() * 100 / offer.min(ready) as usize + 100;
        let run = Run {
            tag: format!("w{}d{}r{seed}", f.width, f.depth),
            beats_hex: beats.iter().map(|b| bits_hex(b, 1, f.width)).collect(),
            beats: &beats,
            offer: pattern(seed ^ 0xf1f0, cycles, offer),
            ready: pattern(seed ^ 0x4ead, cycles, ready),
        };
        let outs = rtl_check::check(f, &run, &|b| bits_hex(b, 1, f.width));
        assert_eq!(outs, beats, "beats through {f:?}");
    }

    #[test]
    fn fifo_rtl_matches_model_and_keeps_order() {
        check(&fifo(5, 4), 1, 90, 30);
        check(&fifo(70, 3), 2, 40, 90);
        check(&fifo(1, 1), 3, 80, 80);
        check(&fifo(36, 16), 4, 100, 50);
        check(&fifo(288, 5), 5, 70, 70);
    }

    #[test]
    fn fifo_streams_a_beat_per_cycle_from_depth_two() {
        for (depth, want) in [(1, 2), (2, 1), (7, 1)] {
            let f = fifo(8, depth);
            let mut m = f.cycle_model();
            let beat = Beat::Bits(vec![1]);
            let mut outs = Vec::new();
            for t in 0..200u64 {
                if m.out_valid() {
                    outs.push(t);
                }
                let take = m.in_ready(true);
                m.clock(take.then_some(&beat), true);
            }
            assert_eq!(outs[0], f.latency(), "depth {depth}");
            let gaps: Vec<u64> = outs.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.iter().all(|&g| g == want), "depth {depth}: {gaps:?}");
        }
    }
}
