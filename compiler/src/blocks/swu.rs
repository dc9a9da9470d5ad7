//! Sliding window unit: turns a stream of feature-map pixels into the stream of a
//! convolution's windows (stride 1, no padding), one window per output beat.
//!
//! Input: one pixel per beat in raster order, `planes` planes of `channels` bits (Verilog:
//! plane `k` at bits `k * channels ..`). Output: one window per beat in raster order of the
//! output pixels, `planes` planes of `kernel * kernel * channels` bits, window bit
//! `(ky * kernel + kx) * channels + c` = input pixel `(y + ky, x + kx)` channel `c`
//! (Verilog: plane `k` at bits `k * window ..`), as [`flip::featuremap::window`] cuts them.
//!
//! Structure (FINN's idea of line buffers, reorganised for one window per pixel): the line
//! buffer is a memory of `width` words, word `x` holding the last `kernel - 1` pixels of
//! column `x`, oldest row lowest. Each processed pixel at column `x` forms the newest window
//! column from the line buffer word (read one pixel earlier, into a read register) and the
//! pixel itself; writes that column minus its oldest pixel back to word `x`; reads word
//! `x + 1` for the next pixel; and shifts the column into a window register of the
//! `kernel - 1` previous columns. A pixel at `(y, x)` with `y, x >= kernel - 1` completes the
//! window of output pixel `(y - kernel + 1, x - kernel + 1)`, which goes straight into the
//! output register. Nothing is emptied between frames: stale rows leave the line buffer before
//! they would be read, so the next frame's pixels follow back to back.
//!
//! Block RAM: the line buffer is written in the style Yosys infers RAM from (one write port
//! and one registered read port with enable, read and write on different addresses, no reset),
//! and the choice is left to Yosys's `memory_libmap`, which takes the cheapest by its costs:
//! a bit in logic 1, a block RAM the family's `brams.txt` cost (iCE40 64, ECP5 128), an ECP5
//! distributed RAM `TRELLIS_DPR16X4` (16 x 4) 4. So on iCE40 a buffer of a few hundred bits or
//! more goes to block RAM and smaller ones stay in flip-flops; on ECP5 shallow buffers go to
//! distributed RAM (64-bit words: up to 48 deep), deeper ones to block RAM. [`line_buffer_placement`] reproduces
//! the rule for the estimate (checked with Yosys 0.23 `synth_ice40` / `synth_ecp5`).
//!
//! Handshake: see [`super::skid`]. Cycles per frame: one pixel per cycle, `height * width`.
//! Latency (first input handshake to the first window valid): the window of output pixel
//! `(0, 0)` completes with input pixel `(kernel - 1, kernel - 1)`, then the output register:
//! `(kernel - 1) * width + kernel`.

use flip::bits::words_for;
use flip::featuremap::copy_bits;

use super::skid::{self, OutGate, Skid, Source};
use super::{
    indent, lit, stream_module, Beat, Block, CycleModel, Estimate, Family, Features, StageModel,
};
use crate::ir::bits_for;

/// A sliding window unit in front of convolution layer `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Layer number of the convolution it feeds (names: `l{index}_swu`).
    pub index: usize,
    /// Input rows.
    pub height: usize,
    /// Input pixels per row.
    pub width: usize,
    /// Bits per pixel and plane.
    pub channels: usize,
    /// Planes (bit planes of the first layer, else 1).
    pub planes: usize,
    /// Kernel side (at most `height` and `width`).
    pub kernel: usize,
}

/// Where Yosys puts a RAM with one write port and one registered read port (a line buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamPlacement {
    /// Flip-flops and read multiplexers.
    Logic,
    /// This many block RAMs of the family.
    Block(u64),
    /// This many ECP5 `TRELLIS_DPR16X4` distributed RAMs (in slices; not LUT4 cells, so not
    /// in the LUT count of [`super::cost`]'s convention either).
    Distributed(u64),
}

/// Cost `memory_libmap` gives one ECP5 `TRELLIS_DPR16X4` (16 x 4 bits, `lutrams.txt`).
const ECP5_DPR16X4_COST: u64 = 4;

