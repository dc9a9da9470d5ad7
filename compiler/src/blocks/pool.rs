//! Max-pool unit: a binary `size` x `size` max-pool with stride `size` on a pixel stream, an OR
//! over each window (as [`flip::featuremap::max_pool`]).
//!
//! Input: one pixel of `channels` bits per beat in raster order. Output: one pooled pixel of
//! `channels` bits per beat in raster order of the output map.
//!
//! Structure: an accumulator ORs the pixels of the current window row (`size` pixels of one
//! input row); at the last of them the result is ORed with the window's partial OR of the rows
//! above, kept in a one-row buffer with one word per output column, and either written back
//! (not yet the window's last row) or, on the window's last row, put in the output register.
//! The buffer word of a window is read at the window row's first pixel, into a read register,
//! and written at its last, so the buffer has the form Yosys infers block RAM from; it goes to
//! block RAM (or distributed RAM) by the same rule as the sliding window unit's line buffer
//! ([`super::swu::line_buffer_placement`]). With `size` 1 the unit is a register stage.
//!
//! Handshake: see [`super::skid`]. Cycles per frame: one pixel per cycle, `height * width`.
//! Latency (first input handshake to the first pooled pixel valid): it completes with input
//! pixel `(size - 1, size - 1)`, then the output register: `(size - 1) * width + size`.

use flip::bits::words_for;

use super::skid::{self, OutGate, Skid, Source};
use super::swu::{line_buffer_placement, RamPlacement};
use super::{
    indent, lit, stream_module, Beat, Block, CycleModel, Estimate, Family, Features, StageModel,
};
use crate::ir::bits_for;

/// A max-pool unit, layer `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxPoolUnit {
    /// Layer number (names: `l{index}_pool`).
    pub index: usize,
    /// Input rows (a multiple of `size`).
    pub height: usize,
    /// Input pixels per row (a multiple of `size`).
    pub width: usize,
    /// Bits per pixel (kept).
    pub channels: usize,
    /// Window side and stride.
    pub size: usize,
}

impl MaxPoolUnit {
    /// Output pixels per row: the words of the partial-OR row buffer.
    pub fn out_width(&self) -> usize {
        self.width / self.size
    }

    /// Output pixels per frame.
    pub fn out_pixels(&self) -> usize {
        (self.height / self.size) * self.out_width()
    }

    fn s_width(&self) -> u32 {
        bits_for(self.size as u64 - 1)
    }

    fn ox_width(&self) -> u32 {
        bits_for(self.out_width() as u64 - 1)
    }

    /// Where the row buffer goes on `family` (nowhere with `size` 1).
    fn buffer(&self, family: Family) -> RamPlacement {
        if self.size == 1 {
            RamPlacement::Logic
        } else {
            line_buffer_placement(family, self.out_width() as u64, self.channels as u64)
        }
    }
}

impl Block for MaxPoolUnit {
    fn name(&self) -> String {
        format!("l{}_pool", self.index)
    }

    fn cycles(&self) -> u64 {
        (self.height * self.width) as u64
    }

    fn latency(&self) -> u64 {
        ((self.size - 1) * self.width + self.size) as u64
    }

    fn features(&self, family: Family) -> Features {
        let c = self.channels as f64;
        if self.size == 1 {
            return Features {
                select: c,
                blocks: 1.0,
                ..Features::default()
            };
        }
        // The skid mux, the two ORs with their masks (one LUT4 per bit takes both), and for
        // a buffer left in flip-flops its read mux, counted as for the sliding window unit's
        // line buffer. Not yet calibrated against Yosys.
        let read_mux = if self.buffer(family) == RamPlacement::Logic {
            (self.out_width() - 1) as f64 * c / 2.0
        } else {
            0.0
        };
        Features {
            select: 2.0 * c + read_mux,
            blocks: 1.0,
            ..Features::default()
        }
    }

    fn estimate_for(&self, family: Family) -> Estimate {
        let c = self.channels as u64;
        let place = self.buffer(family);
        let ffs = if self.size == 1 {
            // Skid and output registers, valid bits.
            2 * c + 2
        } else {
            // Skid, accumulator and output registers, counters, valid bits, and the row
            // buffer: in logic its words and the read register, in distributed RAM the read
            // register, in block RAM nothing (the read register is the block's own).
            3 * c
                + match place {
                    RamPlacement::Logic => (self.out_width() as u64 + 1) * c,
                    RamPlacement::Distributed(_) => c,
                    RamPlacement::Block(_) => 0,
                }
                + u64::from(2 * self.s_width() + self.ox_width())
                + 2
        };
        Estimate {
            luts: family.costs().luts(&self.features(family)).round() as u64,
            ffs,
            memory_bits: 0,
            brams: match place {
                RamPlacement::Block(n) => n,
                _ => 0,
            },
            sprams: 0,
        }
    }

