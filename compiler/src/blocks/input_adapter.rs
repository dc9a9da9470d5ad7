//! Input adapter: takes `K = pixels_per_beat` pixel bytes per beat (pixel `j` of a beat in bits
//! `8j .. 8j + 8`, the earliest pixel lowest; `K` up to 64, a 512-bit beat), encodes them
//! (threshold, thermometer or bit planes) and shifts the bits into the output register, one
//! shift register per plane; the frame's last beat makes it valid.
//!
//! Packed input ([`InputFormat::Packed`], one-bit encodings only): a beat carries `K` pixels
//! (up to 512) already binarised by the sender, pixel `j` in bit `j`; the adapter shifts them
//! in as they are, without a compare. The sender binarises with the model's encoding
//! ([`InputAdapter::stream_bytes`]), so the design computes what it computes on pixel bytes.
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
//!
//! Chunk mode (`chunk: Some(values)`, for a dense first layer that buffers its input in RAM):
//! the same as pixel-stream mode with `values` in place of `channels`: each output beat holds
//! the next `values` values of the frame, one SIMD-wide word per plane, so the frame's bits
//! never sit in flip-flops all at once.

use flip::bits::{set_bit, words_for};
use flip::encoding::Encoding;
use flip::featuremap::copy_bits;

use super::{
    indent, lit, stream_module, Beat, Block, CycleModel, Estimate, Family, Features, StageModel,
};
use crate::ir::{bits_for, InputAdapter, InputFormat};

impl InputAdapter {
    /// Width of the top's `s_data`: `pixels_per_beat` bytes, or bits when packed.
    pub fn input_width(&self) -> usize {
        self.pixels_per_beat * self.format.bits_per_pixel()
    }

    /// Bytes of one input beat on a byte stream (the harnesses' beat files, the board's UART):
    /// `ceil(input_width / 8)`, the lowest byte first.
    pub fn beat_bytes(&self) -> usize {
        self.input_width().div_ceil(8)
    }

    /// True if the encoding gives one bit per pixel in one plane, the encodings packed input
    /// can carry.
    pub fn one_bit(&self) -> bool {
        self.encoding.bits_per_pixel() == 1 && self.encoding.planes() == 1
    }

    /// The one bit a one-bit encoding makes of pixel value `v` (see [`InputAdapter::one_bit`]).
    pub fn binarise(&self, v: u8) -> bool {
        match &self.encoding {
            Encoding::Threshold(t) => u16::from(v) >= *t,
            Encoding::Thermometer(ts) => u16::from(v) >= ts[0],
            Encoding::BitPlanes(p) => (v >> (self.pixel_bits - p)) & 1 == 1,
        }
    }

    /// The byte stream of `pixels` (pixel values, frame after frame) as the top takes it: each
    /// beat in [`InputAdapter::beat_bytes`] bytes, the lowest first. Pixel bytes stay as they
    /// are; packed input binarises each pixel ([`InputAdapter::binarise`]) and packs `K` of
    /// them per beat, pixel `j` in bit `j` (8 pixels per byte, the earliest in bit 0).
    /// `pixels` must be a whole number of beats.
    pub fn stream_bytes(&self, pixels: &[u8]) -> Vec<u8> {
        match self.format {
            InputFormat::Pixels => pixels.to_vec(),
            InputFormat::Packed => {
                let (k, n) = (self.pixels_per_beat, self.beat_bytes());
                let mut out = vec![0u8; pixels.len() / k * n];
                for (beat, px) in out.chunks_exact_mut(n).zip(pixels.chunks_exact(k)) {
                    for (j, &v) in px.iter().enumerate() {
                        beat[j / 8] |= u8::from(self.binarise(v)) << (j % 8);
                    }
                }
                out
            }
        }
    }

    /// The beats of `pixels` as `ceil(input_width / 64)` words each (the lowest first), flat:
    /// [`InputAdapter::stream_bytes`] cut into beats.
    pub fn beat_words(&self, pixels: &[u8]) -> Vec<u64> {
        let bytes = self.stream_bytes(pixels);
        let n = self.beat_bytes();
        let words = n.div_ceil(8);
        let mut out = vec![0u64; bytes.len() / n * words];
        for (beat, b) in out.chunks_exact_mut(words).zip(bytes.chunks_exact(n)) {
            for (i, &v) in b.iter().enumerate() {
                beat[i / 8] |= u64::from(v) << (8 * (i % 8));
            }
        }
        out
    }

    fn bits_per_pixel(&self) -> usize {
        self.encoding.bits_per_pixel()
    }

    fn planes(&self) -> usize {
        self.encoding.planes()
    }

