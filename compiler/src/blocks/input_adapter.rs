//! Input adapter: takes `K = pixels_per_beat` pixel bytes per beat (pixel `j` of a beat in bits
//! `8j .. 8j + 8`, the earliest pixel lowest), encodes them (threshold, thermometer or bit
//! planes) and shifts the bits into the output register, one shift register per plane; the
//! frame's last beat makes it valid.
//!
//! Cycles: one beat per cycle, so `cycles = latency = pixels / K`. The frame is held once, in
//! the output register (the first layer keeps its own copy while it works on it): a complete
//! frame blocks the input until the next stage takes it, and `in_ready = !out_valid ||
//! out_ready`, so the beat of the next frame can arrive in the very cycle the frame leaves.
//! `out_ready` is the first layer's `in_ready`, a function of its registers, so the ready path
//! still crosses one block only. A second frame buffer would let the input run ahead by up to
//! a frame, which no throughput needs (the next stage takes a frame at most every `pixels / K`
//! cycles anyway) and which costs a frame of flip-flops: on an iCE40 these are cells of their
//! own (no LUT feeds them), the resource that runs out first for 784-pixel frames.
//!
//! Output layout: plane `k` (bit planes only) occupies bits `k * n .. (k + 1) * n` with
//! `n = pixels * bits_per_pixel`; pixel `p`, level `l` (thermometer) is bit `p * L + l`.
//!
//! Pixel-stream mode (`stream: Some(channels)`, for a convolutional first layer): the same
//! shift registers, but an output beat is one image pixel, its `channels` values (`pixels`
//! counts values, channels interleaved per pixel), so `n = channels * bits_per_pixel` and value
//! `c`, level `l` is bit `c * L + l` of each plane: the encoding of [`Encoding::encode`] cut
//! into pixels. `pixels_per_beat` divides `channels`. Cycles per frame are still
//! `pixels / K`; latency (to the first pixel's beat) `channels / K`.

use flip::bits::{set_bit, words_for};
use flip::encoding::Encoding;

use super::{
    indent, lit, stream_module, Beat, Block, CycleModel, Estimate, Family, Features, StageModel,
};
use crate::ir::{bits_for, InputAdapter};

impl InputAdapter {
    fn bits_per_pixel(&self) -> usize {
        self.encoding.bits_per_pixel()
    }

    fn planes(&self) -> usize {
        self.encoding.planes()
    }

    /// Values per output beat: the frame, or in pixel-stream mode one image pixel.
    fn out_values(&self) -> usize {
        self.stream.unwrap_or(self.pixels)
    }

    /// Bits per plane of the output beat.
    fn plane_bits(&self) -> usize {
        self.out_values() * self.bits_per_pixel()
    }

    /// Input beats per output beat (per frame unless in pixel-stream mode).
    fn beats(&self) -> usize {
        debug_assert_eq!(
            self.out_values() % self.pixels_per_beat,
            0,
            "pixels_per_beat divides the values of an output beat"
        );
        self.out_values() / self.pixels_per_beat
    }

    /// Verilog expression of encoded bit `level` of plane `plane` of the beat's pixel `j`.
    fn encoded_bit(&self, j: usize, plane: usize, level: usize) -> String {
        let px = format!("in_data[{}:{}]", 8 * j + 7, 8 * j);
        let ge = |t: u16| {
            if t == 0 {
                "1'b1".to_string()
            } else {
                format!("({px} >= {})", lit(8, t as u64))
            }
        };
        match &self.encoding {
            Encoding::Threshold(t) => ge(*t),
            Encoding::Thermometer(ts) => ge(ts[level]),
            Encoding::BitPlanes(p) => {
                format!(
                    "in_data[{}]",
                    8 * j + (self.pixel_bits - p) as usize + plane
                )
            }
        }
    }
}

impl Block for InputAdapter {
    fn name(&self) -> String {
        "input_adapter".into()
    }

    fn cycles(&self) -> u64 {
        (self.pixels / self.pixels_per_beat) as u64
    }

    fn latency(&self) -> u64 {
        self.beats() as u64
    }

    fn features(&self, _family: Family) -> Features {
        // The shift registers load with an enable (no LUT per bit on either family); what
        // remains per frame bit is the enable fan-out, plus one 8-bit compare per encoded
        // level.
        Features {
            stream: (self.planes() * self.plane_bits()) as f64,
            activation: (8 * self.bits_per_pixel() * self.pixels_per_beat) as f64,
            blocks: 1.0,
            ..Features::default()
        }
    }