/// Where Yosys's `memory_libmap` puts a `depth` x `width` RAM on `family`: the cheapest of
/// logic (1 per bit), block RAM and (ECP5) distributed RAM, block RAM on a tie. Observed with
/// Yosys 0.23: iCE40 28 x 64 -> 4 `SB_RAM40_4K`, 5 x 6 -> flip-flops; ECP5 5 x 6 -> 2, 28 x 64
/// and 32 x 64 -> 32, 48 x 64 -> 48 `TRELLIS_DPR16X4`, 64 x 64 -> 2 `DP16KD`.
pub fn line_buffer_placement(family: Family, depth: u64, width: u64) -> RamPlacement {
    if depth <= 1 || width == 0 || family == Family::Asic {
        return RamPlacement::Logic;
    }
    let c = family.costs();
    let blocks = c.bram_blocks(depth, width);
    let mut best = (depth * width, RamPlacement::Logic);
    if family == Family::Ecp5 {
        let units = depth.div_ceil(16) * width.div_ceil(4);
        if units * ECP5_DPR16X4_COST < best.0 {
            best = (units * ECP5_DPR16X4_COST, RamPlacement::Distributed(units));
        }
    }
    if blocks.saturating_mul(c.bram_cost) <= best.0 {
        best = (blocks * c.bram_cost, RamPlacement::Block(blocks));
    }
    best.1
}

impl SlidingWindow {
    /// Bits of one pixel beat (all planes).
    fn pixel_bits(&self) -> usize {
        self.planes * self.channels
    }

    /// Bits of one window per plane.
    pub fn window(&self) -> usize {
        self.kernel * self.kernel * self.channels
    }

    /// Bits of one line buffer word: the last `kernel - 1` pixels of a column.
    fn line_bits(&self) -> usize {
        (self.kernel - 1) * self.pixel_bits()
    }

    /// Windows per frame.
    pub fn windows(&self) -> usize {
        (self.height + 1 - self.kernel) * (self.width + 1 - self.kernel)
    }

    /// Where the line buffer goes on `family` (nowhere with a 1 x 1 kernel).
    fn line_buffer(&self, family: Family) -> RamPlacement {
        if self.kernel == 1 {
            return RamPlacement::Logic;
        }
        line_buffer_placement(family, self.width as u64, self.line_bits() as u64)
    }

    fn x_width(&self) -> u32 {
        bits_for(self.width.saturating_sub(1) as u64)
    }

    fn y_width(&self) -> u32 {
        bits_for(self.height.saturating_sub(1) as u64)
    }
}

impl Block for SlidingWindow {
    fn name(&self) -> String {
        format!("l{}_swu", self.index)
    }

    fn cycles(&self) -> u64 {
        (self.height * self.width) as u64
    }

    fn latency(&self) -> u64 {
        ((self.kernel - 1) * self.width + self.kernel) as u64
    }

    fn features(&self, family: Family) -> Features {
        // The skid register's mux, and for a line buffer left in flip-flops its read mux:
        // `width - 1` two-input muxes per bit, about two to a LUT4, counted against the
        // two-input-mux cost of a select bit. Not yet calibrated against Yosys.
        let read_mux = if self.kernel > 1 && self.line_buffer(family) == RamPlacement::Logic {
            (self.width - 1) as f64 * self.line_bits() as f64 / 2.0
        } else {
            0.0
        };
        Features {
            select: self.pixel_bits() as f64 + read_mux,
            blocks: 1.0,
            ..Features::default()
        }
    }

    fn estimate_for(&self, family: Family) -> Estimate {
        let (w, lbits) = (self.width as u64, self.line_bits() as u64);
        let place = self.line_buffer(family);
        let pb = self.pixel_bits() as u64;
        let k = self.kernel as u64;
        Estimate {
            luts: family.costs().luts(&self.features(family)).round() as u64,
            // Skid, window and output registers, counters, valid bits, and the line buffer:
            // in logic its words and the read register, in distributed RAM the read register,
            // in block RAM nothing (the read register is the block's own). Checked with
            // `synth_ice40` (Yosys 0.23) on the sizes of `swu_line_buffer_placement`.
            ffs: pb
                + (k - 1) * k * pb
                + k * k * pb
                + match place {
                    RamPlacement::Logic => (w + 1) * lbits,
                    RamPlacement::Distributed(_) => lbits,
                    RamPlacement::Block(_) => 0,
                }
                + u64::from(2 * self.x_width() + self.y_width())
                + 2
                + u64::from(k > 1),
            memory_bits: 0,
            brams: match place {
                RamPlacement::Block(n) => n,
                _ => 0,
            },
            sprams: 0,
        }
    }