    /// Values per output beat: the frame, in pixel-stream mode one image pixel, in chunk mode
    /// one chunk.
    pub fn out_values(&self) -> usize {
        self.stream.or(self.chunk).unwrap_or(self.pixels)
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
        if self.format == InputFormat::Packed {
            return format!("in_data[{j}]");
        }
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

    fn features(&self, family: Family) -> Features {
        // The shift registers load with an enable: no LUT per bit where flip-flops have one
        // (FPGAs), a hold multiplexer per bit where they do not (standard cells). What remains
        // is one 8-bit compare per encoded level.
        Features {
            stream: if family.enable_flip_flops() {
                0.0
            } else {
                (self.planes() * self.plane_bits()) as f64
            },
            activation: match self.format {
                InputFormat::Pixels => (8 * self.bits_per_pixel() * self.pixels_per_beat) as f64,
                InputFormat::Packed => 0.0,
            },
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
        self.input_width()
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
        if self.format == InputFormat::Packed {
            v.push_str(&format!(
                "// Packed input: {k} pixel(s) per beat, one bit each, binarised by the sender \
                 (pixel j in bit j).\n"
            ));
        }
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
            _ if self.format == InputFormat::Packed => used.fill(true),
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

    /// Encodes pixel `p` of the frame from its byte.
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
            let Beat::Pixels(v) = beat else {
                panic!("input adapter fed a non-pixel beat")
            };
            let k = self.spec.pixels_per_beat;
            match self.spec.format {
                InputFormat::Pixels => {
                    for j in 0..k {
                        self.store(self.count * k + j, (v[j / 8] >> (8 * (j % 8))) as u8);
                    }
                }
                // Already the encoded bits, in frame order.
                InputFormat::Packed => copy_bits(v, 0, &mut self.frame, self.count * k, k),
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
            format: InputFormat::Pixels,
            pixel_bits,
            encoding,
            stream: Some(channels),
            chunk: None,
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
            let words = a.input_width().div_ceil(64);
            for w in a.beat_words(&image).chunks(words) {
                beats.push(Beat::pixels(w));
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
                    Beat::Pixels(v) => hex(v, a.input_width()),
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

    fn frame(
        pixels: usize,
        pixels_per_beat: usize,
        format: InputFormat,
        encoding: Encoding,
    ) -> InputAdapter {
        InputAdapter {
            pixels,
            pixels_per_beat,
            format,
            pixel_bits: 8,
            encoding,
            stream: None,
            chunk: None,
        }
    }

    /// Beats wider than a word: 16, 49 and 64 pixel bytes (up to the 512-bit `s_data`), and
    /// packed pixels up to 512 per beat, in frame and pixel-stream mode.
    #[test]
    fn adapter_wide_and_packed_beats_match_model_and_encoding() {
        use InputFormat::{Packed, Pixels};
        check(&frame(98, 49, Pixels, Encoding::Threshold(90)), 6, 70, 60);
        check(&frame(128, 64, Pixels, Encoding::BitPlanes(3)), 7, 80, 50);
        check(
            &frame(48, 16, Pixels, Encoding::Thermometer(vec![30, 200])),
            8,
            60,
            80,
        );
        check(
            &frame(784, 392, Packed, Encoding::Threshold(128)),
            9,
            70,
            50,
        );
        check(
            &frame(1024, 512, Packed, Encoding::Threshold(3)),
            10,
            90,
            90,
        );
        check(&frame(98, 49, Packed, Encoding::Threshold(0)), 11, 60, 60);
        check(&frame(24, 3, Packed, Encoding::BitPlanes(1)), 12, 60, 60);
        let mut s = streaming(105, 3, 8, Encoding::Thermometer(vec![77]), 3);
        s.format = Packed;
        check(&s, 13, 70, 70);
    }

    #[test]
    fn packed_stream_bytes_hold_eight_pixels_per_byte_earliest_in_bit_0() {
        let a = frame(16, 16, InputFormat::Packed, Encoding::Threshold(100));
        let mut px = vec![0u8; 16];
        px[0] = 100;
        px[9] = 255;
        px[15] = 101;
        px[3] = 99;
        assert_eq!(a.stream_bytes(&px), vec![0b0000_0001, 0b1000_0010]);
        assert_eq!(a.beat_words(&px), vec![0x8201]);
        assert_eq!(a.input_width(), 16);
        // A 784-pixel frame in beats of 8 is 98 bytes; of 49, 98 beats of 7 bytes.
        let a = frame(784, 8, InputFormat::Packed, Encoding::Threshold(1));
        assert_eq!(a.stream_bytes(&[7; 784]).len(), 98);
        let a = frame(784, 49, InputFormat::Packed, Encoding::Threshold(1));
        assert_eq!(a.stream_bytes(&[7; 784]).len(), 16 * 7);
        // Pixel bytes pass through; wide beats take several words.
        let a = frame(128, 64, InputFormat::Pixels, Encoding::Threshold(1));
        let px: Vec<u8> = (0..128).map(|i| i as u8).collect();
        assert_eq!(a.stream_bytes(&px), px);
        let b = a.beat_words(&px);
        assert_eq!(b.len(), 16);
        assert_eq!(b[1], 0x0f0e_0d0c_0b0a_0908);
        assert_eq!(b[8], 0x4746_4544_4342_4140);
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
            let beat = Beat::pixels(&[0]);
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
            format: InputFormat::Pixels,
            pixel_bits,
            encoding,
            stream: None,
            chunk: None,
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