    fn estimate_for(&self, family: Family) -> Estimate {
        let w = (self.planes() * self.plane_bits()) as u64;
        Estimate {
            luts: family.costs().luts(&self.features(family)).round() as u64,
            ffs: w + u64::from(bits_for(self.beats() as u64)) + 1,
            ..Estimate::default()
        }
    }

    fn in_width(&self) -> usize {
        8 * self.pixels_per_beat
    }

    fn out_width(&self) -> usize {
        self.planes() * self.plane_bits()
    }

    fn emit_verilog(&self, header: &str) -> String {
        let n = self.name();
        let (bpp, planes, k) = (self.bits_per_pixel(), self.planes(), self.pixels_per_beat);
        let beats = self.beats();
        let cbits = k * bpp; // bits per plane of one beat
        let cw = bits_for(beats.saturating_sub(1) as u64);
        let mut v = String::new();
        v.push_str(header);
        match self.stream {
            None => v.push_str(&format!(
                "// Input adapter: {beats} beats of {k} pixel(s) per frame, encoding {}, {planes} \
                 plane(s) of {} bits.\n",
                self.encoding,
                self.plane_bits()
            )),
            Some(ch) => v.push_str(&format!(
                "// Input adapter, pixel stream: {beats} beat(s) of {k} value(s) per pixel of {ch} \
                 channel(s), {} pixels per frame,\n// encoding {}, {planes} plane(s) of {} bits \
                 per pixel.\n",
                self.pixels / ch,
                self.encoding,
                self.plane_bits()
            )),
        }
        v.push_str(&stream_module(&n, self.in_width(), self.out_width()));
        let mut b = String::new();
        // Bits no encoded bit reads are gathered into a wire Verilator knows to be unused.
        let mut used = [false; 8];
        match &self.encoding {
            Encoding::BitPlanes(p) => {
                for q in 0..*p as usize {
                    used[(self.pixel_bits - p) as usize + q] = true;
                }
            }
            Encoding::Threshold(t) => used.fill(*t != 0),
            Encoding::Thermometer(ts) => used.fill(ts.iter().any(|&t| t != 0)),
        }
        if used.iter().any(|u| !u) {
            let unused: Vec<String> = (0..k)
                .rev()
                .flat_map(|j| {
                    (0..8)
                        .rev()
                        .filter(|&i| !used[i])
                        .map(move |i| format!("in_data[{}]", 8 * j + i))
                })
                .collect();
            b.push_str(&format!(
                "wire {n}_unused = &{{1'b0, {}}};\n",
                unused.join(", ")
            ));
        }
        for q in 0..planes {
            // Pixel j of the beat, level l, at bit j * bpp + l.
            let bits: Vec<String> = (0..k)
                .rev()
                .flat_map(|j| (0..bpp).rev().map(move |l| (j, l)))
                .map(|(j, l)| self.encoded_bit(j, q, l))
                .collect();
            b.push_str(&format!(
                "wire [{}:0] {n}_enc{q} = {{{}}};\n",
                cbits - 1,
                bits.join(", ")
            ));
        }
        if beats > 1 {
            b.push_str(&format!("reg  [{}:0] {n}_count;\n", cw - 1));
            b.push_str(&format!(
                "wire {n}_last = ({n}_count == {});\n",
                lit(cw, beats as u64 - 1)
            ));
        } else {
            b.push_str(&format!("wire {n}_last = 1'b1;\n"));
        }
        b.push_str(&format!(
            "assign in_ready = !out_valid || out_ready;\nwire {n}_in_fire = in_valid && in_ready;\n\n"
        ));
        // Each plane of out_data shifts right by a beat: the earliest beat ends lowest.
        let pb = self.plane_bits();
        let frame: Vec<String> = (0..planes)
            .rev()
            .map(|q| {
                if beats > 1 {
                    format!(
                        "{n}_enc{q}, out_data[{}:{}]",
                        (q + 1) * pb - 1,
                        q * pb + cbits
                    )
                } else {
                    format!("{n}_enc{q}")
                }
            })
            .collect();
        b.push_str("always @(posedge clk) begin\n    if (rst) begin\n");
        if beats > 1 {
            b.push_str(&format!("        {n}_count <= {};\n", lit(cw, 0)));
        }
        b.push_str("        out_valid <= 1'b0;\n    end else begin\n");
        b.push_str("        if (out_valid && out_ready) out_valid <= 1'b0;\n");
        b.push_str(&format!("        if ({n}_in_fire) begin\n"));
        b.push_str(&format!(
            "            out_data <= {{{}}};\n",
            frame.join(", ")
        ));
        b.push_str(&format!("            if ({n}_last) begin\n"));
        if beats > 1 {
            b.push_str(&format!("                {n}_count <= {};\n", lit(cw, 0)));
        }
        b.push_str("                out_valid <= 1'b1;\n            end");
        if beats > 1 {
            b.push_str(&format!(
                " else begin\n                {n}_count <= {n}_count + {};\n            end\n",
                lit(cw, 1)
            ));
        } else {
            b.push('\n');
        }
        b.push_str("        end\n    end\nend\n");
        indent(&mut v, 4, &b);
        v.push_str("endmodule\n");
        v
    }