    fn in_width(&self) -> usize {
        self.pixel_bits()
    }

    fn out_width(&self) -> usize {
        self.planes * self.window()
    }

    fn emit_verilog(&self, header: &str) -> String {
        let n = self.name();
        let (h, w, c, p, k) = (
            self.height,
            self.width,
            self.channels,
            self.planes,
            self.kernel,
        );
        let pb = self.pixel_bits();
        let (xw, yw) = (self.x_width(), self.y_width());
        let mut v = String::new();
        v.push_str(header);
        v.push_str(&format!(
            "// Sliding window unit: {h}x{w} pixels of {c} bit(s) x {p} plane(s) in, one {k}x{k} \
             window per beat out\n// ({} windows per frame of {} cycles).\n",
            self.windows(),
            self.cycles()
        ));
        v.push_str(&stream_module(&n, self.in_width(), self.out_width()));
        let mut b = String::new();
        b.push_str(&format!(
            "reg  [{}:0] {n}_x;\nreg  [{}:0] {n}_y;\n",
            xw - 1,
            yw - 1
        ));
        // Whether the pixel at (y, x) completes a window. Above 1x1 it is a register updated
        // with the counters, so that the output register's enable (a load of K x K pixels)
        // starts one LUT level from flip-flops instead of behind the counters' compares.
        let completes = |y: &str, x: &str| {
            format!(
                "({y} >= {}) && ({x} >= {})",
                lit(yw, k as u64 - 1),
                lit(xw, k as u64 - 1)
            )
        };
        if k == 1 {
            b.push_str(&format!(
                "// Every pixel completes a window.\nwire {n}_emit = 1'b1;\n"
            ));
        } else {
            b.push_str(&format!(
                "// The pixel at (y, x) completes a window: {}.\nreg  {n}_emit;\n",
                completes(&format!("{n}_y"), &format!("{n}_x"))
            ));
        }
        // A pixel waits only if it completes a window while the output register is full.
        // Above 1x1 that condition is a register of its own, so that the take decision (the
        // enable of every register here) is one LUT4 of registers.
        if k == 1 {
            b.push_str(&skid::declarations(&n, pb, OutGate::Blocked("out_valid")));
        } else {
            b.push_str(&format!(
                "// The next pixel completes a window and the output register is full.\n\
                 reg  {n}_blocked;\n"
            ));
            b.push_str(&skid::declarations(
                &n,
                pb,
                OutGate::Blocked(&format!("{n}_blocked")),
            ));
        }
        b.push_str(&format!(
            "wire {n}_x_last = ({n}_x == {});\nwire {n}_y_last = ({n}_y == {});\n",
            lit(xw, w as u64 - 1),
            lit(yw, h as u64 - 1)
        ));
        // The next column is a register of its own, one step ahead of x: it addresses the line
        // buffer's read, which on the ECP5 is a LUT RAM whose address then comes straight from
        // flip-flops (behind x's compare and increment it was the critical path of the
        // Fashion-MNIST CNN's fourth window unit, 11.0 ns with 9.8 of routing).
        b.push_str(&format!(
            "reg  [{}:0] {n}_xn;\nwire [{}:0] {n}_x_next = {n}_xn;\n\
             wire [{}:0] {n}_y_next = {n}_x_last ? ({n}_y_last ? {} : {n}_y + {}) : {n}_y;\n",
            xw - 1,
            xw - 1,
            yw - 1,
            lit(yw, 0),
            lit(yw, 1)
        ));
        // The window as K columns of K pixels: pixel (ky, kx) at bits (kx * K + ky) * pb.
        if k == 1 {
            b.push_str(&format!("wire [{}:0] {n}_full = {n}_px;\n", pb - 1));
        } else {
            let lb = self.line_bits();
            b.push_str(&format!(
                "\n// Line buffer: word x holds the last {} pixel(s) of column x, oldest lowest; \
                 `{n}_rd` is\n// the word of the pixel processed next. The window register \
                 holds the {} columns before it.\n\
                 reg  [{lm}:0] {n}_line [0:{}];\nreg  [{lm}:0] {n}_rd;\n\
                 reg  [{}:0] {n}_win;\n\
                 wire [{}:0] {n}_col = {{{n}_px, {n}_rd}};\n\
                 wire [{}:0] {n}_full = {{{n}_col, {n}_win}};\n",
                k - 1,
                k - 1,
                w - 1,
                (k - 1) * k * pb - 1,
                k * pb - 1,
                k * k * pb - 1,
                lm = lb - 1,
            ));
        }
        let mut window = Vec::with_capacity(p * k * k);
        for plane in (0..p).rev() {
            for ky in (0..k).rev() {
                for kx in (0..k).rev() {
                    let lo = (kx * k + ky) * pb + plane * c;
                    window.push(format!("{n}_full[{}:{lo}]", lo + c - 1));
                }
            }
        }
        b.push_str(&format!(
            "// Plane k of the output at bits k * {}, window bit (ky * {k} + kx) * {c} + c.\n\
             wire [{}:0] {n}_window = {{{}}};\n\n",
            self.window(),
            self.out_width() - 1,
            window.join(", ")
        ));
        // Control registers.
        b.push_str(&format!(
            "always @(posedge clk) begin\n    if (rst) begin\n        {n}_x <= {};\n        \
             {n}_xn <= {};\n        {n}_y <= {};\n        out_valid <= 1'b0;\n",
            lit(xw, 0),
            lit(xw, u64::from(w > 1)),
            lit(yw, 0)
        ));
        indent(&mut b, 8, &skid::reset(&n));
        if k > 1 {
            b.push_str(&format!(
                "        {n}_emit <= 1'b0;\n        {n}_blocked <= 1'b0;\n"
            ));
        }
        b.push_str("    end else begin\n        if (out_valid && out_ready) out_valid <= 1'b0;\n");
        b.push_str(&format!(
            "        if ({n}_go && {n}_emit) out_valid <= 1'b1;\n"
        ));
        indent(&mut b, 8, &skid::control(&n));
        let emit_next = if k > 1 {
            let completes_next = completes(&format!("{n}_y_next"), &format!("{n}_x_next"));
            b.push_str(&format!(
                "        {n}_blocked <= ({n}_go ? ({completes_next}) : {n}_emit)\n            \
                 && (({n}_go && {n}_emit) || (out_valid && !out_ready));\n"
            ));
            format!("            {n}_emit <= {completes_next};\n")
        } else {
            String::new()
        };
        b.push_str(&format!(
            "        if ({n}_go) begin\n            {n}_x <= {n}_x_next;\n            \
             {n}_xn <= ({n}_xn == {}) ? {} : {n}_xn + {};\n            \
             {n}_y <= {n}_y_next;\n{emit_next}        end\n    end\nend\n\n",
            lit(xw, w as u64 - 1),
            lit(xw, 0),
            lit(xw, 1)
        ));
        // Datapath registers.
        b.push_str("always @(posedge clk) begin\n");
        indent(&mut b, 4, &skid::datapath(&n));
        b.push_str(&format!("    if ({n}_go) begin\n"));
        if k > 1 {
            let shifted = if k == 2 {
                format!("{n}_col")
            } else {
                format!("{n}_full[{}:{}]", k * k * pb - 1, k * pb)
            };
            b.push_str(&format!("        {n}_win <= {shifted};\n"));
        }
        b.push_str(&format!(
            "        if ({n}_emit) out_data <= {n}_window;\n    end\nend\n"
        ));
        if k > 1 {
            b.push_str(&format!(
                "\n// The line buffer alone, in the form block RAM is inferred from.\n\
                 always @(posedge clk) begin\n    if ({n}_go) begin\n        \
                 {n}_line[{n}_x] <= {n}_col[{}:{pb}];\n        \
                 {n}_rd <= {n}_line[{n}_x_next];\n    end\nend\n",
                k * pb - 1
            ));
        }
        indent(&mut v, 4, &b);
        v.push_str("endmodule\n");
        v
    }