    fn in_width(&self) -> usize {
        self.channels
    }

    fn out_width(&self) -> usize {
        self.channels
    }

    fn emit_verilog(&self, header: &str) -> String {
        let n = self.name();
        let (h, w, c, s) = (self.height, self.width, self.channels, self.size);
        let ow = self.out_width();
        let (sw, oxw) = (self.s_width(), self.ox_width());
        let mut v = String::new();
        v.push_str(header);
        v.push_str(&format!(
            "// Max-pool unit: {h}x{w} pixels of {c} bit(s), {s}x{s} windows (an OR), stride \
             {s}\n// ({} pooled pixels per frame of {} cycles).\n",
            self.out_pixels(),
            self.cycles()
        ));
        v.push_str(&stream_module(&n, c, c));
        let mut b = String::new();
        let cm = c - 1;
        if s == 1 {
            // Every pixel is its own window.
            b.push_str(&skid::declarations(&n, c, OutGate::Blocked("out_valid")));
            b.push_str(
                "\nalways @(posedge clk) begin\n    if (rst) begin\n        out_valid <= 1'b0;\n",
            );
            indent(&mut b, 8, &skid::reset(&n));
            b.push_str(
                "    end else begin\n        if (out_valid && out_ready) out_valid <= 1'b0;\n",
            );
            b.push_str(&format!("        if ({n}_go) out_valid <= 1'b1;\n"));
            indent(&mut b, 8, &skid::control(&n));
            b.push_str("    end\nend\n\nalways @(posedge clk) begin\n");
            indent(&mut b, 4, &skid::datapath(&n));
            b.push_str(&format!("    if ({n}_go) out_data <= {n}_px;\nend\n"));
        } else {
            b.push_str(&format!(
                "// Position: pixel dx of the window row, output column ox, window row dy.\n\
                 reg  [{sm}:0] {n}_dx;\nreg  [{om}:0] {n}_ox;\nreg  [{sm}:0] {n}_dy;\n\
                 wire {n}_dx_last = ({n}_dx == {smax});\n\
                 wire {n}_ox_last = ({n}_ox == {omax});\n\
                 wire {n}_dy_last = ({n}_dy == {smax});\n\
                 // The pixel completes a window.\n\
                 wire {n}_emit = {n}_dx_last && {n}_dy_last;\n",
                sm = sw - 1,
                om = oxw - 1,
                smax = lit(sw, s as u64 - 1),
                omax = lit(oxw, ow as u64 - 1),
            ));
            b.push_str(&skid::declarations(
                &n,
                c,
                OutGate::WritesOut(&format!("{n}_emit")),
            ));
            b.push_str(&format!(
                "\n// `{n}_acc`: OR of the window row's pixels so far. `{n}_part` word ox: OR \
                 of the rows of\n// output column ox's window done so far; `{n}_rd`: that \
                 word, read at the window row's first pixel.\n\
                 reg  [{cm}:0] {n}_acc;\nreg  [{cm}:0] {n}_part [0:{}];\nreg  [{cm}:0] {n}_rd;\n\
                 wire [{cm}:0] {n}_row = (({n}_dx == {}) ? {{{c}{{1'b0}}}} : {n}_acc) | {n}_px;\n\
                 wire [{cm}:0] {n}_or = (({n}_dy == {}) ? {{{c}{{1'b0}}}} : {n}_rd) | {n}_row;\n\n",
                ow - 1,
                lit(sw, 0),
                lit(sw, 0),
            ));
            b.push_str(&format!(
                "always @(posedge clk) begin\n    if (rst) begin\n        {n}_dx <= {z};\n        \
                 {n}_ox <= {zo};\n        {n}_dy <= {z};\n        out_valid <= 1'b0;\n",
                z = lit(sw, 0),
                zo = lit(oxw, 0)
            ));
            indent(&mut b, 8, &skid::reset(&n));
            b.push_str(
                "    end else begin\n        if (out_valid && out_ready) out_valid <= 1'b0;\n",
            );
            b.push_str(&format!(
                "        if ({n}_go && {n}_emit) out_valid <= 1'b1;\n"
            ));
            indent(&mut b, 8, &skid::control(&n));
            b.push_str(&format!(
                "        if ({n}_go) begin\n            \
                 {n}_dx <= {n}_dx_last ? {z} : {n}_dx + {one};\n            \
                 if ({n}_dx_last) {n}_ox <= {n}_ox_last ? {zo} : {n}_ox + {oneo};\n            \
                 if ({n}_dx_last && {n}_ox_last) {n}_dy <= {n}_dy_last ? {z} : {n}_dy + {one};\n        \
                 end\n    end\nend\n\n",
                z = lit(sw, 0),
                one = lit(sw, 1),
                zo = lit(oxw, 0),
                oneo = lit(oxw, 1),
            ));
            b.push_str("always @(posedge clk) begin\n");
            indent(&mut b, 4, &skid::datapath(&n));
            b.push_str(&format!(
                "    if ({n}_go) begin\n        {n}_acc <= {n}_row;\n        \
                 if ({n}_emit) out_data <= {n}_or;\n    end\nend\n\n\
                 // The row buffer alone, in the form block RAM is inferred from.\n\
                 always @(posedge clk) begin\n    \
                 if ({n}_go && {n}_dx == {z}) {n}_rd <= {n}_part[{n}_ox];\n    \
                 if ({n}_go && {n}_dx_last && !{n}_dy_last) {n}_part[{n}_ox] <= {n}_or;\nend\n",
                z = lit(sw, 0),
            ));
        }
        indent(&mut v, 4, &b);
        v.push_str("endmodule\n");
        v
    }

