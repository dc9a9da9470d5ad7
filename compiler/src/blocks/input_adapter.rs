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

    /// Bits per plane of the output beat.
    fn plane_bits(&self) -> usize {
        self.pixels * self.bits_per_pixel()
    }

    /// Beats per frame.
    fn beats(&self) -> usize {
        self.pixels / self.pixels_per_beat
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
        self.beats() as u64
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
        v.push_str(&format!(
            "// Input adapter: {beats} beats of {k} pixel(s) per frame, encoding {}, {planes} \
             plane(s) of {} bits.\n",
            self.encoding,
            self.plane_bits()
        ));
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
