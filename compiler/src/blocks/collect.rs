//! Collect (flatten) unit: gathers a frame's pixel beats into one beat, the input of a dense
//! layer after the convolutions.
//!
//! Input: `pixels` beats of `channels` bits per frame. Output: one beat of `pixels * channels`
//! bits per frame, pixel `p`'s channel `c` at bit `p * channels + c` (the feature map's
//! row-major layout, so the dense layer's weights need no reordering).
//!
//! Structure: the output register is the shift register: each processed pixel shifts it right
//! by a pixel, so that after the frame's last pixel the earliest one is lowest, and that pixel
//! makes it valid. The frame is held once: while it waits in the output register, the next
//! frame's first pixel waits in the skid register (see [`super::skid`]) and shifts in in the
//! cycle the frame leaves, so frames follow back to back. A second frame register would only
//! let the input run ahead by a frame, at a frame of flip-flops (the input adapter makes the
//! same choice).
//!
//! Cycles per frame: one pixel per cycle, `pixels`. Latency (first input handshake to the
//! frame valid): `pixels`.

use flip::bits::words_for;
use flip::featuremap::copy_bits;

use super::skid::{self, OutGate, Skid, Source};
use super::{
    indent, lit, stream_module, Beat, Block, CycleModel, Estimate, Family, Features, StageModel,
};
use crate::ir::bits_for;

/// A collect unit in front of dense layer `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collect {
    /// Layer number of the dense layer it feeds (names: `l{index}_collect`).
    pub index: usize,
    /// Pixel beats per frame.
    pub pixels: usize,
    /// Bits per pixel.
    pub channels: usize,
}

impl Collect {
    fn count_width(&self) -> u32 {
        bits_for(self.pixels.saturating_sub(1) as u64)
    }
}

impl Block for Collect {
    fn name(&self) -> String {
        format!("l{}_collect", self.index)
    }

    fn cycles(&self) -> u64 {
        self.pixels as u64
    }

    fn latency(&self) -> u64 {
        self.pixels as u64
    }

    fn features(&self, family: Family) -> Features {
        // The skid register's mux; the shift register loads with an enable, so no LUT per bit
        // where flip-flops have one (as the input adapter's frame): the Fashion-MNIST CNN's
        // 1,024-bit collect took 77 LUT4s with `synth_ecp5`, where a LUT per bit had been
        // counted at the argmax's 3.6. Standard cells hold each bit with a multiplexer.
        Features {
            select: self.channels as f64,
            stream: if family.enable_flip_flops() {
                0.0
            } else {
                (self.pixels * self.channels) as f64
            },
            blocks: 1.0,
            ..Features::default()
        }
    }

    fn estimate_for(&self, family: Family) -> Estimate {
        let c = self.channels as u64;
        Estimate {
            luts: family.costs().luts(&self.features(family)).round() as u64,
            // Skid and output registers, counter, valid bits.
            ffs: c + self.pixels as u64 * c + u64::from(self.count_width()) + 2,
            ..Estimate::default()
        }
    }

    fn in_width(&self) -> usize {
        self.channels
    }

    fn out_width(&self) -> usize {
        self.pixels * self.channels
    }

    fn emit_verilog(&self, header: &str) -> String {
        let n = self.name();
        let (p, c) = (self.pixels, self.channels);
        let cw = self.count_width();
        let mut v = String::new();
        v.push_str(header);
        v.push_str(&format!(
            "// Collect: {p} pixel beats of {c} bit(s) per frame in, one beat of {} bits out \
             (pixel p at bits p * {c}).\n",
            self.out_width()
        ));
        v.push_str(&stream_module(&n, c, self.out_width()));
        let mut b = String::new();
        // Every processed pixel shifts the output register.
        b.push_str(&skid::declarations(&n, c, OutGate::Blocked("out_valid")));
        if p > 1 {
            b.push_str(&format!(
                "reg  [{}:0] {n}_count;\nwire {n}_last = ({n}_count == {});\n",
                cw - 1,
                lit(cw, p as u64 - 1)
            ));
        } else {
            b.push_str(&format!("wire {n}_last = 1'b1;\n"));
        }
        b.push_str("\nalways @(posedge clk) begin\n    if (rst) begin\n");
        if p > 1 {
            b.push_str(&format!("        {n}_count <= {};\n", lit(cw, 0)));
        }
        b.push_str("        out_valid <= 1'b0;\n");
        indent(&mut b, 8, &skid::reset(&n));
        b.push_str("    end else begin\n        if (out_valid && out_ready) out_valid <= 1'b0;\n");
        b.push_str(&format!(
            "        if ({n}_go && {n}_last) out_valid <= 1'b1;\n"
        ));
        indent(&mut b, 8, &skid::control(&n));
        if p > 1 {
            b.push_str(&format!(
                "        if ({n}_go) {n}_count <= {n}_last ? {} : {n}_count + {};\n",
                lit(cw, 0),
                lit(cw, 1)
            ));
        }
        b.push_str("    end\nend\n\n// The output register shifts right by a pixel: the earliest ends lowest.\n");
        b.push_str("always @(posedge clk) begin\n");
        indent(&mut b, 4, &skid::datapath(&n));
        let shifted = if p > 1 {
            format!("{{{n}_px, out_data[{}:{c}]}}", p * c - 1)
        } else {
            format!("{n}_px")
        };
        b.push_str(&format!("    if ({n}_go) out_data <= {shifted};\nend\n"));
        indent(&mut v, 4, &b);
        v.push_str("endmodule\n");
        v
    }