    fn cycle_model(&self) -> StageModel {
        let cw = words_for(self.channels);
        StageModel::Pool(PoolModel {
            spec: self.clone(),
            words: cw,
            dx: 0,
            ox: 0,
            dy: 0,
            skid: Skid::new(cw),
            acc: vec![0; cw],
            part: vec![0; self.out_width() * cw],
            out_valid: false,
            out: Beat::Bits(vec![0; cw]),
        })
    }
}

/// Cycle model of the max-pool unit: the Verilog's counters, accumulator and row buffer (read
/// where the Verilog's read register would have it).
pub struct PoolModel {
    spec: MaxPoolUnit,
    words: usize,
    dx: usize,
    ox: usize,
    dy: usize,
    skid: Skid,
    acc: Vec<u64>,
    part: Vec<u64>,
    out_valid: bool,
    out: Beat,
}

impl PoolModel {
    fn emits(&self) -> bool {
        self.dx + 1 == self.spec.size && self.dy + 1 == self.spec.size
    }

    fn process(&mut self, px: &[u64]) {
        let (s, cw) = (self.spec.size, self.words);
        // A window row's first pixel starts a new OR, a window's first row a new partial.
        let keep_acc = if self.dx == 0 { 0 } else { u64::MAX };
        for (a, p) in self.acc.iter_mut().zip(px) {
            *a = (*a & keep_acc) | p;
        }
        if self.dx + 1 == s {
            let keep_part = if self.dy == 0 { 0 } else { u64::MAX };
            let part = &mut self.part[self.ox * cw..(self.ox + 1) * cw];
            for (p, a) in part.iter_mut().zip(&self.acc) {
                *p = (*p & keep_part) | a;
            }
            if self.dy + 1 == s {
                let Beat::Bits(out) = &mut self.out else {
                    unreachable!("pooled pixels are bit beats")
                };
                out.copy_from_slice(part);
                self.out_valid = true;
            }
        }
        self.dx += 1;
        if self.dx == s {
            self.dx = 0;
            self.ox += 1;
            if self.ox == self.spec.out_width() {
                self.ox = 0;
                self.dy = (self.dy + 1) % s;
            }
        }
    }
}