    fn wire_name(&self) -> String {
        "input".into()
    }

    fn cycle_model(&self) -> StageModel {
        let words = words_for(self.plane_bits());
        StageModel::Adapter(AdapterModel {
            spec: self.clone(),
            words,
            count: 0,
            frame: vec![0; words * self.planes()],
            out_valid: false,
            out: Beat::Bits(vec![0; words * self.planes()]),
        })
    }
}

/// Cycle model of the input adapter. The shift registers are kept as the frame they will hold
/// once full (pixel `p` written at its final position instead of shifted there), copied into
/// the output beat on the last beat: what the Verilog's output register holds while valid.
pub struct AdapterModel {
    spec: InputAdapter,
    words: usize,
    count: usize,
    frame: Vec<u64>,
    out_valid: bool,
    out: Beat,
}

impl AdapterModel {
    fn last(&self) -> bool {
        self.count == self.spec.beats() - 1
    }

    /// Encodes pixel `p` of the frame.
    fn store(&mut self, p: usize, v: u8) {
        let w = self.words;
        match &self.spec.encoding {
            Encoding::Threshold(t) => set_bit(&mut self.frame, p, v as u16 >= *t),
            Encoding::Thermometer(ts) => {
                let l = ts.len();
                for (k, &t) in ts.iter().enumerate() {
                    set_bit(&mut self.frame, p * l + k, v as u16 >= t);
                }
            }
            Encoding::BitPlanes(planes) => {
                let q = v >> (self.spec.pixel_bits - planes);
                for k in 0..*planes as usize {
                    set_bit(&mut self.frame[k * w..(k + 1) * w], p, (q >> k) & 1 == 1);
                }
            }
        }
    }
}

impl CycleModel for AdapterModel {
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

    fn quiet_inputs(&self) -> u64 {
        // Beats before the frame's last one only shift in; a full output register takes none.
        if self.out_valid {
            0
        } else {
            (self.spec.beats() - 1 - self.count) as u64
        }
    }