    fn cycle_model(&self) -> StageModel {
        let pw = self.planes * words_for(self.channels);
        StageModel::Swu(SwuModel {
            spec: self.clone(),
            pixel_words: pw,
            x: 0,
            y: 0,
            skid: Skid::new(pw),
            rows: vec![0; self.kernel * self.width * pw],
            out_valid: false,
            out: Beat::Bits(vec![0; self.planes * words_for(self.window())]),
        })
    }
}

/// Cycle model of the sliding window unit: the Verilog's counters and handshakes; the line
/// buffer, read register and window register together are kept as the last `kernel` rows of
/// pixels (row `r` at `r % kernel`), from which a completed window is cut.
pub struct SwuModel {
    spec: SlidingWindow,
    pixel_words: usize,
    x: usize,
    y: usize,
    skid: Skid,
    rows: Vec<u64>,
    out_valid: bool,
    out: Beat,
}

impl SwuModel {
    fn emits(&self) -> bool {
        let k = self.spec.kernel;
        self.y + 1 >= k && self.x + 1 >= k
    }

    /// Takes the pixel at `(y, x)`.
    fn process(&mut self, px: &[u64]) {
        let (k, w, c, pw) = (
            self.spec.kernel,
            self.spec.width,
            self.spec.channels,
            self.pixel_words,
        );
        let at = ((self.y % k) * w + self.x) * pw;
        self.rows[at..at + pw].copy_from_slice(&px[..pw]);
        if self.emits() {
            let (cw, ww) = (words_for(c), words_for(self.spec.window()));
            let Beat::Bits(out) = &mut self.out else {
                unreachable!("windows are bit beats")
            };
            if cw == 1 {
                // A pixel's plane is one word: OR it into the cleared window, a word or two
                // per pixel and plane.
                out.fill(0);
                let mask = u64::MAX >> (64 - c);
                // Window row `ky` is image row `y + 1 - k + ky`, kept at that modulo `k`:
                // one division per window rather than one per row.
                let first = (self.y + 1) % k;
                for ky in 0..k {
                    let row = if first + ky >= k {
                        first + ky - k
                    } else {
                        first + ky
                    };
                    for kx in 0..k {
                        let src = &self.rows[(row * w + self.x + 1 - k + kx) * pw..][..pw];
                        let at = (ky * k + kx) * c;
                        let (i, s) = (at / 64, at % 64);
                        for (plane, &v) in src.iter().enumerate() {
                            let v = v & mask;
                            let o = &mut out[plane * ww..][..ww];
                            o[i] |= v << s;
                            if s + c > 64 {
                                o[i + 1] |= v >> (64 - s);
                            }
                        }
                    }
                }
            } else {
                for ky in 0..k {
                    let row = (self.y + 1 - k + ky) % k;
                    for kx in 0..k {
                        let src = (row * w + self.x + 1 - k + kx) * pw;
                        for plane in 0..self.spec.planes {
                            copy_bits(
                                &self.rows[src + plane * cw..],
                                0,
                                &mut out[plane * ww..(plane + 1) * ww],
                                (ky * k + kx) * c,
                                c,
                            );
                        }
                    }
                }
            }
            self.out_valid = true;
        }
        self.x += 1;
        if self.x == w {
            self.x = 0;
            self.y = if self.y + 1 == self.spec.height {
                0
            } else {
                self.y + 1
            };
        }
    }
}