impl CycleModel for PoolModel {
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
        // Pixels before the next one that completes a window are processed whatever the
        // output does, changing neither handshake. Counted within the band of `size` rows:
        // the window-completing pixels of the last row of the band are at `dx = size - 1`.
        let (s, w) = (self.spec.size, self.spec.width);
        if self.skid.valid {
            0
        } else if self.dy + 1 < s {
            let at = self.dy * w + self.ox * s + self.dx;
            ((s - 1) * w + s - 1 - at) as u64
        } else {
            (s - 1 - self.dx) as u64
        }
    }

    fn clock(&mut self, input: Option<&Beat>, out_ready: bool) {
        let free = !self.out_valid || out_ready;
        if self.out_valid && out_ready {
            self.out_valid = false;
        }
        let can = !self.emits() || free;
        match self.skid.edge(input, can) {
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
    use flip::featuremap::copy_bits;
    use flip::model::MaxPool;
    use flip::train::rng::splitmix;

    fn pool(h: usize, w: usize, c: usize, s: usize) -> MaxPoolUnit {
        MaxPoolUnit {
            index: 4,
            height: h,
            width: w,
            channels: c,
            size: s,
        }
    }

    /// Pixel beats of `map` (`pixels` pixels of `c` bits).
    fn beats_of(map: &[u64], pixels: usize, c: usize) -> Vec<Beat> {
        (0..pixels)
            .map(|p| {
                let mut b = vec![0u64; words_for(c)];
                copy_bits(map, p * c, &mut b, 0, c);
                Beat::Bits(b)
            })
            .collect()
    }

    /// Three random maps back to back with bubbles and back-pressure: the Verilog against the
    /// model each cycle, the pooled pixels against `featuremap::max_pool`.
    fn check(p: &MaxPoolUnit, seed: u64, offer: u64, ready: u64) {
        rtl_check::lint(p);
        let spec = MaxPool {
            height: p.height,
            width: p.width,
            channels: p.channels,
            size: p.size,
        };
        let mut r = seed;
        let (mut beats, mut want) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            // Sparse ones, so that a missing OR term shows.
            let mut map = vec![0u64; words_for(spec.input_size())];
            for i in 0..spec.input_size() {
                set_bit(&mut map, i, splitmix(&mut r).is_multiple_of(5));
            }
            let mut out = vec![0u64; words_for(spec.output_size())];
            flip::featuremap::max_pool(&spec, &map, &mut out);
            beats.extend(beats_of(&map, p.height * p.width, p.channels));
            want.extend(beats_of(&out, p.out_pixels(), p.channels));
        }
        let cycles = beats.len() * 100 / offer.min(ready) as usize + 200;
        let c = p.channels;
        let run = Run {
            tag: format!("s{}c{c}r{seed}", p.size),
            beats_hex: beats.iter().map(|b| bits_hex(b, 1, c)).collect(),
            beats: &beats,
            offer: pattern(seed ^ 0x0ff, cycles, offer),
            ready: pattern(seed ^ 0x4ead, cycles, ready),
        };
        let outs = rtl_check::check(p, &run, &|b| bits_hex(b, 1, c));
        assert_eq!(outs, want, "pooled pixels of {p:?}");
    }

    #[test]
    fn pool_rtl_matches_model_and_reference() {
        check(&pool(6, 10, 3, 2), 1, 70, 30);
        check(&pool(9, 6, 70, 3), 2, 60, 60);
        check(&pool(7, 5, 3, 1), 3, 80, 50);
        check(&pool(4, 2, 70, 2), 4, 100, 100);
    }

    #[test]
    fn pool_quiet_inputs() {
        for p in [pool(6, 10, 3, 2), pool(9, 6, 2, 3), pool(7, 5, 1, 1)] {
            let beat = Beat::Bits(vec![1; words_for(p.channels)]);
            let beats = vec![beat; 3 * p.height * p.width];
            let promised =
                rtl_check::check_quiet_inputs(&p, &beats, &pattern(7, 100 * beats.len(), 50));
            assert_eq!(promised > 0, p.size > 1, "{p:?}");
        }
    }

    #[test]
    fn pool_cycles_and_latency() {
        for p in [pool(6, 10, 3, 2), pool(9, 6, 2, 3), pool(7, 5, 1, 1)] {
            let mut m = p.cycle_model();
            let beat = Beat::Bits(vec![0; words_for(p.channels)]);
            let mut at = Vec::new();
            let total = 3 * p.cycles();
            for t in 0..total + p.latency() + 2 {
                assert!(m.in_ready(true));
                if m.out_valid() {
                    at.push(t);
                }
                m.clock((t < total).then_some(&beat), true);
            }
            assert_eq!(at.len(), 3 * p.out_pixels());
            for f in 0..3u64 {
                assert_eq!(
                    at[f as usize * p.out_pixels()],
                    f * p.cycles() + p.latency()
                );
            }
        }
        assert_eq!(pool(6, 10, 3, 2).latency(), 10 + 2);
    }

    #[test]
    fn pool_estimate() {
        // synth_ice40 (Yosys 0.23) on 26x26 pixels of 16 channels: 1 SB_RAM40_4K, 56 FFs.
        let e = pool(26, 26, 16, 2).estimate_for(Family::Ice40);
        assert_eq!((e.brams, e.ffs), (1, 56));
        // A 3-word buffer of 3 bits stays in flip-flops on iCE40.
        let small = pool(6, 6, 3, 2).estimate_for(Family::Ice40);
        assert_eq!((small.brams, small.ffs), (0, 3 * 3 + 4 * 3 + 2 + 2 + 2));
    }
}