    fn clock(&mut self, input: Option<&Beat>, out_ready: bool) {
        if self.out_valid && out_ready {
            self.out_valid = false;
        }
        if let Some(beat) = input {
            let Beat::Pixels(v) = *beat else {
                panic!("input adapter fed a non-pixel beat")
            };
            let k = self.spec.pixels_per_beat;
            for j in 0..k {
                self.store(self.count * k + j, (v >> (8 * j)) as u8);
            }
            if self.last() {
                self.count = 0;
                self.out_valid = true;
                if let Beat::Bits(o) = &mut self.out {
                    o.copy_from_slice(&self.frame);
                }
            } else {
                self.count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::hex;
    use crate::blocks::rtl_check::{self, bits_hex, pattern, Run};
    use flip::featuremap::copy_bits;
    use flip::train::rng::splitmix;

    fn streaming(
        pixels: usize,
        pixels_per_beat: usize,
        pixel_bits: u8,
        encoding: Encoding,
        channels: usize,
    ) -> InputAdapter {
        InputAdapter {
            pixels,
            pixels_per_beat,
            pixel_bits,
            encoding,
            stream: Some(channels),
        }
    }

    /// Three random images back to back with bubbles and back-pressure: the Verilog against
    /// the model each cycle, and each delivered beat against `Encoding::encode` of the whole
    /// image, cut into pixels (or whole, in frame mode).
    fn check(a: &InputAdapter, seed: u64, offer: u64, ready: u64) {
        rtl_check::lint(a);
        let (k, ch) = (a.pixels_per_beat, a.out_values());
        let (planes, pb) = (a.planes(), a.plane_bits());
        let mut r = seed;
        let (mut beats, mut want) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let max = 1u64 << a.pixel_bits;
            let image: Vec<u8> = (0..a.pixels)
                .map(|_| (splitmix(&mut r) % max) as u8)
                .collect();
            for chunk in image.chunks(k) {
                let v = chunk
                    .iter()
                    .rev()
                    .fold(0u64, |v, &p| (v << 8) | u64::from(p));
                beats.push(Beat::Pixels(v));
            }
            let mut enc = vec![0u64; a.encoding.encoded_words(a.pixels)];
            a.encoding.encode(a.pixel_bits, &image, &mut enc);
            let plane_words = words_for(a.pixels * a.bits_per_pixel());
            for p in 0..a.pixels / ch {
                let mut b = vec![0u64; planes * words_for(pb)];
                for q in 0..planes {
                    copy_bits(
                        &enc[q * plane_words..],
                        p * pb,
                        &mut b[q * words_for(pb)..],
                        0,
                        pb,
                    );
                }
                want.push(Beat::Bits(b));
            }
        }
        let cycles = beats.len() * 100 / offer.min(ready) as usize + 200;
        let run = Run {
            tag: format!("k{k}v{ch}s{seed}"),
            beats_hex: beats
                .iter()
                .map(|b| match b {
                    Beat::Pixels(v) => hex(&[*v], 8 * k),
                    _ => unreachable!(),
                })
                .collect(),
            beats: &beats,
            offer: pattern(seed ^ 0x0ff, cycles, offer),
            ready: pattern(seed ^ 0x4ead, cycles, ready),
        };
        let outs = rtl_check::check(a, &run, &|b| bits_hex(b, planes, pb));
        assert_eq!(outs, want, "beats of {a:?}");
    }

    #[test]
    fn adapter_stream_rtl_matches_model_and_encoding() {
        // A 7x5 image of 3 channels, one value per beat, thresholded.
        check(
            &streaming(105, 1, 8, Encoding::Threshold(100), 3),
            1,
            70,
            40,
        );
        // Thermometer, a whole pixel per beat.
        check(
            &streaming(105, 3, 8, Encoding::Thermometer(vec![40, 128, 200]), 3),
            2,
            80,
            60,
        );
        // Bit planes of grey pixels, and of 2-channel pixels two values at a time.
        check(&streaming(35, 1, 8, Encoding::BitPlanes(3), 1), 3, 60, 70);
        check(&streaming(70, 2, 5, Encoding::BitPlanes(4), 2), 4, 100, 100);
        // The frame mode through the same check.
        let mut frame = streaming(35, 1, 8, Encoding::BitPlanes(2), 1);
        frame.stream = None;
        check(&frame, 5, 70, 50);
    }

    #[test]
    fn adapter_stream_cycles_and_latency() {
        for a in [
            streaming(105, 1, 8, Encoding::Threshold(100), 3),
            streaming(70, 2, 5, Encoding::BitPlanes(4), 2),
        ] {
            let ch = a.out_values();
            assert_eq!(a.cycles(), (a.pixels / a.pixels_per_beat) as u64);
            assert_eq!(a.latency(), (ch / a.pixels_per_beat) as u64);
            let mut m = a.cycle_model();
            let beat = Beat::Pixels(0);
            let mut at = Vec::new();
            let total = 3 * a.cycles();
            for t in 0..total + 2 {
                assert!(m.in_ready(true));
                if m.out_valid() {
                    at.push(t);
                }
                m.clock((t < total).then_some(&beat), true);
            }
            // One pixel every `latency` cycles, the first `latency` cycles after the start.
            let per = a.latency();
            let want: Vec<u64> = (1..=3 * (a.pixels / ch) as u64).map(|i| i * per).collect();
            assert_eq!(at, want);
        }
    }

    /// FNV-1a, to hold generated text against a recorded version.
    fn fnv(s: &str) -> u64 {
        s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    fn frame_adapters() -> Vec<InputAdapter> {
        let a = |pixels, pixels_per_beat, pixel_bits, encoding| InputAdapter {
            pixels,
            pixels_per_beat,
            pixel_bits,
            encoding,
            stream: None,
        };
        vec![
            a(784, 4, 8, Encoding::Threshold(128)),
            a(64, 1, 5, Encoding::Thermometer(vec![4, 8, 12])),
            a(147, 3, 8, Encoding::BitPlanes(4)),
            a(8, 8, 8, Encoding::Threshold(0)),
        ]
    }

    #[test]
    fn adapter_frame_mode_verilog_is_unchanged() {
        let got: Vec<u64> = frame_adapters()
            .iter()
            .map(|a| fnv(&a.emit_verilog("// h\n")))
            .collect();
        // Recorded from the adapter before the pixel-stream mode was added.
        assert_eq!(
            got,
            vec![
                2730090185101390509,
                123656444158135889,
                15873231961970671937,
                17936725996289886020
            ]
        );
    }
}