impl CycleModel for SwuModel {
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
        // output does, changing neither handshake.
        let (k, w) = (self.spec.kernel, self.spec.width);
        if self.skid.valid {
            0
        } else if self.y + 1 < k {
            ((k - 1 - self.y) * w + k - 1 - self.x) as u64
        } else {
            (k - 1).saturating_sub(self.x) as u64
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
    use flip::model::Conv;
    use flip::train::rng::splitmix;

    /// `frames` random maps of `planes` planes, each plane `words_for(h * w * c)` words.
    fn maps(s: &SlidingWindow, frames: usize, seed: u64) -> Vec<Vec<u64>> {
        let n = s.height * s.width * s.channels;
        let mut r = seed;
        (0..frames)
            .map(|_| {
                let mut m = vec![0u64; s.planes * words_for(n)];
                for k in 0..s.planes {
                    for i in 0..n {
                        set_bit(&mut m[k * words_for(n)..], i, splitmix(&mut r) & 1 == 1);
                    }
                }
                m
            })
            .collect()
    }

    /// The pixel beats of a map, raster order.
    fn pixel_beats(s: &SlidingWindow, map: &[u64]) -> Vec<Beat> {
        let (n, c, cw) = (
            s.height * s.width * s.channels,
            s.channels,
            words_for(s.channels),
        );
        (0..s.height * s.width)
            .map(|px| {
                let mut b = vec![0u64; s.planes * cw];
                for k in 0..s.planes {
                    copy_bits(&map[k * words_for(n)..], px * c, &mut b[k * cw..], 0, c);
                }
                Beat::Bits(b)
            })
            .collect()
    }

    /// The reference windows of a map, as beats.
    fn reference(s: &SlidingWindow, map: &[u64]) -> Vec<Beat> {
        let conv = Conv {
            height: s.height,
            width: s.width,
            channels: s.channels,
            kernel: s.kernel,
        };
        let (n, ww) = (words_for(conv.input_size()), words_for(conv.window()));
        let mut out = Vec::new();
        for y in 0..conv.out_height() {
            for x in 0..conv.out_width() {
                let mut b = vec![0u64; s.planes * ww];
                for k in 0..s.planes {
                    flip::featuremap::window(
                        &conv,
                        &map[k * n..(k + 1) * n],
                        y,
                        x,
                        &mut b[k * ww..(k + 1) * ww],
                    );
                }
                out.push(Beat::Bits(b));
            }
        }
        out
    }

    /// Simulates `s` on three back-to-back frames with bubbles and back-pressure, against
    /// the cycle model each cycle and against the reference windows.
    fn check(s: &SlidingWindow, seed: u64, offer: u64, ready: u64) {
        rtl_check::lint(s);
        let frames = maps(s, 3, seed);
        let beats: Vec<Beat> = frames.iter().flat_map(|m| pixel_beats(s, m)).collect();
        let want: Vec<Beat> = frames.iter().flat_map(|m| reference(s, m)).collect();
        let (pb, ob) = (s.channels, s.window());
        let cycles = beats.len() * 100 / offer.min(ready) as usize + 200;
        let run = Run {
            tag: format!("k{}c{}p{}s{seed}", s.kernel, s.channels, s.planes),
            beats_hex: beats.iter().map(|b| bits_hex(b, s.planes, pb)).collect(),
            beats: &beats,
            offer: pattern(seed ^ 0x0ff, cycles, offer),
            ready: pattern(seed ^ 0x4ead, cycles, ready),
        };
        let outs = rtl_check::check(s, &run, &|b| bits_hex(b, s.planes, ob));
        assert_eq!(outs.len(), want.len(), "every window delivered");
        for (i, (got, want)) in outs.iter().zip(&want).enumerate() {
            assert_eq!(got, want, "window {i} of {:?}", s);
        }
    }

    fn swu(h: usize, w: usize, c: usize, p: usize, k: usize) -> SlidingWindow {
        SlidingWindow {
            index: 2,
            height: h,
            width: w,
            channels: c,
            planes: p,
            kernel: k,
        }
    }

    #[test]
    fn swu_rtl_matches_model_and_reference() {
        // Odd sizes, one and several planes, every kernel from 1 to the map's side.
        check(&swu(7, 5, 3, 1, 3), 1, 70, 60);
        check(&swu(5, 7, 3, 2, 1), 2, 80, 50);
        check(&swu(7, 5, 70, 1, 5), 3, 60, 70);
        check(&swu(5, 7, 70, 3, 3), 4, 90, 40);
        check(&swu(6, 6, 3, 4, 2), 5, 100, 100);
    }

    /// Runs the model alone, never stalled, on `frames` frames; returns the cycles at which
    /// windows became valid.
    fn valid_cycles(s: &SlidingWindow, frames: usize) -> Vec<u64> {
        let mut m = s.cycle_model();
        let beat = Beat::Bits(vec![0; s.planes * words_for(s.channels)]);
        let mut at = Vec::new();
        let total = frames as u64 * s.cycles();
        for t in 0..total + s.latency() + 2 {
            assert!(m.in_ready(true), "never stalled: always ready");
            if m.out_valid() {
                at.push(t);
            }
            m.clock((t < total).then_some(&beat), true);
        }
        at
    }

    #[test]
    fn swu_quiet_inputs() {
        for s in [swu(7, 5, 3, 1, 3), swu(5, 7, 2, 2, 1), swu(6, 6, 1, 1, 5)] {
            let beats: Vec<Beat> = maps(&s, 3, 9)
                .iter()
                .flat_map(|m| pixel_beats(&s, m))
                .collect();
            let promised =
                rtl_check::check_quiet_inputs(&s, &beats, &pattern(7, 100 * beats.len(), 50));
            assert_eq!(promised > 0, s.kernel > 1, "{s:?}");
        }
    }

    #[test]
    fn swu_cycles_and_latency() {
        for s in [swu(7, 5, 3, 1, 3), swu(5, 7, 2, 2, 1), swu(6, 6, 1, 1, 5)] {
            let at = valid_cycles(&s, 3);
            assert_eq!(at.len(), 3 * s.windows());
            // The first window of each frame `latency` cycles after its first pixel; frames
            // `cycles` apart.
            for f in 0..3u64 {
                assert_eq!(at[f as usize * s.windows()], f * s.cycles() + s.latency());
            }
        }
        assert_eq!(swu(7, 5, 3, 1, 3).latency(), 2 * 5 + 3);
        assert_eq!(swu(7, 5, 3, 1, 3).cycles(), 35);
    }

    #[test]
    fn swu_line_buffer_placement() {
        // 28 columns of 2 x 32 bits: 1792 bits in logic or 4 iCE40 blocks (256 x 16).
        let big = swu(28, 28, 32, 1, 3);
        assert_eq!(big.estimate_for(Family::Ice40).brams, 4);
        assert_eq!(big.line_buffer(Family::Ice40), RamPlacement::Block(4));
        // ECP5: 28 x 64 in 32 TRELLIS_DPR16X4, 64 x 64 in 2 DP16KD.
        assert_eq!(big.line_buffer(Family::Ecp5), RamPlacement::Distributed(32));
        assert_eq!(big.estimate_for(Family::Ecp5).brams, 0);
        let wide = swu(28, 64, 32, 1, 3);
        assert_eq!(wide.estimate_for(Family::Ecp5).brams, 2);
        // 5 columns of 2 x 3 bits: 30 bits stay in flip-flops on iCE40.
        let small = swu(7, 5, 3, 1, 3);
        assert_eq!(small.line_buffer(Family::Ice40), RamPlacement::Logic);
        assert_eq!(
            small.line_buffer(Family::Ecp5),
            RamPlacement::Distributed(2)
        );
        // Flip-flops as Yosys 0.23 counted them before the window-complete flag and the next
        // column became registers (one and x's width more each now: 3 for `small`, 5 for
        // `big`): synth_ice40 92 with the line buffer in flip-flops, 524 with the read
        // register in block RAM; synth_ecp5 62 beside 2 TRELLIS_DPR16X4 (and 588 beside 32
        // for `big`).
        assert_eq!(small.estimate_for(Family::Ice40).ffs, 93 + 3);
        assert_eq!(small.estimate_for(Family::Ecp5).ffs, 93 + 3 - 5 * 6);
        assert_eq!(big.estimate_for(Family::Ice40).ffs, 525 + 5);
        assert_eq!(big.estimate_for(Family::Ecp5).ffs, 589 + 5);
        // A 1 x 1 kernel has no line buffer.
        assert_eq!(
            swu(7, 5, 3, 1, 1).line_buffer(Family::Ice40),
            RamPlacement::Logic
        );
        assert_eq!(swu(7, 5, 3, 1, 1).features(Family::Ice40).select, 3.0);
    }
}