    fn cycle_model(&self) -> StageModel {
        let cw = words_for(self.channels);
        StageModel::Collect(CollectModel {
            spec: self.clone(),
            count: 0,
            skid: Skid::new(cw),
            out_valid: false,
            out: Beat::Bits(vec![0; words_for(self.out_width())]),
        })
    }
}

/// Cycle model of the collect unit. Pixel `p` is written at its final place in the output
/// beat rather than shifted there: no pixel is processed while the output is valid, so the
/// beat is only seen complete, as the Verilog's register is.
pub struct CollectModel {
    spec: Collect,
    count: usize,
    skid: Skid,
    out_valid: bool,
    out: Beat,
}

impl CollectModel {
    fn process(&mut self, px: &[u64]) {
        let c = self.spec.channels;
        let Beat::Bits(out) = &mut self.out else {
            unreachable!("a collected frame is a bit beat")
        };
        copy_bits(px, 0, out, self.count * c, c);
        if self.count + 1 == self.spec.pixels {
            self.count = 0;
            self.out_valid = true;
        } else {
            self.count += 1;
        }
    }
}

impl CycleModel for CollectModel {
    fn in_ready(&self, _out_ready: bool) -> bool {
        !self.skid.valid
    }

    fn out_valid(&self) -> bool {
        self.out_valid
    }

    fn out_data(&self) -> &Beat {
        &self.out
    }

    fn quiet_cycles(&self) -> u64 {
        self.skid.quiet_cycles(self.out_valid)
    }

    fn quiet_inputs(&self) -> u64 {
        // Pixels before the frame's last one only shift in.
        if self.skid.valid || self.out_valid {
            0
        } else {
            (self.spec.pixels - 1 - self.count) as u64
        }
    }

    fn clock(&mut self, input: Option<&Beat>, out_ready: bool) {
        let free = !self.out_valid || out_ready;
        if self.out_valid && out_ready {
            self.out_valid = false;
        }
        match self.skid.edge(input, free) {
            Some(Source::Held) => {
                let px = std::mem::take(&mut self.skid.data);
                self.process(&px);
                self.skid.data = px;
            }
            Some(Source::Input(px)) => self.process(px),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::rtl_check::{self, bits_hex, pattern, Run};
    use flip::bits::set_bit;
    use flip::train::rng::splitmix;

    fn collect(pixels: usize, channels: usize) -> Collect {
        Collect {
            index: 6,
            pixels,
            channels,
        }
    }

    /// Three random maps back to back with bubbles and back-pressure: the Verilog against the
    /// model each cycle, each delivered beat against the map itself (the flattened layout).
    fn check(u: &Collect, seed: u64, offer: u64, ready: u64) {
        rtl_check::lint(u);
        let (p, c) = (u.pixels, u.channels);
        let mut r = seed;
        let (mut beats, mut want) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            let mut map = vec![0u64; words_for(p * c)];
            for i in 0..p * c {
                set_bit(&mut map, i, splitmix(&mut r) & 1 == 1);
            }
            for px in 0..p {
                let mut b = vec![0u64; words_for(c)];
                copy_bits(&map, px * c, &mut b, 0, c);
                beats.push(Beat::Bits(b));
            }
            want.push(Beat::Bits(map));
        }
        let cycles = beats.len() * 100 / offer.min(ready) as usize + 200;
        let run = Run {
            tag: format!("p{p}c{c}r{seed}"),
            beats_hex: beats.iter().map(|b| bits_hex(b, 1, c)).collect(),
            beats: &beats,
            offer: pattern(seed ^ 0x0ff, cycles, offer),
            ready: pattern(seed ^ 0x4ead, cycles, ready),
        };
        let outs = rtl_check::check(u, &run, &|b| bits_hex(b, 1, p * c));
        assert_eq!(outs, want, "frames of {u:?}");
    }

    #[test]
    fn collect_rtl_matches_model_and_reference() {
        check(&collect(35, 3), 1, 70, 20);
        check(&collect(6, 70), 2, 90, 60);
        check(&collect(1, 5), 3, 60, 60);
        check(&collect(9, 1), 4, 100, 100);
    }

    #[test]
    fn collect_quiet_inputs() {
        for u in [collect(35, 3), collect(1, 4), collect(9, 70)] {
            let beats = vec![Beat::Bits(vec![3; words_for(u.channels)]); 3 * u.pixels];
            let promised =
                rtl_check::check_quiet_inputs(&u, &beats, &pattern(7, 100 * beats.len(), 50));
            assert_eq!(promised > 0, u.pixels > 1, "{u:?}");
        }
    }

    #[test]
    fn collect_cycles_and_latency() {
        for u in [collect(35, 3), collect(1, 4), collect(9, 70)] {
            let mut m = u.cycle_model();
            let beat = Beat::Bits(vec![0; words_for(u.channels)]);
            let mut at = Vec::new();
            let total = 3 * u.cycles();
            for t in 0..total + u.latency() + 2 {
                assert!(m.in_ready(true));
                if m.out_valid() {
                    at.push(t);
                }
                m.clock((t < total).then_some(&beat), true);
            }
            assert_eq!(at, (1..=3).map(|f| f * u.cycles()).collect::<Vec<_>>());
            assert_eq!(u.latency(), u.cycles());
        }
    }
}
