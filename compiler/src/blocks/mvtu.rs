//! Matrix-vector-threshold unit: one binary layer folded onto `pe` lanes of `simd`
//! XNOR-popcount bits each.
//!
//! The unit computes one input vector at a time and knows nothing of frames: a dense layer
//! takes one vector per frame, a convolution one window per output pixel (`vectors` per
//! frame, from a sliding window unit), each handled exactly like a dense layer's frame and
//! back to back. Below, "frame" means one input vector; a convolution's cycles and latency per
//! frame are `vectors` times a vector's.
//!
//! Schedule, for each frame: `for nf in 0..NF { for plane in 0..P { for sf in 0..SF { step } } }`
//! with `NF = outputs / pe`, `SF = inputs / simd`, `P` the input planes (bit-plane encoded first
//! layer, else 1). A step reads ROM word `nf * SF + sf` and input bits
//! `plane * inputs + sf * simd ..+ simd`, and adds each lane's popcount, shifted left by `plane`,
//! to its accumulator. After the last `(plane, sf)` of a neuron group the lane sums are
//! thresholded (hidden layer) or offset into scores (last layer) and shifted into the result
//! register; the last group moves the result into the output register.
//!
//! Pipeline. Stage A holds the frame and the step counters and issues one step per cycle
//! (the weight address and the input chunk). Stage R registers the weight word as read and the
//! chunk, so that block RAM and LUT ROM come with their output registers; with
//! `read_registers = 2` (chosen where a block RAM read and the tree stage after it do not fit
//! the clock period together, as on the ECP5 above 40 MHz) a second register follows,
//! because Yosys makes the first the block RAM's own read register, whose clock-to-out then
//! starts the next stage. The XNORs and the
//! popcount trees follow, registered every `stage_levels` adder levels (chosen from the target
//! family and clock by the pipelining pass; the XNOR folds into the first level, which sums
//! the bits in threes where stages are shallow, see [`ternary_first`]), the last
//! register holding each lane's popcount; each register carries where its step stood (valid,
//! first and last of its group, last of the frame, plane, neuron group). Stage B adds the
//! popcounts (shifted by the plane) into the accumulators; stage C thresholds a finished
//! group's accumulators (or offsets them into scores) into the result register and hands a
//! finished frame to the output register. With `activation_stage` off (the ECP5 default, see
//! the pipelining pass) stage B's sum goes through the compare into the result in the same
//! cycle. Scaled scores (`scale * s + bias`) with an activation stage take one stage more: the
//! product registered, then the offset added ([`Mvtu::score_stage`]). `D = read_registers +
//! tree stages (+ 1 with an activation stage, + 1 with a score stage)` registers lie between A
//! and the output.
//!
//! A table layer (`table > 0`, see [`crate::passes::tables`]) reads, in place of the weight
//! word, one ROM per group of `table` chunk bits, addressed by the weight address and those
//! bits, and registers their counts (not the chunk: it is in the addresses); its trees start
//! from the counts, so they have no XNORs and no ternary level. With `dual_port_tables` two
//! tables share one memory, each read through a port of its own ([`Mvtu::table_memories`]).
//! Where the pipelining gives two read registers a table layer has three
//! ([`crate::passes::pipelining::read_registers_of`]). Everything else is the same.
//!
//! Cycles: `S = NF * P * SF` steps per frame. Stage A takes a new frame (`in_ready`) when idle,
//! or in the cycle of its last step if it can issue that step, so frames follow each other
//! without a gap. Latency: the input handshake, `S` steps, `D` registers, then stage B writes
//! the output register: `S + D + 1`.
//!
//! Input RAM (`chunk_interval > 0`, a dense first layer, see the input buffer pass): instead of
//! a whole frame per beat into the rotating input register, a beat is chunk `sf` of every
//! plane (`P * SIMD` bits), written into word `sf` of one half of a RAM holding two frames.
//! `full` counts the frames complete in the RAM; stage A works while it is not zero and reads
//! word `sf` of the older frame at each step (the read register holds every plane's chunk, the
//! step's plane selects its part); a frame leaves the RAM with its last step, and its half
//! takes chunks again from the next cycle (`in_ready` is `full < 2`, a register). The frame starts once its last
//! chunk is in: latency `(SF - 1) * chunk_interval` cycles more, counted from the first chunk.
//! With two read registers the RAM is read a cycle ahead, at the address stage A is about to
//! take, into a fabric register: a block RAM's output (5.8 ns clock to out on the ECP5) then
//! reaches a flip-flop with no logic between, and the plane select starts from that register
//! (built at 108.9 MHz on the ULX3S with the select right after the RAM, a 9.2 ns path).
//!
//! Back-pressure is local: nothing after stage A ever waits, so no enable fans out over the
//! datapath registers. Instead stage A issues a frame's last step only while fewer than `C`
//! frames are issued and not yet handed on (`pending`, a counter), and the output register has
//! a queue of `C - 1` results behind it, so a finished frame always finds room.
//! `C = floor((D + 1) / S) + 1` keeps one frame per `S` cycles when the output is always
//! ready (a frame counts for `D + 1` cycles from its last step to its handshake): one
//! (no queue) whenever `S >= D + 2`. `in_ready` depends on registers only.
//!
//! Chunked output (`out_chunk > 0`, the next layer keeps its input vector in RAM, see the
//! vector RAM pass): the output register holds the whole result as before, and `out_data` is
//! its low chunk, the register rotating by a chunk at each output handshake (the next layer's
//! `in_ready` is a register, so this enable starts from flip-flops); a counter `oc` tells the
//! last chunk, with which the result is handed on and its credit returned. A frame then counts for `D + B` cycles (`B` the
//! chunks), so `C = floor((D + B) / S) + 1`, and the layer hands on at most one result per
//! `B` cycles.

use std::collections::VecDeque;

use flip::bits::{set_bit, words_for};
use flip::featuremap::copy_bits;

use super::{
    get_bits, hex, indent, lit, stream_module, Beat, Block, CycleModel, Estimate, Family, Features,
    StageModel,
};
use crate::ir::{bits_for, Mvtu, MvtuActivation};

mod datapath;
mod tree;
use datapath::Datapath;
use tree::{adder_bits, adder_levels, level_maxes, zext, Node};
pub use tree::{adder_tree_bits, ternary_first, tree_levels, TERNARY_MAX_STAGE_LEVELS};

/// A one-bit expression zero-extended to `w` bits.
fn widen(bit: &str, w: u32) -> String {
    zext(bit, 1, w)
}

/// A table group's `w` bits of counts in its register `reg` of `rw` bits (a two-port memory's
/// word, wider than a shorter group's counts).
fn counts(reg: &str, w: usize, rw: usize) -> String {
    if w == rw {
        reg.to_string()
    } else {
        format!("{reg}[{}:0]", w - 1)
    }
}

impl Mvtu {
    /// Frames per weight read (see [`Mvtu::mmv`]).
    pub fn frames_per_read(&self) -> usize {
        self.mmv.max(1) as usize
    }

    /// Registers that hold the input chunk, each feeding at most [`PES_PER_INPUT_COPY`] PEs.
    ///
    /// One register read by every PE is a net across the die: on the ULX3S SFC at 40 cycles per
    /// frame, layer 1's chunk fanning out to 54 PEs took 7.1 ns of routing before the tree's
    /// first LUT. Only layers with frames per weight read have copies so far, the layers whose
    /// builds measured it.
    pub fn input_copies(&self) -> usize {
        if self.frames_per_read() > 1 && self.table == 0 && !self.input_ram() {
            self.pe.div_ceil(PES_PER_INPUT_COPY)
        } else {
            1
        }
    }

    /// Slices a layer with frames per weight read collects its next frames in, each enabled
    /// through a copy of its ready register of its own (`STAGE_SLICE_BITS` each); 1 without.
    pub fn frame_slices(&self) -> usize {
        if self.frames_per_read() > 1 {
            (self.frames_per_read() * self.in_width()).div_ceil(STAGE_SLICE_BITS)
        } else {
            1
        }
    }

    /// With frames per weight read and two read registers, the part read goes through a
    /// register of its own before the slots (see [`Mvtu::emit_part_rom`]).
    fn part_register(&self) -> bool {
        self.frames_per_read() > 1 && self.read_registers >= 2
    }

    /// Bits of the popcount of one lane.
    fn pc_width(&self) -> u32 {
        bits_for(self.simd as u64)
    }

    /// Bits per lane of the threshold or score-offset ROM.
    fn act_width(&self) -> u64 {
        let m = self.mem();
        u64::from(if self.is_scores() {
            m.score_width
        } else {
            m.threshold_width
        })
    }

    /// `(depth, width)` of the weight memory: NF * SF words of PE * SIMD bits, each as `F`
    /// parts of a `F`-th of them with frames per weight read `F` ([`Mvtu::mmv`]).
    pub fn weight_shape(&self) -> (u64, u64) {
        let f = self.frames_per_read();
        (
            (self.neuron_folds() * self.synapse_folds() * f) as u64,
            (self.pe * self.simd).div_ceil(f) as u64,
        )
    }

    /// Where the weights could go on `family`: the block RAMs their ROM takes (0 if it stays
    /// in logic) and the large RAM blocks they would take loaded (`None`: the family has none).
    pub fn weight_blocks(&self, family: Family) -> (u64, Option<u64>) {
        let (d, w) = self.weight_shape();
        let c = family.costs();
        let brams = if self.table > 0 {
            self.table_memories()
                .iter()
                .map(|(_, (d, w))| c.rom(*d, *w).brams)
                .sum()
        } else {
            c.rom_placed(d, w, self.block_rom).brams
        };
        (brams, family.ram_blocks(d, w))
    }

    /// Inputs of each table lookup of a table layer, lowest first: groups of `table` bits of
    /// the step's chunk, the last one shorter where `table` does not divide SIMD.
    pub fn table_groups(&self) -> Vec<usize> {
        if self.table == 0 {
            return Vec::new();
        }
        (0..self.simd)
            .step_by(self.table)
            .map(|j| self.table.min(self.simd - j))
            .collect()
    }

    /// `(depth, width)` of each table ROM: `2^k` entries per step (the step's word index
    /// above the group's `k` input bits), a `bits(k)`-bit count per PE.
    fn table_shapes(&self) -> Vec<(u64, u64)> {
        let entries = (self.neuron_folds() * self.synapse_folds()) as u64;
        self.table_groups()
            .iter()
            .map(|&k| (entries << k, self.pe as u64 * u64::from(bits_for(k as u64))))
            .collect()
    }

    /// The memories holding a table layer's tables: the groups each holds (one, or two read
    /// through its two ports) and its `(depth, width)`. With [`Mvtu::dual_port_tables`], two
    /// consecutive tables share one memory where one of them alone would take a block RAM of
    /// the ECP5 and together they fit one block's two read ports; its words are `{port, step,
    /// x}`, `x` as wide as the longer group (the shorter group's address pads it with zeros).
    /// A chunk's last, shorter group thus joins a block RAM instead of becoming a LUT ROM read
    /// through several levels of multiplexers (the critical path of the SFC design
    /// `7px 8x196t3 8x64t3 8x64t3 1x32` once its block RAMs had output registers). The tables
    /// are read where their block RAM's read bandwidth, not its size, is what runs out: the
    /// SFC design's first layer at 32 steps needs 4,192 table bits per cycle, 117 blocks read
    /// 36 bits wide, while its 262 tables of 256 x 16 bits fill a quarter of a block each.
    /// A layer pairs tables up to [`PAIRED_WORDS_MAX`] words in all: a paired memory's
    /// contents are an initial block of one statement per word, and the YoWASP Yosys of the
    /// ECP5 flow (a 32-bit WebAssembly build, 4 GB at most) ran out of memory reading about
    /// a million of them (the SFC design `2px 1x392t3 1x128t3 1x128t3 2x2t3`, tables 8,192
    /// words deep); a layer's further tables stay one to a memory, as case-statement ROMs,
    /// which it reads cheaply (400,000 words in one ROM in 36 s).
    pub fn table_memories(&self) -> Vec<(Vec<usize>, (u64, u64))> {
        let shapes = self.table_shapes();
        let groups = self.table_groups();
        let single = |g: usize| (vec![g], shapes[g]);
        if !self.dual_port_tables {
            return (0..shapes.len()).map(single).collect();
        }
        let c = Family::Ecp5.costs();
        let entries = (self.neuron_folds() * self.synapse_folds()) as u64;
        let mut out = Vec::new();
        let mut g = 0;
        let mut paired_words = 0;
        while g < shapes.len() {
            let pair = (g + 1 < shapes.len()).then(|| {
                let k = groups[g].max(groups[g + 1]) as u32;
                let depth = 2 * (entries.next_power_of_two() << k);
                (depth, shapes[g].1.max(shapes[g + 1].1))
            });
            match pair {
                Some((depth, width))
                    if (c.rom(shapes[g].0, shapes[g].1).brams > 0
                        || c.rom(shapes[g + 1].0, shapes[g + 1].1).brams > 0)
                        && DUAL_PORT_SHAPES
                            .iter()
                            .any(|&(d, w)| width <= w && depth <= d)
                        && paired_words + depth <= PAIRED_WORDS_MAX =>
                {
                    paired_words += depth;
                    out.push((vec![g, g + 1], (depth, width)));
                    g += 2;
                }
                _ => {
                    out.push(single(g));
                    g += 1;
                }
            }
        }
        out
    }

    /// Largest values of the popcount tree's leaves: the XNOR bits, or a table layer's counts.
    fn leaf_maxes(&self) -> Vec<u64> {
        if self.table > 0 {
            self.table_groups().iter().map(|&k| k as u64).collect()
        } else {
            vec![1; self.simd]
        }
    }

    /// Adder levels of the popcount tree.
    fn levels(&self) -> usize {
        if self.table > 0 {
            tree_levels(self.table_groups().len(), false)
        } else {
            tree_levels(self.simd, self.ternary_tree())
        }
    }

    /// Bits of one step's read: the weight word, or every table's counts.
    fn read_width(&self) -> u64 {
        if self.table > 0 {
            self.table_shapes().iter().map(|&(_, w)| w).sum()
        } else {
            (self.pe * self.simd) as u64
        }
    }

    /// `(depth, width, in block RAM whatever the cost rule)` of the ROMs exactly as emitted:
    /// weights (unless loaded into RAM), then per neuron group the thresholds and direction
    /// bits, or the score offsets.
    /// With `drop_constant_lanes` (see [`super::cost::Costs::drop_constant_lanes`]), the
    /// per-group ROMs count only their lanes that vary over the neuron groups.
    fn roms(&self, drop_constant_lanes: bool) -> Vec<(u64, u64, bool)> {
        let (pe, nf) = (self.pe as u64, self.neuron_folds() as u64);
        let m = self.mem();
        let group_rom = |width: u32, value: &dyn Fn(usize) -> u64| {
            let w = if drop_constant_lanes {
                self.varying_lanes(width, value)
            } else {
                pe * u64::from(width)
            };
            (nf, w, false)
        };
        let mut roms = Vec::new();
        match &self.activation {
            MvtuActivation::Threshold { invert, .. } => {
                roms.push(group_rom(m.threshold_width, &|i| {
                    u64::from(m.thresholds[i])
                }));
                roms.extend(self.weight_roms());
                roms.push(group_rom(1, &|i| u64::from(invert[i])));
            }
            MvtuActivation::Scores { bias, scale } => {
                roms.push(group_rom(m.score_width, &|i| bias[i] as i64 as u64));
                if self.scale_width() > 0 {
                    roms.push(group_rom(self.scale_width(), &|i| u64::from(scale[i])));
                }
                roms.extend(self.weight_roms());
            }
        }
        roms
    }

    /// `(depth, width, in block RAM whatever the cost rule)` of the weight ROM, or of a table
    /// layer's tables; none if loaded.
    fn weight_roms(&self) -> Vec<(u64, u64, bool)> {
        if self.is_loaded() {
            Vec::new()
        } else if self.table > 0 {
            self.table_memories()
                .into_iter()
                .map(|(_, (d, w))| (d, w, false))
                .collect()
        } else {
            let (d, w) = self.weight_shape();
            vec![(d, w, self.block_rom)]
        }
    }

    /// Bit lanes of a per-group ROM (`width` bits of `value(neuron)` per PE, word `nf`
    /// holding neurons `nf * PE ..`) that are not the same in every word.
    fn varying_lanes(&self, width: u32, value: &dyn Fn(usize) -> u64) -> u64 {
        let (pe, nf) = (self.pe, self.neuron_folds());
        let mut n = 0;
        for g in 0..pe {
            let first = value(g);
            let differs = (1..nf).fold(0u64, |d, f| d | (value(f * pe + g) ^ first));
            let mask = if width >= 64 {
                u64::MAX
            } else {
                (1 << width) - 1
            };
            n += u64::from((differs & mask).count_ones());
        }
        n
    }

    /// Cycles from a frame's first input chunk to its last (0 without an input RAM).
    fn fill_cycles(&self) -> u64 {
        if self.input_ram() {
            ((self.synapse_folds() - 1) * self.chunk_interval) as u64
        } else {
            0
        }
    }

    /// `(depth, width)` of the input RAM: two frames of SF words, each one chunk of every
    /// plane.
    fn input_ram_shape(&self) -> (u64, u64) {
        (
            2 * self.synapse_folds() as u64,
            (self.planes * self.simd) as u64,
        )
    }

    /// Whether the popcount trees start with a ternary level (see [`ternary_first`]).
    pub fn ternary_tree(&self) -> bool {
        self.table == 0 && ternary_first(self.stage_levels.max(1))
    }

    /// Registers of the popcount trees: `max(1, ceil(levels / stage_levels))`.
    pub fn tree_stages(&self) -> usize {
        self.levels().div_ceil(self.stage_levels.max(1)).max(1)
    }

    /// Registers between stage A and the output (`D`): the weight read, the trees', the
    /// accumulators and the product of a score stage.
    pub fn depth(&self) -> usize {
        self.read_registers.max(1)
            + self.tree_stages()
            + usize::from(self.activation_stage)
            + usize::from(self.score_stage())
    }

    /// Whether scaled scores (`scale * s + bias`) take two stages after the accumulators, the
    /// product registered before the offset is added: in one, the multiply (a MULT18X18D on
    /// the ECP5) and the adder after it were the critical path of the ULX3S CNN designs built
    /// from a model with per-class scales (9.5 ns from the accumulator to the result).
    pub fn score_stage(&self) -> bool {
        self.activation_stage && self.scale_width() > 0
    }

    /// The stage that reads the per-group constants: the last, or the multiply's with a
    /// score stage.
    fn constant_stage(&self) -> usize {
        self.depth() - usize::from(self.score_stage())
    }

    /// Whether the per-group constants (thresholds and direction bits, or score offsets and
    /// multipliers) are read two stages ahead of the compare into two registers, as the
    /// weights are with two read registers: their ROM may be a block RAM too (the DSE's best
    /// ULX3S design of the trained Fashion-MNIST CNN reached 85 MHz against 125 with its dense
    /// layer's 256 x 11 threshold ROM in a DP16KD, read straight into the compare). A
    /// single group's constants are wires.
    pub fn early_constants(&self) -> bool {
        self.read_registers >= 2 && self.neuron_folds() > 1 && self.constant_stage() >= 3
    }

    /// Bits of one neuron group's constants: thresholds and direction bits, or score offsets
    /// and multipliers.
    fn group_constant_bits(&self) -> u64 {
        self.pe as u64
            * if self.is_scores() {
                self.act_width() + u64::from(self.scale_width())
            } else {
                self.act_width() + 1
            }
    }

    /// Frames issued and not yet handed on that the output side holds (`C`): the output
    /// register and a queue of `C - 1` behind it.
    pub fn capacity(&self) -> usize {
        // Frames per weight read issue their last steps `F` in a row, once per `S * F` steps.
        let f = self.frames_per_read();
        f * ((self.depth() + self.out_beats() + f - 1) / (self.steps() * f) + 1)
    }

    /// Logic levels of the deepest popcount stage (the XNOR counted with the first adder
    /// level), the figure the DSE's clock model is keyed on.
    pub fn logic_levels(&self) -> usize {
        self.levels().min(self.stage_levels.max(1)).max(1)
    }

    /// Bits per lane of each tree register, the popcount's last.
    fn stage_widths(&self) -> Vec<usize> {
        let mut maxes = self.leaf_maxes();
        let l = self.stage_levels.max(1);
        (0..self.tree_stages())
            .map(|k| {
                maxes = level_maxes(&maxes, k * l, l, self.ternary_tree());
                maxes.iter().map(|&m| bits_for(m) as usize).sum()
            })
            .collect()
    }

    fn steps(&self) -> usize {
        self.neuron_folds() * self.planes * self.synapse_folds()
    }

    /// ROM word `addr` as packed bits.
    fn rom_word(&self, addr: usize) -> &[u64] {
        let m = self.mem();
        &m.words[addr * m.words_per_entry..(addr + 1) * m.words_per_entry]
    }

    /// Per-lane constants of neuron group `nf` as one packed hex literal: thresholds (or
    /// score offsets) of lanes `pe - 1 .. 0`, each `width` bits, two's complement.
    fn group_literal(&self, nf: usize, width: u32, value: impl Fn(usize) -> u64) -> String {
        let total = self.pe * width as usize;
        let mut words = vec![0u64; words_for(total)];
        for g in 0..self.pe {
            let v = value(nf * self.pe + g);
            for b in 0..width as usize {
                if (v >> b) & 1 == 1 {
                    set_bit(&mut words, g * width as usize + b, true);
                }
            }
        }
        format!("{total}'h{}", hex(&words, total))
    }
}

impl Mvtu {
    /// The tables of a table layer: table `g`, addressed by the weight address and bits
    /// `g*k..` of the step's chunk, holds for PE `p` (bits `p*bits(k)..`) the popcount of those
    /// input bits' XNORs with the weights of neuron `nf*PE+p` on inputs `sf*SIMD + g*k..`.
    fn emit_tables(&self, b: &mut String, waw: u32) {
        let n = self.name();
        let (pe, simd) = (self.pe, self.simd);
        let entries = self.neuron_folds() * self.synapse_folds();
        b.push_str(
            "// Tables: word (nf*SF+sf, x), count p = popcount(~(x ^ weights of neuron nf*PE+p on the\n\
             // group's inputs of chunk sf)).\n",
        );
        let groups = self.table_groups();
        let firsts: Vec<usize> = groups
            .iter()
            .scan(0, |f, &k| {
                *f += k;
                Some(*f - k)
            })
            .collect();
        let chunk = |g: usize| {
            let (first, k) = (firsts[g], groups[g]);
            if k == 1 {
                format!("{n}_x[{first}]")
            } else {
                format!("{n}_x[{}:{first}]", first + k - 1)
            }
        };
        // The word of group `g`'s table at (step, x): each PE's count.
        let word = |g: usize, step: usize, x: usize| -> Vec<u64> {
            let (first, k) = (firsts[g], groups[g]);
            let bw = bits_for(k as u64) as usize;
            let mask = (1usize << k) - 1;
            let weights = self.rom_word(step);
            let mut out = vec![0u64; words_for(pe * bw)];
            for p in 0..pe {
                let w = get_bits(weights, p * simd + first, k) as usize;
                let count = (!(x ^ w) & mask).count_ones() as u64;
                for i in 0..bw {
                    if (count >> i) & 1 == 1 {
                        set_bit(&mut out, p * bw + i, true);
                    }
                }
            }
            out
        };
        for (m, (members, (depth, width))) in self.table_memories().into_iter().enumerate() {
            if let [g] = members[..] {
                let k = groups[g];
                let bw = bits_for(k as u64) as usize;
                let addr = if entries > 1 {
                    format!("{{{n}_waddr, {}}}", chunk(g))
                } else {
                    chunk(g)
                };
                let mask = (1usize << k) - 1;
                Rom::new(
                    format!("{n}_tab{g}"),
                    pe * bw,
                    addr,
                    waw * u32::from(entries > 1) + k as u32,
                    entries << k,
                )
                .emit(b, |a| {
                    format!("{}'h{}", pe * bw, hex(&word(g, a >> k, a & mask), pe * bw))
                });
                continue;
            }
            // Two tables in one memory, one per read port: words {port, step, x}.
            let width = width as usize;
            let kmax = members.iter().map(|&g| groups[g]).max().unwrap_or(1);
            let abits = waw as usize + kmax;
            // Every word an address can reach, and only those: the others (steps past the
            // last, a shorter group's padding) are never read, and each statement costs Yosys
            // kilobytes (see `table_memories`), so no filling loop.
            b.push_str(&format!(
                "// Tables {} and {} in one memory read through two ports (one block RAM); words \
                 no address\n// reaches are left out.\n\
                 reg  [{}:0] {n}_tm{m} [0:{}];\ninitial begin\n",
                members[0],
                members[1],
                width - 1,
                depth - 1
            ));
            for (port, &g) in members.iter().enumerate() {
                let k = groups[g];
                for step in 0..entries {
                    for x in 0..1usize << k {
                        let a = (port << abits) | (step << kmax) | x;
                        b.push_str(&format!(
                            "    {n}_tm{m}[{a}] = {width}'h{};\n",
                            hex(&word(g, step, x), width)
                        ));
                    }
                }
            }
            b.push_str("end\n");
            for (port, &g) in members.iter().enumerate() {
                let pad = kmax - groups[g];
                let x = if pad > 0 {
                    format!("{pad}'b0, {}", chunk(g))
                } else {
                    chunk(g)
                };
                b.push_str(&format!(
                    "wire [{}:0] {n}_ta{g} = {{1'b{port}, {n}_waddr, {x}}};\n",
                    abits
                ));
            }
        }
    }

    /// Per table group: the memory read into its first register (`{name}_tab{g}`, a ROM's
    /// output, or a word of a two-port memory at `{name}_ta{g}`) and that register's width
    /// (a two-port memory's word, wider than a shorter group's counts).
    fn table_reads(&self) -> Vec<(String, usize)> {
        let n = self.name();
        let mut out = vec![(String::new(), 0); self.table_groups().len()];
        for (m, (members, (_, width))) in self.table_memories().into_iter().enumerate() {
            for &g in &members {
                out[g] = if members.len() == 1 {
                    (format!("{n}_tab{g}"), width as usize)
                } else {
                    (format!("{n}_tm{m}[{n}_ta{g}]"), width as usize)
                };
            }
        }
        out
    }

    /// The weight memory of a loaded layer: a RAM that `load_*` fills once after `load_rst`
    /// (`load_parts` 16-bit words per RAM word, lowest first), then read like the ROM. One
    /// address serves both, so Yosys maps it onto single-port SPRAM.
    /// The weight ROM of a layer with frames per weight read (`F`): word `w` as `F` parts of
    /// `ceil(PE * SIMD / F)` bits at addresses `w * F ..`, read one per cycle, a word ahead of
    /// stage A, into the ROM's read register and from there into one slot each but the last
    /// (which stays in the read register: no read follows until the word is taken); `wnext`
    /// is the complete word, which stage A takes with a word's first slot (`consume`).
    fn emit_part_rom(&self, b: &mut String, waw: u32, fw: u32) {
        let n = self.name();
        let f = self.frames_per_read();
        let lanes = self.pe * self.simd;
        let part = lanes.div_ceil(f);
        let entries = self.neuron_folds() * self.synapse_folds();
        let cw = bits_for(f as u64);
        // `consume` (stage A takes a word: a step of slot 0) and `rd` (a part is read this
        // cycle) are registers decided a cycle ahead, and so is the read address, so that
        // nothing but a register drives the block RAMs' address pins across the device (the
        // first build, with the address chosen by a multiplexer behind `advance`, ran at 64
        // MHz on that path).
        b.push_str(&format!(
            "// Weight ROM in {f} parts per word: address w*{f}+k holds bits k*{part}.. of word nf*SF+sf.\n\
             // The address of this cycle's read, or of the last one when there is none: the ROM's\n\
             // read register then keeps the last part until the word is taken.\n\
             reg  [{}:0] {n}_raddr;\n\
             // Bit k: the part in the read register goes to slot k (a register of its own, as it\n\
             // enables a slot's every flip-flop: through a LUT behind the part's number it was the\n\
             // critical path of the ULX3S SFC build, 10.2 ns of routing).\n\
             reg  [{}:0] {n}_we;\n\
             // Parts read of the next word (at most {f}).\n\
             reg  [{}:0] {n}_rcount;\nreg  {n}_rd;\nreg  {n}_consume;\n\
             wire {n}_rfull = ({n}_rcount == {});\n",
            waw + fw - 1,
            f - 2,
            cw - 1,
            lit(cw, f as u64),
        ));
        let word = |a: usize| -> Vec<u64> {
            let (w, k) = (a / f, a % f);
            let mut out = vec![0u64; words_for(part)];
            copy_bits(
                self.rom_word(w),
                k * part,
                &mut out,
                0,
                part.min(lanes - k * part),
            );
            out
        };
        Rom::new(
            format!("{n}_wp"),
            part,
            format!("{n}_raddr"),
            waw + fw,
            entries * f,
        )
        .in_block_ram(self.block_rom)
        .emit(b, |a| format!("{part}'h{}", hex(&word(a), part)));
        // With two read registers the part read goes into a register of its own beside the
        // block RAMs before it fans out to its slots across the layer: a DP16KD's data leave
        // it 5.83 ns after the clock, and their route to the slots was the ULX3S SFC's
        // critical path at 104.4 MHz (3.7 ns). The slots then take it a cycle later (`we_q`),
        // and the word goes straight to the weight register (`consume_q`) in place of the
        // second read register, so a step meets its weights on the same cycle as before.
        let (last, we) = if self.part_register() {
            b.push_str(&format!(
                "reg  [{}:0] {n}_wpd;\nreg  [{}:0] {n}_we_q;\nreg  {n}_consume_q;\n",
                part - 1,
                f - 2
            ));
            (format!("{n}_wpd"), format!("{n}_we_q"))
        } else {
            (format!("{n}_wpr"), format!("{n}_we"))
        };
        b.push_str(&format!(
            "reg  [{}:0] {n}_wpr;\nreg  [{}:0] {n}_asm;\n\
             wire [{}:0] {n}_wnext_all = {{{last}, {n}_asm}};\n",
            part - 1,
            (f - 1) * part - 1,
            f * part - 1
        ));
        if f * part > lanes {
            b.push_str(&format!(
                "/* verilator lint_off UNUSED */\nwire [{}:0] {n}_wnext_pad = {n}_wnext_all;\n/* verilator lint_on UNUSED */\n",
                f * part - 1
            ));
        }
        b.push_str(&format!(
            "wire [{}:0] {n}_wnext = {n}_wnext_all[{}:0];\n",
            lanes - 1,
            lanes - 1
        ));
        let mut slots = format!("always @(posedge clk) begin\n    {n}_wpr <= {n}_wp;\n");
        if self.part_register() {
            slots.push_str(&format!("    {n}_wpd <= {n}_wpr;\n"));
        }
        for k in 0..f - 1 {
            slots.push_str(&format!(
                "    if ({we}[{k}]) {n}_asm[{}:{}] <= {last};\n",
                (k + 1) * part - 1,
                k * part
            ));
        }
        slots.push_str("end\n");
        b.push_str(&slots);
    }

    fn emit_weight_ram(&self, b: &mut String) {
        let n = self.name();
        let (depth, width) = self.weight_shape();
        let (depth, width) = (depth as usize, width as usize);
        let aw = bits_for(depth as u64 - 1);
        let parts = self.load_parts();
        b.push_str(&format!(
            "// Weight RAM: word nf*SF+sf, bit p*SIMD+j = weight of neuron nf*PE+p on input sf*SIMD+j.\n\
             // Written once after load_rst from load_data ({parts} word(s) of 16 bits per RAM word, lowest\n\
             // first); frames wait until it is loaded. Not reset by rst.\n\
             (* ram_style = \"huge\" *)\nreg  [{}:0] {n}_wram [0:{}];\nreg  [{}:0] {n}_w;\n\
             reg  [{}:0] {n}_waddr_d;\nreg  [{}:0] {n}_laddr;\n",
            width - 1,
            depth - 1,
            width - 1,
            aw - 1,
            aw - 1
        ));
        let last_part = if parts > 1 {
            let pw = bits_for(parts as u64 - 1);
            b.push_str(&format!(
                "reg  [{}:0] {n}_lpart;\nreg  [{}:0] {n}_lbuf;\n",
                pw - 1,
                (parts - 1) * 16 - 1
            ));
            format!("({n}_lpart == {})", lit(pw, parts as u64 - 1))
        } else {
            "1'b1".to_string()
        };
        let full = if parts > 1 {
            format!("{{load_data, {n}_lbuf}}")
        } else {
            "load_data".to_string()
        };
        b.push_str(&format!(
            "wire {n}_lwe = load_valid && !loaded && {last_part};\n"
        ));
        if parts * 16 > width {
            // The last part's high bits pad the word.
            b.push_str(&format!(
                "/* verilator lint_off UNUSED */\nwire [{}:0] {n}_lfull = {full};\n\
                 /* verilator lint_on UNUSED */\nwire [{}:0] {n}_lword = {n}_lfull[{}:0];\n",
                parts * 16 - 1,
                width - 1,
                width - 1
            ));
        } else {
            b.push_str(&format!("wire [{}:0] {n}_lword = {full};\n", width - 1));
        }
        b.push_str(&format!(
            "wire [{}:0] {n}_ra = loaded ? {n}_waddr_d : {n}_laddr;\n\
             always @(posedge clk) begin\n    if ({n}_lwe) {n}_wram[{n}_ra] <= {n}_lword;\n    \
             else {n}_w <= {n}_wram[{n}_ra];\nend\n",
            aw - 1
        ));
        let mut l = format!(
            "if (load_rst) begin\n    loaded <= 1'b0;\n    {n}_laddr <= {};\n",
            lit(aw, 0)
        );
        if parts > 1 {
            l.push_str(&format!(
                "    {n}_lpart <= {};\n",
                lit(bits_for(parts as u64 - 1), 0)
            ));
        }
        l.push_str("end else if (load_valid && !loaded) begin\n");
        if parts > 1 {
            let pw = bits_for(parts as u64 - 1);
            l.push_str(&format!(
                "    {n}_lpart <= {last_part} ? {} : {n}_lpart + {};\n",
                lit(pw, 0),
                lit(pw, 1)
            ));
            let shifted = if parts > 2 {
                format!("{{load_data, {n}_lbuf[{}:16]}}", (parts - 1) * 16 - 1)
            } else {
                "load_data".to_string()
            };
            l.push_str(&format!("    {n}_lbuf <= {shifted};\n"));
        }
        l.push_str(&format!(
            "    if ({n}_lwe) begin\n        {n}_laddr <= {n}_laddr + {};\n        \
             if ({n}_laddr == {}) loaded <= 1'b1;\n    end\nend\n",
            lit(aw, 1),
            lit(aw, depth as u64 - 1)
        ));
        b.push_str("always @(posedge clk) begin\n");
        indent(b, 4, &l);
        b.push_str("end\n");
    }
}

/// Bits of a layer's collected frames (frames per weight read) enabled through one copy of
/// its ready register.
const STAGE_SLICE_BITS: usize = 512;

/// PEs one copy of the input chunk register feeds (see [`Mvtu::input_copies`]).
pub const PES_PER_INPUT_COPY: usize = 8;

/// Shapes `(words, bits)` of an ECP5 DP16KD read through both ports at once (true dual-port
/// mode; its 512 x 36 shape has a single read port).
const DUAL_PORT_SHAPES: [(u64, u64); 5] = [(1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)];

/// Words of paired table memories a layer may hold (see [`Mvtu::table_memories`]): the SFC
/// designs built and synthesised with paired tables hold up to 176,128 in a layer (328,704
/// initial statements in a design), the one Yosys could not read 532,480 in its first layer.
pub const PAIRED_WORDS_MAX: u64 = 1 << 18;

/// A case-statement ROM to emit: `name`, `width` bits, indexed by `addr` (`addr_width` bits),
/// `entries` words.
struct Rom {
    name: String,
    width: usize,
    addr: String,
    addr_width: u32,
    entries: usize,
    block: bool,
}

impl Rom {
    fn new(name: String, width: usize, addr: String, addr_width: u32, entries: usize) -> Self {
        Rom {
            name,
            width,
            addr,
            addr_width,
            entries,
            block: false,
        }
    }

    /// In block RAM whatever Yosys's cost rule would choose (`rom_style` on the case statement,
    /// where Yosys's ROM inference reads it).
    fn in_block_ram(mut self, block: bool) -> Self {
        self.block = block;
        self
    }

    /// Appends the ROM with entry `a` given by `entry(a)`; a single entry becomes a constant wire.
    fn emit(&self, b: &mut String, entry: impl Fn(usize) -> String) {
        let (name, width) = (&self.name, self.width);
        if self.entries == 1 {
            b.push_str(&format!("wire [{}:0] {name} = {};\n", width - 1, entry(0)));
            return;
        }
        let style = if self.block {
            "(* rom_style = \"block\" *) "
        } else {
            ""
        };
        b.push_str(&format!(
            "reg  [{}:0] {name};\nalways @* begin\n    {style}case ({})\n",
            width - 1,
            self.addr
        ));
        for a in 0..self.entries {
            b.push_str(&format!(
                "        {}: {name} = {};\n",
                lit(self.addr_width, a as u64),
                entry(a)
            ));
        }
        b.push_str(&format!(
            "        default: {name} = {{{width}{{1'b0}}}};\n    endcase\nend\n"
        ));
    }
}

impl Block for Mvtu {
    fn name(&self) -> String {
        format!("l{}_mvtu", self.index)
    }

    fn cycles(&self) -> u64 {
        (self.vectors as u64 * self.steps() as u64).max(self.out_beats() as u64)
    }

    fn latency(&self) -> u64 {
        // A frame's vectors follow each other without a gap when they arrive in time; a frame
        // buffered in RAM starts once its last chunk is in.
        if self.frames_per_read() > 1 {
            // A frame reaching an idle layer is collected, and the batch it starts alone in its
            // last slot (a register decided a cycle ahead) begins a cycle later; the frame is
            // done with the batch's last step.
            return (self.steps() * self.frames_per_read()) as u64 + self.depth() as u64 + 3;
        }
        self.fill_cycles() + self.vectors as u64 * self.steps() as u64 + self.depth() as u64 + 1
    }

    fn features(&self, family: Family) -> Features {
        let c = family.costs();
        let m = self.mem();
        let (pe, simd) = (self.pe as u64, self.simd as u64);
        // A table layer's XNORs and first levels are in its tables: only the adders after
        // them count, as plain adders.
        let tree_bits = pe * adder_bits(&self.leaf_maxes(), self.ternary_tree());
        let table = self.table > 0;
        let sf = self.synapse_folds() as u64;
        let accumulate = sf * self.planes as u64 > 1;
        let act_width = self.act_width();
        let roms = self.roms(c.drop_constant_lanes);
        let rom_bits: f64 = roms
            .iter()
            .map(|&(d, w, b)| c.rom_feature_placed(d, w, b))
            .sum();
        Features {
            rom_bits,
            popcount: if !table && (self.weight_shape().0 > 2 || self.is_loaded()) {
                tree_bits as f64
            } else {
                0.0
            },
            adder: tree_bits as f64,
            ram_popcount: if !table && (self.is_loaded() || self.weight_blocks(family).0 > 0) {
                tree_bits as f64
            } else {
                0.0
            },
            table_adder: if table { tree_bits as f64 } else { 0.0 },
            packed_rom_blocks: roms
                .iter()
                .map(|&(d, w, b)| c.packed_rom_blocks_placed(d, w, b))
                .sum(),
            acc: if accumulate {
                (pe * u64::from(m.acc_width)) as f64
            } else {
                0.0
            },
            activation: (pe * act_width) as f64,
            // The rotating input register: one 2:1 mux (load or rotate) per bit; with an input
            // RAM the plane select after its read. A chunked output's result register rotates
            // too: one 2:1 mux per bit.
            select: if self.input_ram() {
                (simd * (self.planes as u64 - 1)) as f64
            } else if accumulate || self.frames_per_read() > 1 {
                // Frames per weight read: every slot's register loads or rotates.
                (self.inputs * self.planes * self.frames_per_read()) as f64
            } else {
                0.0
            } + if self.chunked_output() {
                self.outputs as f64
            } else {
                0.0
            },
            stream: 0.0,
            blocks: 1.0,
        }
    }

    fn estimate_for(&self, family: Family) -> Estimate {
        let c = family.costs();
        let m = self.mem();
        let (pe, nf, sf) = (
            self.pe as u64,
            self.neuron_folds() as u64,
            self.synapse_folds() as u64,
        );
        let acc = u64::from(m.acc_width);
        let accumulate = sf * self.planes as u64 > 1;
        let in_bits = (self.inputs * self.planes) as u64;
        let act_width = self.act_width();
        let (ram_depth, ram_width) = self.input_ram_shape();
        let (buffer_ffs, buffer_bits, buffer_brams) = if self.input_ram() {
            // The read register holds every plane's chunk (one of them counted with the
            // weight read below), and read a cycle early (several planes, two read registers)
            // a fabric register after it and the next read address; write and read addresses,
            // the read half, the frame count.
            let early = self.read_registers >= 2 && self.planes > 1;
            (
                (self.planes as u64 - 1) * self.simd as u64
                    + if early {
                        (self.planes * self.simd) as u64 + u64::from(bits_for(ram_depth - 1))
                    } else {
                        0
                    }
                    + 2 * u64::from(bits_for(ram_depth - 1))
                    + 3
                    // Standard cells have no RAM: the buffer itself is flip-flops.
                    + if family == Family::Asic {
                        ram_depth * ram_width
                    } else {
                        0
                    },
                ram_depth * ram_width,
                c.bram_blocks(ram_depth, ram_width),
            )
        } else {
            // Frames per weight read: the slots and the frames collected for the next batch.
            let f = self.frames_per_read() as u64;
            (if f > 1 { 2 * f * in_bits } else { in_bits }, 0, 0)
        };
        let brams: u64 = self
            .roms(c.drop_constant_lanes)
            .iter()
            .map(|&(d, w, b)| c.rom_placed(d, w, b).brams)
            .sum::<u64>()
            + buffer_brams;
        let ew = u64::from(self.element_width());
        let const_bits = nf
            * pe
            * if self.is_scores() {
                act_width
            } else {
                act_width + 1
            };
        Estimate {
            luts: c.luts(&self.features(family)).round() as u64,
            // Input, the registered weight word and chunk, the tree registers, accumulators,
            // result, output register and queue, counters and the tags along the pipeline.
            ffs: buffer_ffs
                + self.read_registers.max(1) as u64
                    * if self.table > 0 {
                        // The tables' counts; the chunk went into their addresses.
                        self.read_width()
                    } else if nf * sf == 1 && !self.is_loaded() {
                        // Constant weights need no register.
                        self.simd as u64
                    } else {
                        (pe + 1) * self.simd as u64
                    }
                + pe * self.stage_widths().iter().sum::<usize>() as u64
                + if accumulate {
                    pe * acc * self.frames_per_read() as u64
                } else {
                    0
                }
                + (1 + self.capacity() as u64) * self.outputs as u64 * ew
                // Frames per weight read: the parts read and the other slots' finished groups.
                + if self.frames_per_read() > 1 {
                    let (_, part) = self.weight_shape();
                    self.frames_per_read() as u64 * part
                        + (self.frames_per_read() as u64 - 1) * (nf - 1) * pe * ew
                        // The input chunk's copies beyond the one counted with the read.
                        + (self.input_copies() as u64 - 1) * self.simd as u64
                        // Each slice's copy of the ready register.
                        + self.frame_slices() as u64
                } else {
                    0
                }
                + 2 * u64::from(bits_for(nf * sf))
                // The counters' "at the last value" flags.
                + [nf, self.planes as u64, sf].iter().filter(|&&c| c > 1).count() as u64
                + self.depth() as u64 * (2 + u64::from(bits_for(nf * sf)))
                + if self.chunked_output() {
                    u64::from(bits_for(self.out_beats() as u64 - 1))
                } else {
                    0
                }
                + if self.early_constants() {
                    2 * self.group_constant_bits()
                } else {
                    0
                }
                // A score stage's product and offset.
                + if self.score_stage() { 2 * pe * ew } else { 0 }
                + if self.is_loaded() {
                    // Load address, part counter and the parts waiting for the word's last.
                    u64::from(bits_for(nf * sf)) + 16 * (self.load_parts() as u64 - 1) + 5
                } else {
                    0
                }
                // A part register in place of the second read register of the word.
                - if self.part_register() {
                    pe * self.simd as u64 - self.weight_shape().1
                } else {
                    0
                },
            memory_bits: if self.table > 0 {
                self.table_shapes().iter().map(|&(d, w)| d * w).sum()
            } else {
                self.outputs as u64 * self.inputs as u64
            } + const_bits
                + buffer_bits,
            brams,
            sprams: if self.is_loaded() {
                let (d, w) = self.weight_shape();
                family.ram_blocks(d, w).unwrap_or(0)
            } else {
                0
            },
        }
    }

    fn in_width(&self) -> usize {
        if self.input_ram() {
            self.planes * self.simd
        } else {
            self.inputs * self.planes
        }
    }

    fn out_width(&self) -> usize {
        if self.chunked_output() {
            self.out_chunk
        } else {
            self.outputs * self.element_width() as usize
        }
    }

    fn emit_verilog(&self, header: &str) -> String {
        let n = self.name();
        let m = self.mem();
        let (nf_n, sf_n, p_n) = (self.neuron_folds(), self.synapse_folds(), self.planes);
        let (pe, simd) = (self.pe, self.simd);
        let (aw, cw) = (m.acc_width, self.pc_width());
        let ew = self.element_width() as usize;
        let accumulate = sf_n * p_n > 1;
        let entries = nf_n * sf_n;
        // Frames per weight read: `F` slots, stepped through innermost (see `Mvtu::mmv`).
        let f_n = self.frames_per_read();
        let mmv = f_n > 1;
        let fw = bits_for(f_n as u64 - 1);
        let (sfw, pw, nfw, waw) = (
            bits_for(sf_n as u64 - 1),
            bits_for(p_n as u64 - 1),
            bits_for(nf_n as u64 - 1),
            bits_for(entries as u64 - 1),
        );
        let mut v = String::new();
        v.push_str(header);
        let per = if self.is_conv() {
            format!("window, {} windows per frame", self.vectors)
        } else {
            "frame".into()
        };
        v.push_str(&format!(
            "// Layer {}: {} inputs x {} plane(s) -> {} {}; PE {pe}, SIMD {simd}; \
             NF {nf_n} x P {p_n} x SF {sf_n} = {} cycles per {per}.\n",
            self.index,
            self.inputs,
            p_n,
            self.outputs,
            if self.is_scores() {
                "scores"
            } else {
                "threshold bits"
            },
            self.steps()
        ));
        let mut module = stream_module(&n, self.in_width(), self.out_width());
        if self.is_loaded() {
            let end = module
                .rfind("\n);")
                .expect("stream_module ends its port list");
            module.insert_str(
                end,
                ",\n    input  wire load_rst,\n    input  wire load_valid,\n    \
                 input  wire [15:0] load_data,\n    output reg  loaded",
            );
        }
        v.push_str(&module);
        let mut b = String::new();
        // Stage A: the frame, the step counters and the weight address.
        let ram = self.input_ram();
        let (ram_depth, _) = self.input_ram_shape();
        let baw = bits_for(ram_depth - 1);
        if ram {
            b.push_str(&format!(
                "// Input RAM: two frames of {sf_n} words; word sf of a frame holds chunk sf of every plane\n\
                 // (plane k in bits k*SIMD..). One frame fills while the other is read, so a read\n\
                 // that is used never meets a write: no bypass for a collision (`no_rw_check`;\n\
                 // Yosys's would put a mux between the block RAM and its fabric register).\n\
                 (* no_rw_check *)\n\
                 reg  [{}:0] {n}_buf [0:{}];\n\
                 reg  [{}:0] {n}_wa;\n\
                 reg  [{}:0] {n}_raddr;\n\
                 reg  {n}_rhalf;\n\
                 // Frames complete in the RAM, the one being read included.\n\
                 reg  [1:0] {n}_full;\n\
                 wire {n}_busy = ({n}_full != 2'd0);\n",
                self.in_width() - 1,
                ram_depth - 1,
                baw - 1,
                baw - 1
            ));
        } else {
            if mmv {
                let w = self.in_width();
                let snw = bits_for(f_n as u64);
                b.push_str(&format!(
                    "// {f_n} frames per weight read: the frames being worked on, slot 0 in the low bits\n\
                     // (each step takes slot 0's low chunk, then the slots rotate down, slot 0 to the\n\
                     // top rotated by a chunk), and the frames arriving for the next batch, each shifted\n\
                     // in at the top; `occ` tells the slots holding a frame.\n\
                     reg  {n}_busy;\nreg  [{}:0] {n}_in;\nreg  [{}:0] {n}_stage;\n\
                     reg  [{}:0] {n}_sn;\nreg  [{}:0] {n}_occ;\nreg  {n}_primed;\n",
                    f_n * w - 1,
                    f_n * w - 1,
                    snw - 1,
                    f_n - 1
                ));
            } else {
                b.push_str(&format!(
                    "reg  {n}_busy;\nreg  [{}:0] {n}_in;\n",
                    self.in_width() - 1
                ));
            }
        }
        // Each counter's "at its last value" is a register of its own, updated with the
        // counter, so that `in_ready` (and with it the producer's handshake) starts one LUT
        // level from flip-flops instead of behind the counters' compares: the CNN's third
        // convolution at 125 MHz on the ULX3S failed on that path (9.1 ns).
        let counter = |b: &mut String, name: &str, w: u32, count: usize, what: &str| {
            if count > 1 {
                b.push_str(&format!("reg  [{}:0] {n}_{name};\n", w - 1));
                b.push_str(&format!(
                    "// Always ({n}_{name} == {}).\nreg  {n}_last_{what};\n",
                    count - 1
                ));
            } else {
                b.push_str(&format!("wire {n}_last_{what} = 1'b1;\n"));
            }
        };
        if mmv {
            counter(&mut b, "f", fw, f_n, "f");
        }
        counter(&mut b, "sf", sfw, sf_n, "sf");
        counter(&mut b, "plane", pw, p_n, "plane");
        counter(&mut b, "nf", nfw, nf_n, "nf");
        if entries > 1 && !mmv {
            b.push_str(&format!("reg  [{}:0] {n}_waddr;\n", waw - 1));
        }
        b.push_str(&format!(
            "wire {n}_group_done = {n}_last_sf && {n}_last_plane;\n\
             wire {n}_last = {n}_group_done && {n}_last_nf;\n"
        ));
        if accumulate {
            let zero = |name: &str, w: u32, count: usize| {
                if count > 1 {
                    format!("({n}_{name} == {})", lit(w, 0))
                } else {
                    "1'b1".to_string()
                }
            };
            b.push_str(&format!(
                "wire {n}_first = {} && {};\n",
                zero("sf", sfw, sf_n),
                zero("plane", pw, p_n)
            ));
        }
        // Credits: stage A issues a frame's last step only while the output side has room for
        // its result, so that nothing after stage A ever waits.
        let (depth, cap) = (self.depth(), self.capacity());
        let qn = cap - 1;
        let cpw = bits_for(cap as u64);
        let room = if cap == 1 {
            format!("({n}_pending == {})", lit(cpw, 0))
        } else {
            format!("({n}_pending < {})", lit(cpw, cap as u64))
        };
        // Without an input RAM the input register's load and rotate enables fan out to every
        // one of its bits, across the device for a wide input: `in_ready` and `advance` are
        // then registers, each computed a cycle ahead from the next state of `busy`, the
        // counters' last-value flags and `pending` (the same values, so the same cycles), and
        // the enables start one LUT from flip-flops (the Fashion-MNIST table design's 3,136-bit
        // input register failed at 98-106 MHz on that path).
        let (advance, ready_reg) = if ram {
            (
                format!("{n}_busy && (!{n}_last || {n}_room)"),
                format!("wire {n}_room = {room};\n"),
            )
        } else {
            (
                format!("{n}_adv_q"),
                format!("reg  {n}_rdy_q;\nreg  {n}_adv_q;\n"),
            )
        };
        b.push_str(&format!(
            "// Frames whose last step is issued and that are not yet handed on (at most {cap}).\n\
             reg  [{}:0] {n}_pending;\n\
             {ready_reg}\
             wire {n}_advance = {advance};\n\
             assign in_ready = {};\n\
             wire {n}_in_fire = in_valid && in_ready;\n",
            cpw - 1,
            {
                // With an input RAM a chunk is taken while a half is free: a register, so that
                // the producer's handshake starts from flip-flops (its result register shifts
                // on it). A half frees the cycle after its last step; the next frame is already
                // in the other half then, so the layer keeps its rate.
                let ready = if ram {
                    format!("!{n}_full[1]")
                } else {
                    format!("{n}_rdy_q")
                };
                if self.is_loaded() {
                    format!("loaded && ({ready})")
                } else {
                    ready
                }
            }
        ));
        if mmv {
            // A batch starts when stage A is free and every slot has a frame, or some have and
            // none came in the cycle before: so a stream's last frames are never held back.
            // `start`, like `advance`, is a register decided a cycle ahead (see below): it
            // selects the load of every slot's bits.
            b.push_str(&format!(
                "wire {n}_batch_end = {n}_advance && {n}_last && {n}_last_f;\n\
                 reg  {n}_start;\n"
            ));
        }
        b.push('\n');
        // Memories.
        let lanes = pe * simd;
        let table = self.table > 0;
        if self.is_loaded() {
            self.emit_weight_ram(&mut b);
        } else if table {
            // Emitted after the input chunk they are addressed by.
        } else if mmv {
            self.emit_part_rom(&mut b, waw, fw);
        } else {
            b.push_str("// Weight ROM: word nf*SF+sf, bit p*SIMD+j = weight of neuron nf*PE+p on input sf*SIMD+j.\n");
            Rom::new(format!("{n}_w"), lanes, format!("{n}_waddr"), waw, entries)
                .in_block_ram(self.block_rom)
                .emit(&mut b, |a| {
                    format!("{lanes}'h{}", hex(self.rom_word(a), lanes))
                });
        }
        let tw = m.threshold_width;
        // Stage C's constants follow its neuron group; read early, they are addressed by the
        // group two stages before and land in registers named as the ROMs are otherwise.
        let early_c = self.early_constants();
        let group_addr = if early_c {
            format!("{n}_enf")
        } else {
            format!("{n}_cnf")
        };
        let mut consts = String::new();
        let mut const_regs: Vec<(String, usize)> = Vec::new();
        let mut rom_name = |base: &str, width: usize| {
            const_regs.push((format!("{n}_{base}"), width));
            if early_c {
                format!("{n}_{base}_rom")
            } else {
                format!("{n}_{base}")
            }
        };
        match &self.activation {
            MvtuActivation::Threshold { invert, .. } => {
                consts.push_str("// Threshold ROM (clamped to 0..max_sum+1) and direction bits per neuron group.\n");
                Rom::new(
                    rom_name("thr", pe * tw as usize),
                    pe * tw as usize,
                    group_addr.clone(),
                    nfw,
                    nf_n,
                )
                .emit(&mut consts, |g| {
                    self.group_literal(g, tw, |i| m.thresholds[i] as u64)
                });
                Rom::new(rom_name("inv", pe), pe, group_addr.clone(), nfw, nf_n)
                    .emit(&mut consts, |g| {
                        self.group_literal(g, 1, |i| invert[i] as u64)
                    });
            }
            MvtuActivation::Scores { bias, scale } => {
                let sw = m.score_width;
                consts.push_str("// Score offset ROM per neuron group (two's complement).\n");
                Rom::new(
                    rom_name("bias", pe * sw as usize),
                    pe * sw as usize,
                    group_addr.clone(),
                    nfw,
                    nf_n,
                )
                .emit(&mut consts, |g| {
                    self.group_literal(g, sw, |i| bias[i] as i64 as u64)
                });
                let mw = self.scale_width();
                if mw > 0 {
                    consts.push_str("// Score multiplier ROM per neuron group.\n");
                    Rom::new(
                        rom_name("scale", pe * mw as usize),
                        pe * mw as usize,
                        group_addr.clone(),
                        nfw,
                        nf_n,
                    )
                    .emit(&mut consts, |g| {
                        self.group_literal(g, mw, |i| u64::from(scale[i]))
                    });
                }
            }
        }
        if !early_c {
            b.push_str(&consts);
        }
        // Where each step stood, carried along the pipeline: valid bits (reset) and the rest
        // packed into one tag register per stage (no reset).
        let mut tags: Vec<(&str, u32)> = vec![("last", 1)];
        if accumulate {
            tags.push(("first", 1));
        }
        if nf_n > 1 {
            tags.push(("group", 1));
            tags.push(("nf", nfw));
        }
        if p_n > 1 {
            tags.push(("plane", pw));
        }
        if mmv {
            // Whether the step's slot holds a frame (its result is handed on).
            tags.push(("occ", 1));
        }
        let tag_w: u32 = tags.iter().map(|t| t.1).sum();
        // Where a tag starts in the packed tag registers.
        let tag_offset = |name: &str| -> u32 {
            tags.iter()
                .take_while(|(t, _)| *t != name)
                .map(|(_, w)| w)
                .sum()
        };
        let a_tag = |tag: &str| match tag {
            "group" => format!("{n}_group_done"),
            "occ" => format!("{n}_occ[0]"),
            t => format!("{n}_{t}"),
        };
        let a_tags: Vec<String> = tags.iter().rev().map(|(t, _)| a_tag(t)).collect();
        let split = self.activation_stage;
        let score_stage = self.score_stage();
        let cst = self.constant_stage();
        let tree_last = cst - usize::from(split);
        b.push_str(&format!(
            "\n// Pipeline: stage 1 (and 2 if listed) registers the weight read and the input chunk, stages ..{tree_last}\n\
             // the popcount trees every {} adder level(s); {}.\n",
            self.stage_levels,
            if split {
                if score_stage {
                    format!("stage {cst} the accumulators, whose product with the score multiplier\n// is registered; stage {depth} adds the score offset into the result")
                } else {
                    format!("stage {depth} the accumulators, whose threshold compare (or score offset)\n// goes into the result")
                }
            } else {
                "the accumulate and threshold compare (or score offset) follow in one stage".to_string()
            }
        ));
        for k in 1..=depth {
            if split && k == depth {
                // The accumulate stage uses only some of the tags.
                b.push_str("/* verilator lint_off UNUSED */\n");
            }
            b.push_str(&format!(
                "reg  {n}_v{k};\nreg  [{}:0] {n}_t{k};\n",
                tag_w - 1
            ));
            if split && k == depth {
                b.push_str("/* verilator lint_on UNUSED */\n");
            }
        }
        // Accumulation (stage B) reads the tree's tags, activation (stage C) the accumulators'.
        let mut off = 0;
        for (tag, w) in &tags {
            let range = if *w == 1 {
                format!("[{off}]")
            } else {
                format!("[{}:{off}]", off + w - 1)
            };
            let decl = if *w == 1 {
                "wire ".to_string()
            } else {
                format!("wire [{}:0] ", w - 1)
            };
            let (side, k) = match *tag {
                "first" | "plane" => ("b", tree_last),
                "nf" => ("c", cst),
                _ => ("c", depth),
            };
            let wire = format!("{decl}{n}_{side}{tag} = {n}_t{k}{range};\n");
            if *tag == "nf" && early_c {
                // Constants read early are addressed two stages ahead, not by stage C's group.
                b.push_str(&format!(
                    "/* verilator lint_off UNUSED */\n{wire}/* verilator lint_on UNUSED */\n"
                ));
            } else {
                b.push_str(&wire);
            }
            off += w;
        }
        if early_c {
            // The first register after the read becomes a block RAM's own, as for the weights;
            // the second, in the fabric, feeds the compare in step with stage C.
            let off = tag_offset("nf");
            b.push_str(&format!(
                "// Stage C's constants, read two stages ahead into two registers.\n\
                 wire [{}:0] {n}_enf = {n}_t{}[{}:{off}];\n",
                nfw - 1,
                cst - 2,
                off + nfw - 1
            ));
            b.push_str(&consts);
            for (name, width) in &const_regs {
                b.push_str(&format!(
                    "reg  [{}:0] {name}_q;\nreg  [{}:0] {name};\n",
                    width - 1,
                    width - 1
                ));
            }
        }
        // A fully unrolled layer's weights are one constant word: no register, so that each
        // XNOR becomes a wire or an inverter inside the tree.
        let constant = entries == 1 && !self.is_loaded();
        let copies = self.input_copies();
        let rr = self.read_registers.max(1);
        let groups = self.table_groups();
        // Each table's counts are registered on their own (the block RAM's read register),
        // with three read registers once more (the block's output register, see
        // `passes::pipelining::read_registers_of`), then, with two or three, all of them in the
        // fabric.
        let table_reg = if rr >= 2 { "tq" } else { "tr" };
        if table {
            let reg = table_reg;
            let mut parts = Vec::new();
            for (g, (&k, (_, rw))) in groups.iter().zip(self.table_reads()).enumerate() {
                let w = pe * bits_for(k as u64) as usize;
                // A shorter group's register holds the whole word its memory port reads.
                let decl = format!("reg  [{}:0] {n}_{reg}{g};\n", rw - 1);
                if rw > w {
                    b.push_str(&format!(
                        "/* verilator lint_off UNUSED */\n{decl}/* verilator lint_on UNUSED */\n"
                    ));
                } else {
                    b.push_str(&decl);
                }
                if rr == 3 {
                    b.push_str(&format!("reg  [{}:0] {n}_to{g};\n", w - 1));
                }
                parts.push(counts(&format!("{n}_{reg}{g}"), w, rw));
            }
            parts.reverse();
            let rw = self.read_width();
            if rr >= 2 {
                b.push_str(&format!("reg  [{}:0] {n}_wr;\n", rw - 1));
            } else {
                b.push_str(&format!(
                    "wire [{}:0] {n}_wr = {{{}}};\n",
                    rw - 1,
                    parts.join(", ")
                ));
            }
        } else {
            b.push_str(&format!(
                "{} [{}:0] {n}_wr{};\n",
                if constant { "wire" } else { "reg " },
                lanes - 1,
                if constant {
                    format!(" = {n}_w")
                } else {
                    String::new()
                },
            ));
            if copies > 1 {
                for c in 0..copies {
                    b.push_str(&format!("reg  [{}:0] {n}_xr{c};\n", simd - 1));
                }
                let all: Vec<String> = (0..copies).rev().map(|c| format!("{n}_xr{c}")).collect();
                b.push_str(&format!(
                    "wire [{}:0] {n}_xr = {{{}}};\n",
                    copies * simd - 1,
                    all.join(", ")
                ));
            } else {
                // With an input RAM and one read register, the RAM's read register is the
                // chunk's.
                b.push_str(&format!(
                    "{} [{}:0] {n}_xr;\n",
                    if ram && rr == 1 { "wire" } else { "reg " },
                    simd - 1
                ));
            }
            // A second register after the read: the first becomes the block RAM's own read
            // register, the second starts the tree off a fabric flip-flop.
            if rr == 2 && !constant && !self.part_register() {
                b.push_str(&format!("reg  [{}:0] {n}_wq;\n", lanes - 1));
            }
            if rr == 2 || ram {
                // The input RAM's read register holds the word of every plane.
                b.push_str(&format!(
                    "reg  [{}:0] {n}_xq;\n",
                    if ram { p_n * simd } else { simd } - 1
                ));
            }
        }
        // With two read registers the input RAM is read a cycle early (at the address stage A
        // is about to take), so that its slow output goes straight into a fabric register and
        // the plane select starts from that register. One plane has no select: the RAM's read
        // register then feeds the second read register directly, and reading early would only
        // put the next-address logic in front of the RAM (and, where the RAM is LUT RAM, in
        // front of its read multiplexer: 11.8 ns on the ULX3S).
        let early = ram && rr == 2 && p_n > 1;
        if early {
            b.push_str(&format!(
                "reg  [{}:0] {n}_xs;\nreg  [{}:0] {n}_raddr_d;\n\
                 // The read address plus one, kept beside it so that no adder sits between the\n\
                 // step counters and the RAM's address.\n\
                 reg  [{}:0] {n}_rnext;\nreg  [{}:0] {n}_rnext_d;\n",
                p_n * simd - 1,
                baw - 1,
                baw - 1,
                baw - 1
            ));
        }
        let word = if early {
            format!("{n}_xs")
        } else {
            format!("{n}_xq")
        };
        let widths = self.stage_widths();
        debug_assert_eq!(widths.len() + rr, tree_last);
        for (j, w) in widths.iter().enumerate() {
            let k = j + rr + 1;
            b.push_str(&format!(
                "reg  [{}:0] {n}_r{k};\nwire [{}:0] {n}_r{k}w;\n",
                pe * w - 1,
                pe * w - 1
            ));
        }
        // The accumulators exist to add up a group's steps or to feed the activation stage.
        let has_acc = accumulate || split;
        // With frames per weight read, one accumulator per PE and slot, newest in the low bits:
        // a slot's partial sum comes round again after the other slots' steps.
        let acc_slots = if accumulate { f_n } else { 1 };
        if has_acc {
            b.push_str(&format!(
                "reg  [{}:0] {n}_acc;\n",
                acc_slots * pe * aw as usize - 1
            ));
        }
        // Every slot's finished groups, newest at the top.
        let res_entries = (nf_n - 1) * f_n;
        if nf_n > 1 {
            b.push_str(&format!(
                "reg  [{}:0] {n}_res;\n",
                res_entries * pe * ew - 1
            ));
        }
        // Datapath.
        // The input register rotates by SIMD bits per step, so a step's chunk is always its low
        // bits: one 2:1 mux per register bit instead of a shifter indexed by the chunk offset
        // (log2(bits) mux levels on the critical path). A group's P * SF steps rotate it
        // exactly once around, so every neuron group sees the frame from its first chunk.
        if ram {
            // A step's chunk is its plane's part of the word read: the plane travels with the
            // step in the first tag register.
            b.push_str(&format!("\nreg  [{}:0] {n}_x;\n", simd - 1));
            if p_n > 1 {
                let off = tag_offset("plane");
                let plane = if pw == 1 {
                    format!("{n}_t1[{off}]")
                } else {
                    format!("{n}_t1[{}:{off}]", off + pw - 1)
                };
                let mut c = format!("case ({plane})\n");
                for k in 0..p_n {
                    let label = if k + 1 == p_n {
                        "default".to_string()
                    } else {
                        lit(pw, k as u64)
                    };
                    c.push_str(&format!(
                        "    {label}: {n}_x = {word}[{}:{}];\n",
                        (k + 1) * simd - 1,
                        k * simd
                    ));
                }
                c.push_str("endcase\n");
                b.push_str("always @* begin\n");
                indent(&mut b, 4, &c);
                b.push_str("end\n");
            } else {
                b.push_str(&format!("always @* {n}_x = {word};\n"));
            }
            if rr == 1 {
                b.push_str(&format!("assign {n}_xr = {n}_x;\n"));
            }
        } else {
            let x = if accumulate || mmv {
                format!("{n}_in[{}:0]", simd - 1)
            } else {
                format!("{n}_in")
            };
            b.push_str(&format!("\nwire [{}:0] {n}_x = {x};\n", simd - 1));
        }
        if table {
            self.emit_tables(&mut b, waw);
        }
        b.push_str(&format!("wire [{}:0] {n}_sum;\n", pe * aw as usize - 1));
        b.push_str(&format!("wire [{}:0] {n}_group;\n", pe * ew - 1));
        if score_stage {
            // The product and the offset it meets, a stage after the accumulators.
            b.push_str(&format!(
                "wire [{w}:0] {n}_prodw;\nreg  [{w}:0] {n}_prod;\nreg  [{w}:0] {n}_bias_d;\n",
                w = pe * ew - 1
            ));
        }
        b.push_str(&format!("genvar {n}_g;\ngenerate\n    for ({n}_g = 0; {n}_g < {pe}; {n}_g = {n}_g + 1) begin : {n}_lane\n"));
        let mut lane = String::new();
        let mut nodes: Vec<Node> = if table {
            // The lane's count from each table: its PE's bits of the table's word.
            let mut off = 0;
            groups
                .iter()
                .map(|&k| {
                    let bw = bits_for(k as u64) as usize;
                    let node = (format!("{n}_wr[{off} + {n}_g*{bw} +: {bw}]"), k as u64);
                    off += pe * bw;
                    node
                })
                .collect()
        } else {
            let chunk = if copies > 1 {
                format!(
                    "{n}_xr[({n}_g / {}) * {simd} +: {simd}]",
                    pe.div_ceil(copies)
                )
            } else {
                format!("{n}_xr")
            };
            lane.push_str(&format!(
                "wire [{}:0] xn = ~({chunk} ^ {n}_wr[{n}_g*{simd} +: {simd}]);\n",
                simd - 1
            ));
            (0..simd).map(|i| (format!("xn[{i}]"), 1)).collect()
        };
        lane.push_str("// Popcount adder tree, registered every few levels.\n");
        let l = self.stage_levels.max(1);
        for (j, w) in widths.iter().enumerate() {
            let k = j + rr + 1;
            nodes = adder_levels(&mut lane, nodes, j * l, l, self.ternary_tree(), !constant);
            let mut off = 0;
            let mut regd = Vec::with_capacity(nodes.len());
            for (e, mx) in &nodes {
                let bw = bits_for(*mx) as usize;
                lane.push_str(&format!(
                    "assign {n}_r{k}w[{n}_g*{w}+{off} +: {bw}] = {e};\n"
                ));
                regd.push((format!("{n}_r{k}[{n}_g*{w}+{off} +: {bw}]"), *mx));
                off += bw;
            }
            nodes = regd;
        }
        debug_assert_eq!(nodes.len(), 1, "the last tree register holds the popcount");
        let pc = format!("{n}_r{tree_last}[{n}_g*{cw} +: {cw}]");
        let mut pcx = zext(&pc, cw, aw);
        if p_n > 1 {
            pcx = format!("({pcx} << {n}_bplane)");
        }
        if accumulate {
            lane.push_str(&format!(
                "assign {n}_sum[{n}_g*{aw} +: {aw}] = ({n}_bfirst ? {} : {n}_acc[({}*{pe} + {n}_g)*{aw} +: {aw}]) + {pcx};\n",
                lit(aw, 0),
                acc_slots - 1
            ));
        } else {
            lane.push_str(&format!("assign {n}_sum[{n}_g*{aw} +: {aw}] = {pcx};\n"));
        }
        // With an activation stage the compare reads the accumulators, else the sum into them.
        let sum = if split {
            format!("{n}_acc[{n}_g*{aw} +: {aw}]")
        } else {
            format!("{n}_sum[{n}_g*{aw} +: {aw}]")
        };
        match &self.activation {
            // A clamped threshold of 0 makes the compare constant on purpose (an always-on
            // neuron); Verilator would flag that.
            MvtuActivation::Threshold { .. } => lane.push_str(&format!(
                "/* verilator lint_off UNSIGNED */\n/* verilator lint_off CMPCONST */\n\
                 assign {n}_group[{n}_g] = ({} >= {n}_thr[{n}_g*{tw} +: {tw}]) ^ {n}_inv[{n}_g];\n\
                 /* verilator lint_on CMPCONST */\n/* verilator lint_on UNSIGNED */\n",
                zext(&sum, aw, tw)
            )),
            MvtuActivation::Scores { .. } => {
                let sw = m.score_width;
                let mw = self.scale_width();
                // The product fits the score width (the memory pass sizes it so), so it is
                // taken modulo 2^sw like the offset's two's complement sum.
                let scaled = if mw > 0 {
                    format!(
                        "{} * {}",
                        zext(&sum, aw, sw),
                        zext(&format!("{n}_scale[{n}_g*{mw} +: {mw}]"), mw, sw)
                    )
                } else {
                    zext(&sum, aw, sw)
                };
                if score_stage {
                    lane.push_str(&format!(
                        "assign {n}_prodw[{n}_g*{sw} +: {sw}] = {scaled};\n\
                         assign {n}_group[{n}_g*{sw} +: {sw}] = {n}_prod[{n}_g*{sw} +: {sw}] + {n}_bias_d[{n}_g*{sw} +: {sw}];\n"
                    ));
                } else {
                    lane.push_str(&format!(
                        "assign {n}_group[{n}_g*{sw} +: {sw}] = {scaled} + {n}_bias[{n}_g*{sw} +: {sw}];\n"
                    ));
                }
            }
        }
        indent(&mut b, 8, &lane);
        b.push_str("    end\nendgenerate\n\n");
        // Sequential logic.
        let res_w = res_entries * pe * ew;
        // The whole result; a chunked output hands it on from a register of its own.
        let out_w = self.outputs * ew;
        let chunked = self.chunked_output();
        let ob = if chunked {
            format!("{n}_ob")
        } else {
            "out_data".to_string()
        };
        let result = if nf_n > 1 && mmv {
            // The slot's earlier groups lie every F entries down from the newest.
            let entry = pe * ew;
            let parts: Vec<String> = (1..nf_n)
                .map(|k| {
                    let hi = res_entries * entry - 1 - (k * f_n - 1) * entry;
                    format!("{n}_res[{hi}:{}]", hi + 1 - entry)
                })
                .collect();
            format!("{{{n}_group, {}}}", parts.join(", "))
        } else if nf_n > 1 {
            format!("{{{n}_group, {n}_res}}")
        } else {
            format!("{n}_group")
        };
        b.push_str(&format!(
            "wire [{}:0] {n}_result = {result};\n\
             wire {n}_push = {n}_v{depth} && {n}_clast{};\n",
            out_w - 1,
            if mmv {
                format!(" && {n}_cocc")
            } else {
                String::new()
            }
        ));
        if chunked {
            // A result leaves with its last chunk; the chunk counter, a register, selects the
            // chunk handed on, so that the consumer's ready enables no register as wide as the
            // result.
            let beats = self.out_beats();
            let ocw = bits_for(beats as u64 - 1);
            let oc = self.out_chunk;
            b.push_str(&format!(
                "// Chunked output: {beats} chunks of {oc} bits per result, lowest first; the\n\
                 // result register rotates by a chunk at each handshake.\n\
                 reg  [{}:0] {n}_ob;\n\
                 reg  [{}:0] {n}_oc;\n\
                 wire {n}_ofire = out_valid && out_ready;\n\
                 wire {n}_pop = {n}_ofire && ({n}_oc == {});\n\
                 always @* out_data = {n}_ob[{}:0];\n",
                out_w - 1,
                ocw - 1,
                lit(ocw, beats as u64 - 1),
                oc - 1
            ));
        } else {
            b.push_str(&format!("wire {n}_pop = out_valid && out_ready;\n"));
        }
        if ram {
            // The RAM's write port, apart from its read so that Yosys infers a block RAM.
            b.push_str(&format!(
                "always @(posedge clk) begin\n    if ({n}_in_fire) {n}_buf[{n}_wa] <= in_data;\nend\n\n"
            ));
        } else {
            // The input register has no reset (its contents matter only while busy), so that it
            // maps to flip-flops with a clock enable and one 2:1 mux per bit. A frame arriving
            // in the last step wins over the last rotation.
            if mmv {
                let w = self.in_width();
                let fwid = f_n * w;
                let rot0 = if accumulate {
                    format!("{n}_in[{}:0], {n}_in[{}:{simd}]", simd - 1, w - 1)
                } else {
                    format!("{n}_in[{}:0]", w - 1)
                };
                // The collected frames shift in a slice at a time, each slice enabled through a
                // copy of the ready register of its own: one enable for all `F` frames' bits was
                // a net across the device behind the control (the ULX3S SFC `28px 8x784m4 ..`:
                // 10.3 ns of routing from `rdy_q` through `in_fire` at 76 MHz).
                let slices = self.frame_slices();
                let step = fwid.div_ceil(slices);
                b.push_str(&format!(
                    "wire {n}_rdy_d;\nwire [{}:0] {n}_shifted = {{in_data, {n}_stage[{}:{w}]}};\n",
                    fwid - 1,
                    fwid - 1
                ));
                for g in 0..slices {
                    let (lo, hi) = (g * step, ((g + 1) * step).min(fwid) - 1);
                    b.push_str(&format!(
                        "reg  {n}_rdy_s{g};\n\
                         (* keep *) always @(posedge clk) {n}_rdy_s{g} <= !rst && {n}_rdy_d;\n\
                         always @(posedge clk) if (in_valid && {n}_rdy_s{g}) {n}_stage[{hi}:{lo}] <= {n}_shifted[{hi}:{lo}];\n"
                    ));
                }
                b.push_str(&format!(
                    "always @(posedge clk) begin\n    \
                     if ({n}_start) begin\n        {n}_in <= {n}_stage;\n        \
                     {n}_occ <= ~({{{f_n}{{1'b1}}}} >> {n}_sn);\n    \
                     end else if ({n}_advance) begin\n        \
                     {n}_in <= {{{rot0}, {n}_in[{}:{w}]}};\n        \
                     {n}_occ <= {{{n}_occ[0], {n}_occ[{}:1]}};\n    end\nend\n\n",
                    fwid - 1,
                    f_n - 1
                ));
            } else {
                b.push_str(&format!(
                    "always @(posedge clk) begin\n    if ({n}_in_fire) {n}_in <= in_data;\n"
                ));
                if accumulate {
                    b.push_str(&format!(
                    "    else if ({n}_advance) {n}_in <= {{{n}_in[{}:0], {n}_in[{}:{simd}]}};\n",
                    simd - 1,
                    self.in_width() - 1
                ));
                }
                b.push_str("end\n\n");
            }
        }
        // The datapath registers load every cycle: no enable, no reset.
        let (w_in, x_in) = if rr == 2 {
            (format!("{n}_wq"), format!("{n}_xq"))
        } else {
            (format!("{n}_wr"), format!("{n}_xr"))
        };
        let x_read = if early {
            format!("{n}_xq <= {n}_buf[{n}_raddr_d];\n{n}_xs <= {n}_xq;\n")
        } else if ram {
            format!("{n}_xq <= {n}_buf[{n}_raddr];\n")
        } else if copies > 1 && rr == 1 {
            String::new()
        } else {
            format!("{x_in} <= {n}_x;\n")
        };
        let mut dp = if table {
            let reads = self.table_reads();
            let mut dp: String = reads
                .iter()
                .enumerate()
                .map(|(g, (read, _))| format!("{n}_{table_reg}{g} <= {read};\n"))
                .collect();
            let width = |g: usize| pe * bits_for(groups[g] as u64) as usize;
            if rr == 3 {
                dp.extend((0..groups.len()).map(|g| {
                    format!(
                        "{n}_to{g} <= {};\n",
                        counts(&format!("{n}_tq{g}"), width(g), reads[g].1)
                    )
                }));
            }
            if rr >= 2 {
                let parts: Vec<String> = (0..groups.len())
                    .rev()
                    .map(|g| {
                        if rr == 3 {
                            format!("{n}_to{g}")
                        } else {
                            counts(&format!("{n}_tq{g}"), width(g), reads[g].1)
                        }
                    })
                    .collect();
                dp.push_str(&format!("{n}_wr <= {{{}}};\n", parts.join(", ")));
            }
            dp.push_str(&format!("{n}_t1 <= {{{}}};\n", a_tags.join(", ")));
            dp
        } else {
            format!(
                "{}{x_read}{n}_t1 <= {{{}}};\n",
                if constant {
                    String::new()
                } else if self.part_register() {
                    // The word, complete a cycle after it is taken, serves the F steps of its
                    // slots.
                    format!("if ({n}_consume_q) {n}_wr <= {n}_wnext;\n")
                } else if mmv {
                    // The word serves the F steps of its slots.
                    format!("if ({n}_consume) {w_in} <= {n}_wnext;\n")
                } else {
                    format!("{w_in} <= {n}_w;\n")
                },
                a_tags.join(", ")
            )
        };
        if rr == 2 && !table && !constant && !self.part_register() {
            dp.push_str(&format!("{n}_wr <= {n}_wq;\n"));
        }
        if rr == 2 && !table && copies == 1 {
            dp.push_str(&format!(
                "{n}_xr <= {};\n",
                if ram {
                    format!("{n}_x")
                } else {
                    format!("{n}_xq")
                }
            ));
        }
        if early_c {
            for (name, _) in &const_regs {
                dp.push_str(&format!("{name}_q <= {name}_rom;\n{name} <= {name}_q;\n"));
            }
        }
        for k in 2..=depth {
            dp.push_str(&format!("{n}_t{k} <= {n}_t{};\n", k - 1));
            if k > rr && k <= tree_last {
                dp.push_str(&format!("{n}_r{k} <= {n}_r{k}w;\n"));
            }
        }
        if has_acc {
            if acc_slots > 1 {
                dp.push_str(&format!(
                    "if ({n}_v{tree_last}) {n}_acc <= {{{n}_acc[{}:0], {n}_sum}};\n",
                    (acc_slots - 1) * pe * aw as usize - 1
                ));
            } else {
                dp.push_str(&format!("if ({n}_v{tree_last}) {n}_acc <= {n}_sum;\n"));
            }
        }
        if score_stage {
            dp.push_str(&format!(
                "{n}_prod <= {n}_prodw;\n{n}_bias_d <= {n}_bias;\n"
            ));
        }
        if nf_n > 1 {
            let shifted = if res_entries > 1 {
                format!("{{{n}_group, {n}_res[{}:{}]}}", res_w - 1, pe * ew)
            } else {
                format!("{n}_group")
            };
            dp.push_str(&format!(
                "if ({n}_v{depth} && {n}_cgroup) {n}_res <= {shifted};\n"
            ));
        }
        // The output register and the queue behind it; a chunked result rotates its next chunk
        // into the low bits as each one is handed on.
        let rotate = chunked.then(|| {
            format!(
                "else if ({n}_ofire) {ob} <= {{{ob}[{}:0], {ob}[{}:{}]}};\n",
                self.out_chunk - 1,
                out_w - 1,
                self.out_chunk
            )
        });
        if qn == 0 {
            dp.push_str(&format!("if ({n}_push) {ob} <= {n}_result;\n"));
            if let Some(r) = &rotate {
                dp.push_str(r);
            }
        } else {
            let qaw = bits_for(qn as u64 - 1);
            let qcw = bits_for(qn as u64);
            if qn == 1 {
                b.push_str(&format!("reg  [{}:0] {n}_q;\n", out_w - 1));
            } else {
                b.push_str(&format!(
                    "reg  [{}:0] {n}_q [0:{}];\nreg  [{}:0] {n}_qhead;\nreg  [{}:0] {n}_qtail;\n",
                    out_w - 1,
                    qn - 1,
                    qaw - 1,
                    qaw - 1
                ));
            }
            b.push_str(&format!(
                "reg  [{}:0] {n}_qn;\n\
                 wire {n}_out_free = !out_valid || {};\n\
                 wire {n}_take = {n}_out_free && ({n}_qn != {});\n\
                 wire {n}_direct = {n}_push && {n}_out_free && ({n}_qn == {});\n\
                 wire {n}_enq = {n}_push && !{n}_direct;\n",
                qcw - 1,
                if chunked {
                    format!("{n}_pop")
                } else {
                    "out_ready".to_string()
                },
                lit(qcw, 0),
                lit(qcw, 0)
            ));
            let (head, tail) = if qn == 1 {
                (format!("{n}_q"), format!("{n}_q"))
            } else {
                (format!("{n}_q[{n}_qhead]"), format!("{n}_q[{n}_qtail]"))
            };
            dp.push_str(&format!(
                "if ({n}_take) {ob} <= {head};\nelse if ({n}_direct) {ob} <= {n}_result;\n"
            ));
            if let Some(r) = &rotate {
                dp.push_str(r);
            }
            dp.push_str(&format!("if ({n}_enq) {tail} <= {n}_result;\n"));
        }
        b.push_str("always @(posedge clk) begin\n");
        indent(&mut b, 4, &dp);
        b.push_str("end\n\n");
        if copies > 1 {
            // Each copy in a process of its own marked keep: Yosys merges flip-flops with the
            // same input, and only a kept cell stays a copy.
            let src = if rr == 2 {
                format!("{n}_xq")
            } else {
                format!("{n}_x")
            };
            for c in 0..copies {
                b.push_str(&format!(
                    "(* keep *) always @(posedge clk) {n}_xr{c} <= {src};\n"
                ));
            }
            b.push('\n');
        }
        if !ram {
            let flag = |name: &str, w: u32, count: usize, when: &str| {
                if count > 1 {
                    format!(
                        "wire {n}_last_{name}_d = ({when}) ? (!{n}_last_{name} && ({n}_{name} == {})) : {n}_last_{name};\n",
                        lit(w, count as u64 - 2)
                    )
                } else {
                    format!("wire {n}_last_{name}_d = 1'b1;\n")
                }
            };
            b.push_str("// The next state of what `in_ready` and `advance` read, as the block below assigns it.\n");
            // With frames per weight read the slot counter is innermost.
            let step = if mmv {
                b.push_str(&flag("f", fw, f_n, &format!("{n}_advance")));
                format!("{n}_advance && {n}_last_f")
            } else {
                format!("{n}_advance")
            };
            b.push_str(&flag("sf", sfw, sf_n, &step));
            b.push_str(&flag("plane", pw, p_n, &format!("{step} && {n}_last_sf")));
            b.push_str(&flag("nf", nfw, nf_n, &format!("{step} && {n}_group_done")));
            let room_d = if cap == 1 {
                format!("({n}_pending_d == {})", lit(cpw, 0))
            } else {
                format!("({n}_pending_d < {})", lit(cpw, cap as u64))
            };
            if mmv {
                let snw = bits_for(f_n as u64);
                let full = lit(snw, f_n as u64);
                b.push_str(&format!(
                    "wire [{}:0] {n}_sn_d = {n}_start ? {} : {n}_sn + {};\n\
                     wire {n}_busy_d = {n}_start || ({n}_busy && !{n}_batch_end);\n\
                     wire [{}:0] {n}_pending_d = {n}_pending + {} - {};\n\
                     wire {n}_last_d = {n}_last_sf_d && {n}_last_plane_d && {n}_last_nf_d;\n\
                     wire {n}_room_d = {room_d};\n\
                     wire {n}_adv_d = {n}_busy_d && (!{n}_last_d || {n}_room_d);\n\
                     wire {n}_f0_d = {n}_advance ? {n}_last_f : ({n}_f == {});\n\
                     wire {n}_start_d = (!{n}_busy_d || ({n}_adv_d && {n}_last_d && {n}_last_f_d)) && \
                     ({n}_sn_d == {full} || ({n}_sn_d != {} && !{n}_in_fire));\n\
                     wire {n}_consume_d = {n}_adv_d && {n}_f0_d;\n\
                     wire [{}:0] {n}_rcount_d = {n}_consume ? {} : {n}_rcount + {};\n\
                     wire {n}_rd_next = ({n}_rcount_d != {}) || {n}_consume_d;\n\
                     wire {n}_primed_d = {n}_primed || {n}_rfull;\n\
                     assign {n}_rdy_d = {n}_primed_d && ({n}_sn_d != {full});\n\
                     always @(posedge clk) begin\n    \
                     if (rst) begin\n        {n}_rdy_q <= 1'b0;\n        {n}_adv_q <= 1'b0;\n        \
                     {n}_start <= 1'b0;\n        {n}_consume <= 1'b0;\n        {n}_rd <= 1'b0;\n        \
                     {n}_raddr <= {};\n    \
                     end else begin\n        \
                     {n}_rdy_q <= {n}_rdy_d;\n        \
                     {n}_adv_q <= {n}_adv_d;\n        \
                     {n}_start <= {n}_start_d;\n        {n}_consume <= {n}_consume_d;\n        \
                     {n}_rd <= {n}_rd_next;\n        \
                     if ({n}_rd_next) {n}_raddr <= ({n}_raddr == {}) ? {} : {n}_raddr + {};\n    \
                     end\nend\n\n",
                    snw - 1,
                    widen(&format!("{n}_in_fire"), snw),
                    widen(&format!("{n}_in_fire"), snw),
                    cpw - 1,
                    widen(&format!("({n}_advance && {n}_last && {n}_occ[0])"), cpw),
                    widen(&format!("{n}_pop"), cpw),
                    lit(fw, 0),
                    lit(snw, 0),
                    snw - 1,
                    lit(snw, 1),
                    widen(&format!("{n}_rd"), snw),
                    lit(snw, f_n as u64),
                    lit(waw + fw, (entries * f_n) as u64 - 1),
                    lit(waw + fw, (entries * f_n) as u64 - 1),
                    lit(waw + fw, 0),
                    lit(waw + fw, 1),
                ));
                b.push_str(&format!(
                    "`ifdef FORMAL\n\
                     always @(*) begin\n    \
                     if (!rst) begin\n        \
                     assert({n}_rdy_q == ({n}_primed && {n}_sn != {full}));\n        \
                     assert({n}_consume == ({n}_advance && {n}_f == {}));\n        \
                     assert({n}_rd == (!{n}_rfull || {n}_consume));\n        \
                     assert({n}_adv_q == ({n}_busy && (!{n}_last || {room})));\n    \
                     end\nend\n\
                     `endif\n\n",
                    lit(fw, 0)
                ));
            } else {
                b.push_str(&format!(
                    "wire {n}_busy_d = {n}_in_fire || ({n}_busy && !({n}_advance && {n}_last));\n\
                 wire [{}:0] {n}_pending_d = {n}_pending + {} - {};\n\
                 wire {n}_last_d = {n}_last_sf_d && {n}_last_plane_d && {n}_last_nf_d;\n\
                 wire {n}_room_d = {room_d};\n\
                 always @(posedge clk) begin\n    \
                 if (rst) begin\n        {n}_rdy_q <= 1'b1;\n        {n}_adv_q <= 1'b0;\n    \
                 end else begin\n        \
                 {n}_rdy_q <= !{n}_busy_d || ({n}_last_d && {n}_room_d);\n        \
                 {n}_adv_q <= {n}_busy_d && (!{n}_last_d || {n}_room_d);\n    \
                 end\nend\n\n",
                    cpw - 1,
                    widen(&format!("({n}_advance && {n}_last)"), cpw),
                    widen(&format!("{n}_pop"), cpw)
                ));
                // A prover's induction starts from any state, also one where these registers
                // disagree with what they stand for; stating that they agree lets it close.
                b.push_str(&format!(
                    "`ifdef FORMAL\n\
                 always @(*) begin\n    \
                 if (!rst) begin\n        \
                 assert({n}_rdy_q == (!{n}_busy || ({n}_last && {room})));\n        \
                 assert({n}_adv_q == ({n}_busy && (!{n}_last || {room})));\n    \
                 end\nend\n\
                 `endif\n\n"
                ));
            }
        }
        b.push_str("always @(posedge clk) begin\n    if (rst) begin\n");
        let mut resets = vec![
            "out_valid <= 1'b0;".to_string(),
            format!("{n}_pending <= {};", lit(cpw, 0)),
        ];
        if chunked {
            resets.push(format!(
                "{n}_oc <= {};",
                lit(bits_for(self.out_beats() as u64 - 1), 0)
            ));
        }
        if ram {
            resets.push(format!("{n}_full <= 2'd0;"));
            resets.push(format!("{n}_wa <= {};", lit(baw, 0)));
            resets.push(format!("{n}_raddr <= {};", lit(baw, 0)));
            if early {
                resets.push(format!("{n}_rnext <= {};", lit(baw, 1)));
            }
            resets.push(format!("{n}_rhalf <= 1'b0;"));
        } else {
            resets.insert(0, format!("{n}_busy <= 1'b0;"));
        }
        for k in 1..=depth {
            resets.push(format!("{n}_v{k} <= 1'b0;"));
        }
        if sf_n > 1 {
            resets.push(format!("{n}_sf <= {};", lit(sfw, 0)));
            resets.push(format!("{n}_last_sf <= 1'b0;"));
        }
        if p_n > 1 {
            resets.push(format!("{n}_plane <= {};", lit(pw, 0)));
            resets.push(format!("{n}_last_plane <= 1'b0;"));
        }
        if nf_n > 1 {
            resets.push(format!("{n}_nf <= {};", lit(nfw, 0)));
            resets.push(format!("{n}_last_nf <= 1'b0;"));
        }
        if entries > 1 && !mmv {
            resets.push(format!("{n}_waddr <= {};", lit(waw, 0)));
        }
        if mmv {
            resets.push(format!("{n}_f <= {};", lit(fw, 0)));
            resets.push(format!("{n}_last_f <= 1'b0;"));
            resets.push(format!("{n}_sn <= {};", lit(bits_for(f_n as u64), 0)));
            resets.push(format!("{n}_primed <= 1'b0;"));
            resets.push(format!("{n}_rcount <= {};", lit(bits_for(f_n as u64), 0)));
            resets.push(format!("{n}_we <= {};", lit(f_n as u32 - 1, 0)));
            if self.part_register() {
                resets.push(format!("{n}_we_q <= {};", lit(f_n as u32 - 1, 0)));
                resets.push(format!("{n}_consume_q <= 1'b0;"));
            }
        }
        if qn > 0 {
            resets.push(format!("{n}_qn <= {};", lit(bits_for(qn as u64), 0)));
            if qn > 1 {
                let qaw = bits_for(qn as u64 - 1);
                resets.push(format!("{n}_qhead <= {};", lit(qaw, 0)));
                resets.push(format!("{n}_qtail <= {};", lit(qaw, 0)));
            }
        }
        for r in &resets {
            b.push_str(&format!("        {r}\n"));
        }
        b.push_str("    end else begin\n");
        let mut s = String::new();
        let mut raddr_comb = String::new();
        if ram {
            let sf = sf_n as u64;
            // The read address steps through the frame's SF words once per plane and neuron
            // group, then moves to the other half.
            let (ra, op) = if early {
                (format!("{n}_raddr_d"), "=")
            } else {
                (format!("{n}_raddr"), "<=")
            };
            let step = format!(
                "if (!{n}_last_sf) {ra} {op} {n}_raddr + {};\n\
                 else if ({n}_last) {ra} {op} {n}_rhalf ? {} : {};\n\
                 else {ra} {op} {n}_rhalf ? {} : {};\n",
                lit(baw, 1),
                lit(baw, 0),
                lit(baw, sf),
                lit(baw, sf),
                lit(baw, 0),
            );
            s.push_str(&format!(
                "// A frame is in when its last chunk is written, out when its last step is issued.\n\
                 {n}_full <= {n}_full + {{1'b0, {n}_in_fire && ({n}_wa == {} || {n}_wa == {})}} - {{1'b0, {n}_advance && {n}_last}};\n\
                 if ({n}_in_fire) {n}_wa <= ({n}_wa == {}) ? {} : {n}_wa + {};\n\
                 if ({n}_advance && {n}_last) {n}_rhalf <= !{n}_rhalf;\n",
                lit(baw, sf - 1),
                lit(baw, 2 * sf - 1),
                lit(baw, 2 * sf - 1),
                lit(baw, 0),
                lit(baw, 1),
            ));
            if early {
                s.push_str(&format!(
                    "{n}_raddr <= {n}_raddr_d;\n{n}_rnext <= {n}_rnext_d;\n"
                ));
                // No reset here: the address register is reset, and what the RAM reads during
                // reset is never used, so the reset net stays off the read address. The next
                // sequential address comes from its own register (past a half's end it wraps
                // unused).
                let step = format!(
                    "if (!{n}_last_sf) begin\n    {n}_raddr_d = {n}_rnext;\n    {n}_rnext_d = {n}_rnext + {};\n\
                     end else if ({n}_last) begin\n    {n}_raddr_d = {n}_rhalf ? {} : {};\n    \
                     {n}_rnext_d = {n}_rhalf ? {} : {};\n\
                     end else begin\n    {n}_raddr_d = {n}_rhalf ? {} : {};\n    \
                     {n}_rnext_d = {n}_rhalf ? {} : {};\nend\n",
                    lit(baw, 1),
                    lit(baw, 0),
                    lit(baw, sf),
                    lit(baw, 1),
                    lit(baw, sf + 1),
                    lit(baw, sf),
                    lit(baw, 0),
                    lit(baw, sf + 1),
                    lit(baw, 1),
                );
                let mut c = format!(
                    "{n}_raddr_d = {n}_raddr;\n{n}_rnext_d = {n}_rnext;\nif ({n}_advance) begin\n"
                );
                indent(&mut c, 4, &step);
                c.push_str("end\n");
                let mut blk = String::from("always @* begin\n");
                indent(&mut blk, 4, &c);
                blk.push_str("end\n");
                raddr_comb = blk;
            } else {
                s.push_str(&format!("if ({n}_advance) begin\n"));
                indent(&mut s, 4, &step);
                s.push_str("end\n");
            }
        } else if mmv {
            s.push_str(&format!(
                "if ({n}_start) {n}_busy <= 1'b1;\nelse if ({n}_batch_end) {n}_busy <= 1'b0;\n\
                 {n}_sn <= {n}_sn_d;\n{n}_primed <= {n}_primed_d;\n\
                 // A word's parts are read one per cycle while its word is not yet complete, and\n\
                 // the next word's first in the cycle the complete one is taken.\n\
                 {n}_rcount <= {n}_rcount_d;\n\
                 {n}_we <= {{{}}};\n",
                (0..f_n - 1)
                    .rev()
                    .map(|k| format!(
                        "{n}_rd && ({n}_raddr[{}:0] == {})",
                        fw - 1,
                        lit(fw, k as u64)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if self.part_register() {
                s.push_str(&format!(
                    "{n}_we_q <= {n}_we;\n{n}_consume_q <= {n}_consume;\n"
                ));
            }
        } else {
            s.push_str(&format!(
                "if ({n}_in_fire) begin\n    {n}_busy <= 1'b1;\nend else if ({n}_advance && {n}_last) begin\n    {n}_busy <= 1'b0;\nend\n"
            ));
        }
        s.push_str(&format!(
            "{n}_pending <= {n}_pending + {} - {};\n",
            widen(
                &if mmv {
                    format!("({n}_advance && {n}_last && {n}_occ[0])")
                } else {
                    format!("({n}_advance && {n}_last)")
                },
                cpw
            ),
            widen(&format!("{n}_pop"), cpw)
        ));
        if chunked {
            let ocw = bits_for(self.out_beats() as u64 - 1);
            s.push_str(&format!(
                "if ({n}_ofire) {n}_oc <= {n}_pop ? {} : {n}_oc + {};\n",
                lit(ocw, 0),
                lit(ocw, 1)
            ));
        }
        s.push_str(&format!("{n}_v1 <= {n}_advance;\n"));
        for k in 2..=depth {
            s.push_str(&format!("{n}_v{k} <= {n}_v{};\n", k - 1));
        }
        if qn == 0 {
            s.push_str(&format!(
                "if ({n}_push) out_valid <= 1'b1;\nelse if ({n}_pop) out_valid <= 1'b0;\n"
            ));
        } else {
            let qcw = bits_for(qn as u64);
            s.push_str(&format!(
                "if ({n}_take || {n}_direct) out_valid <= 1'b1;\nelse if ({n}_pop) out_valid <= 1'b0;\n\
                 {n}_qn <= {n}_qn + {} - {};\n",
                widen(&format!("{n}_enq"), qcw),
                widen(&format!("{n}_take"), qcw)
            ));
            if qn > 1 {
                let qaw = bits_for(qn as u64 - 1);
                let inc = |r: &str| {
                    format!(
                        "{n}_{r} <= ({n}_{r} == {}) ? {} : {n}_{r} + {};\n",
                        lit(qaw, qn as u64 - 1),
                        lit(qaw, 0),
                        lit(qaw, 1)
                    )
                };
                s.push_str(&format!("if ({n}_take) {}", inc("qhead")));
                s.push_str(&format!("if ({n}_enq) {}", inc("qtail")));
            }
        }
        let mut a = String::new();
        let mut waddr_comb = String::new();
        if sf_n > 1 {
            a.push_str(&format!(
                "{n}_sf <= {n}_last_sf ? {} : {n}_sf + {};\n\
                 {n}_last_sf <= !{n}_last_sf && ({n}_sf == {});\n",
                lit(sfw, 0),
                lit(sfw, 1),
                lit(sfw, sf_n as u64 - 2)
            ));
        }
        if p_n > 1 {
            a.push_str(&format!(
                "if ({n}_last_sf) begin\n    {n}_plane <= {n}_last_plane ? {} : {n}_plane + {};\n    \
                 {n}_last_plane <= !{n}_last_plane && ({n}_plane == {});\nend\n",
                lit(pw, 0),
                lit(pw, 1),
                lit(pw, p_n as u64 - 2)
            ));
        }
        if nf_n > 1 {
            a.push_str(&format!(
                "if ({n}_group_done) begin\n    {n}_nf <= {n}_last_nf ? {} : {n}_nf + {};\n    \
                 {n}_last_nf <= !{n}_last_nf && ({n}_nf == {});\nend\n",
                lit(nfw, 0),
                lit(nfw, 1),
                lit(nfw, nf_n as u64 - 2)
            ));
        }
        if entries > 1 && !mmv {
            // The weight address steps through the group's SF words once per plane.
            let op = if self.is_loaded() { "=" } else { "<=" };
            let wa = if self.is_loaded() {
                format!("{n}_waddr_d")
            } else {
                format!("{n}_waddr")
            };
            let back = if p_n > 1 && sf_n > 1 {
                format!(
                    "else if ({n}_last_sf && !{n}_last_plane) {wa} {op} {n}_waddr - {};\n",
                    lit(waw, sf_n as u64 - 1)
                )
            } else if p_n > 1 {
                format!("else if (!{n}_last_plane) {wa} {op} {n}_waddr;\n")
            } else {
                String::new()
            };
            let step = format!(
                "if ({n}_last) {wa} {op} {};\n{back}else {wa} {op} {n}_waddr + {};\n",
                lit(waw, 0),
                lit(waw, 1)
            );
            if self.is_loaded() {
                // The RAM reads at the address the step after this one uses, so the next
                // address is a wire here (a ROM instead lets Yosys fold the address register
                // into the block RAM itself).
                let mut c = format!("{n}_waddr_d = {n}_waddr;\nif (rst) {n}_waddr_d = {};\nelse if ({n}_advance) begin\n", lit(waw, 0));
                indent(&mut c, 4, &step);
                c.push_str("end\n");
                let mut blk = String::from("always @* begin\n");
                indent(&mut blk, 4, &c);
                blk.push_str("end\n");
                waddr_comb = blk;
                a.push_str(&format!("{n}_waddr <= {n}_waddr_d;\n"));
            } else {
                a.push_str(&step);
            }
        }
        if mmv {
            // The slot counter is innermost; the others move after the last slot.
            s.push_str(&format!(
                "if ({n}_advance) begin\n    {n}_f <= {n}_last_f ? {} : {n}_f + {};\n    \
                 {n}_last_f <= !{n}_last_f && ({n}_f == {});\nend\n",
                lit(fw, 0),
                lit(fw, 1),
                lit(fw, f_n as u64 - 2)
            ));
            if !a.is_empty() {
                s.push_str(&format!("if ({n}_advance && {n}_last_f) begin\n"));
                indent(&mut s, 4, &a);
                s.push_str("end\n");
            }
        } else if !a.is_empty() {
            s.push_str(&format!("if ({n}_advance) begin\n"));
            indent(&mut s, 4, &a);
            s.push_str("end\n");
        }
        indent(&mut b, 8, &s);
        b.push_str("    end\nend\n");
        b.push_str(&waddr_comb);
        b.push_str(&raddr_comb);
        indent(&mut v, 4, &b);
        v.push_str("endmodule\n");
        v
    }

    fn wire_name(&self) -> String {
        format!("l{}", self.index)
    }

    fn folding(&self) -> Option<(usize, usize)> {
        Some((self.pe, self.simd))
    }

    fn report_fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("inputs", self.inputs.into()),
            ("outputs", self.outputs.into()),
            ("idle_outputs", self.idle_outputs.into()),
            ("mmv", self.frames_per_read().into()),
            ("planes", self.planes.into()),
            ("vectors", self.vectors.into()),
            ("pe", self.pe.into()),
            ("simd", self.simd.into()),
            ("lanes", (self.pe * self.simd).into()),
            ("stage_levels", self.stage_levels.into()),
            ("read_registers", self.read_registers.into()),
            ("pipeline_registers", self.depth().into()),
            ("output_queue", (self.capacity() - 1).into()),
            ("input_ram", self.input_ram().into()),
            ("table_inputs", self.table.into()),
        ]
    }

    fn load_words(&self) -> usize {
        Mvtu::load_words(self)
    }

    fn load_image(&self) -> Vec<u16> {
        Mvtu::load_image(self)
    }

    fn cycle_model(&self) -> StageModel {
        let m = self.mem();
        let wps = words_for(self.simd);
        let entries = self.neuron_folds() * self.synapse_folds();
        let mut lanes = vec![0u64; entries * self.pe * wps];
        for a in 0..entries {
            let word = self.rom_word(a);
            for g in 0..self.pe {
                let dst = &mut lanes[(a * self.pe + g) * wps..][..wps];
                for (i, d) in dst.iter_mut().enumerate() {
                    let n = (self.simd - i * 64).min(64);
                    *d = get_bits(word, g * self.simd + i * 64, n);
                }
            }
        }
        let (threshold, invert, bias) = match &self.activation {
            MvtuActivation::Threshold { invert, .. } => {
                (m.thresholds.clone(), invert.clone(), Vec::new())
            }
            MvtuActivation::Scores { bias, .. } => (Vec::new(), Vec::new(), bias.clone()),
        };
        let scale = match &self.activation {
            MvtuActivation::Scores { scale, .. } => scale.clone(),
            MvtuActivation::Threshold { .. } => Vec::new(),
        };
        let plane_words = words_for(self.inputs);
        let out = if self.is_scores() {
            Beat::Scores(vec![0; self.outputs])
        } else {
            Beat::Bits(vec![0; words_for(self.outputs)])
        };
        StageModel::Mvtu(MvtuModel {
            dp: Datapath::new(
                (
                    self.pe,
                    self.simd,
                    self.neuron_folds(),
                    self.synapse_folds(),
                    self.planes,
                ),
                plane_words,
                lanes,
                threshold,
                invert,
                bias,
                scale,
                self.is_scores(),
            ),
            steps: self.steps(),
            depth: self.depth(),
            cap: self.capacity(),
            busy: false,
            chunked: self.input_ram(),
            stored: VecDeque::new(),
            filling: vec![0; plane_words * self.planes],
            wsf: 0,
            input: vec![0; plane_words * self.planes],
            step: 0,
            lasts: 0,
            inflight: VecDeque::new(),
            pending: 0,
            out_valid: false,
            chunk: Beat::Bits(vec![0; words_for(self.out_chunk.max(1))]),
            out_chunk: self.out_chunk,
            out_beats: self.out_beats(),
            oc: 0,
            out,
            queue: VecDeque::new(),
            spare: Vec::new(),
            spare_frames: Vec::new(),
            mmv: (self.frames_per_read() > 1).then(|| MmvState {
                f: self.frames_per_read(),
                collected: VecDeque::new(),
                slots: vec![None; self.frames_per_read()],
                slot: 0,
                clocks: 0,
                fired: false,
            }),
        })
    }
}

/// The model's state for frames per weight read (see [`crate::passes::mmv`]).
#[derive(Clone)]
struct MmvState {
    /// Slots per batch (`F`).
    f: usize,
    /// Frames collected for the next batch, oldest first (the Verilog's `stage` and `sn`).
    collected: VecDeque<Vec<u64>>,
    /// The batch's frames by slot; a batch of `k < F` frames fills the last `k` slots.
    slots: Vec<Option<Vec<u64>>>,
    /// The slot of the next step (the Verilog's `f`).
    slot: usize,
    /// Clock edges since reset, until the first weight word is read (`primed`).
    clocks: usize,
    /// A frame came in in the last cycle (a batch with empty slots waits for the next).
    fired: bool,
}

impl MmvState {
    /// The Verilog's `primed`: the read side has read a whole word, `F + 2` edges after reset.
    fn primed(&self) -> bool {
        self.clocks > self.f + 1
    }
}

/// Cycle model of an MVTU: the same handshakes and step timing as the Verilog, cheaper to run.
///
/// The Verilog's counters `nf`, `plane`, `sf` (and `waddr`) are the mixed-radix digits of one
/// step number, so the model keeps only `step`. The datapath result depends on nothing but the
/// input register, which cannot change while the block is busy, so the model evaluates the whole
/// schedule (same ROM words, same fold order, same accumulate-and-shift) in one go in the cycle
/// that issues the last step, and carries the result down the pipeline to stage B.
pub struct MvtuModel {
    /// The arithmetic, evaluated a whole frame at a time.
    dp: Datapath,
    /// Steps per frame (`nf_n * p_n * sf_n`).
    steps: usize,
    /// Registers between stage A and stage B.
    depth: usize,
    /// Frames issued and not yet handed on that the output side holds.
    cap: usize,
    /// Register mode: stage A holds a frame.
    busy: bool,
    /// The input arrives in chunks into a RAM of two frames (see [`Mvtu::chunk_interval`]).
    chunked: bool,
    /// RAM mode: the complete frames in the RAM, the one being read first.
    stored: VecDeque<Vec<u64>>,
    /// RAM mode: the frame being written, and its next chunk.
    filling: Vec<u64>,
    wsf: usize,
    /// The frame stage A works on (RAM mode: while evaluating it).
    input: Vec<u64>,
    /// `(nf * p_n + plane) * sf_n + sf` of the Verilog's counters.
    step: usize,
    /// Bit `k`: pipeline register `k + 1` holds a frame's last step.
    lasts: u64,
    /// The results of those frames, oldest first.
    inflight: VecDeque<Beat>,
    /// The Verilog's `pending`.
    pending: usize,
    out_valid: bool,
    /// Chunked output: the chunk handed on (`out_data`), its bits, the chunks per result and
    /// the Verilog's chunk counter.
    chunk: Beat,
    out_chunk: usize,
    out_beats: usize,
    oc: usize,
    /// The result in the output register.
    out: Beat,
    /// The queue behind the output register, oldest first.
    queue: VecDeque<Beat>,
    /// Result buffers to reuse.
    spare: Vec<Beat>,
    /// RAM mode: frame buffers to reuse.
    spare_frames: Vec<Vec<u64>>,
    /// Frames per weight read, if more than one.
    mmv: Option<MmvState>,
}

impl MvtuModel {
    /// Stage A has a frame to work on.
    fn busy(&self) -> bool {
        if self.chunked {
            !self.stored.is_empty()
        } else {
            self.busy
        }
    }

    fn last(&self) -> bool {
        self.step == self.steps - 1
    }

    fn room(&self) -> bool {
        self.pending < self.cap
    }

    fn mask(&self) -> u64 {
        if self.depth >= 64 {
            u64::MAX
        } else {
            (1u64 << self.depth) - 1
        }
    }

    /// A frame buffer for the RAM mode's next frame: a used one if there is one.
    fn spare_frame(&mut self) -> Vec<u64> {
        self.spare_frames
            .pop()
            .unwrap_or_else(|| vec![0; self.filling.len()])
    }

    /// Keeps a frame buffer for [`MvtuModel::spare_frame`].
    fn filling_spare(&mut self, frame: Vec<u64>) {
        self.spare_frames.push(frame);
    }

    /// The chunk the chunk counter selects from the output register.
    fn refresh_chunk(&mut self) {
        let (Beat::Bits(out), Beat::Bits(chunk)) = (&self.out, &mut self.chunk) else {
            unreachable!("a chunked result is bits")
        };
        chunk.fill(0);
        copy_bits(out, self.oc * self.out_chunk, chunk, 0, self.out_chunk);
    }

    /// Stage A issues the frame's last step (after `lasts` moved on for the edge): the
    /// frame's result enters the pipeline registers.
    fn issue_last(&mut self) {
        if self.chunked {
            // The frame leaves the RAM with its last step.
            let frame = self.stored.pop_front().expect("a busy RAM holds a frame");
            let old = std::mem::replace(&mut self.input, frame);
            self.filling_spare(old);
        }
        let mut r = self.buffer();
        self.dp.evaluate(&self.input, &mut r);
        self.inflight.push_back(r);
        self.lasts |= 1;
        self.step = 0;
        self.busy = false;
        self.pending += 1;
    }

    /// A result buffer: a used one if there is one.
    fn buffer(&mut self) -> Beat {
        self.spare.pop().unwrap_or_else(|| self.out.clone())
    }

    /// Stage A and the input side with frames per weight read, after the output side: a step
    /// per cycle through `(word, slot)`; each slot's last step evaluates its frame.
    fn clock_mmv(&mut self, input: Option<&Beat>, pop: bool) {
        let mut m = self.mmv.take().expect("called with frames per weight read");
        let last = self.last();
        let advance = self.busy && (!last || self.room());
        let batch_end = advance && last && m.slot + 1 == m.f;
        let n = m.collected.len();
        let start = (!self.busy || batch_end) && (n == m.f || (n > 0 && !m.fired));
        self.lasts = (self.lasts << 1) & self.mask();
        if advance {
            if last {
                if let Some(frame) = &m.slots[m.slot] {
                    let mut r = self.buffer();
                    self.dp.evaluate(frame, &mut r);
                    self.inflight.push_back(r);
                    self.lasts |= 1;
                    self.pending += 1;
                }
            }
            m.slot += 1;
            if m.slot == m.f {
                m.slot = 0;
                self.step = if last { 0 } else { self.step + 1 };
            }
            if batch_end {
                self.busy = false;
            }
        }
        if pop {
            self.pending -= 1;
        }
        if start {
            let k = m.collected.len();
            for (i, s) in m.slots.iter_mut().enumerate() {
                *s = if i + k >= m.f {
                    m.collected.pop_front()
                } else {
                    None
                };
            }
            self.busy = true;
        }
        if let Some(beat) = input {
            let Beat::Bits(b) = beat else {
                panic!("an MVTU takes bit beats")
            };
            m.collected.push_back(b.clone());
        }
        m.fired = input.is_some();
        m.clocks = m.clocks.saturating_add(1);
        self.mmv = Some(m);
    }
}

impl CycleModel for MvtuModel {
    fn in_ready(&self, _out_ready: bool) -> bool {
        if let Some(m) = &self.mmv {
            return m.primed() && m.collected.len() < m.f;
        }
        if self.chunked {
            self.stored.len() < 2
        } else {
            !self.busy || (self.last() && self.room())
        }
    }

    fn out_valid(&self) -> bool {
        self.out_valid
    }

    fn out_data(&self) -> &Beat {
        if self.out_chunk > 0 {
            &self.chunk
        } else {
            &self.out
        }
    }

    // Counted as the event-driven driver reads them: the edges up to the one that may change
    // a signal, which the driver then clocks for real; the edges before it may be skipped.
    fn quiet_cycles(&self) -> u64 {
        if self.mmv.is_some() {
            // Clocked every cycle: a batch's start depends on whether a frame came in.
            return 0;
        }
        let mut quiet = u64::MAX;
        if self.lasts != 0 {
            // Up to the edge on which the oldest finished frame reaches stage B.
            let k = 63 - self.lasts.leading_zeros() as usize;
            quiet = (self.depth - k) as u64;
        }
        if self.busy() {
            // Steps before the last one change nothing visible; the last one, once issued,
            // is on its way to the output.
            if !self.last() {
                quiet = quiet.min((self.steps - 1 - self.step) as u64);
            } else if self.room() {
                // Issuing it keeps `in_ready` high (the register is free again) unless the
                // RAM had two frames; then the frame is `depth` edges from stage B.
                quiet = if self.chunked {
                    0
                } else {
                    quiet.min(self.depth as u64 + 1)
                };
            }
        }
        quiet
    }

    fn skip(&mut self, cycles: u64) {
        let mut cycles = cycles;
        if cycles > 0 && self.busy() && self.last() && self.room() {
            debug_assert!(!self.chunked, "a RAM's last step is clocked, not skipped");
            self.lasts = (self.lasts << 1) & self.mask();
            self.issue_last();
            cycles -= 1;
        }
        self.lasts = if cycles >= 64 {
            0
        } else {
            (self.lasts << cycles) & self.mask()
        };
        if self.busy() && !self.last() {
            self.step += cycles as usize;
        }
    }

    fn clock(&mut self, input: Option<&Beat>, out_ready: bool) {
        // Stage B and the output side.
        let fire = self.out_valid && out_ready;
        // A result leaves with its last chunk (its only one without chunking).
        let pop = fire && self.oc + 1 == self.out_beats;
        let out_free = !self.out_valid || pop;
        let push = (self.lasts >> (self.depth - 1)) & 1 == 1;
        let take = out_free && !self.queue.is_empty();
        let direct = push && out_free && self.queue.is_empty();
        let result = if push {
            self.inflight.pop_front()
        } else {
            None
        };
        if take {
            let head = self.queue.pop_front().expect("the queue is not empty");
            let old = std::mem::replace(&mut self.out, head);
            self.spare.push(old);
        }
        if let Some(r) = result {
            if direct {
                let old = std::mem::replace(&mut self.out, r);
                self.spare.push(old);
            } else {
                debug_assert!(self.queue.len() < self.cap - 1, "credits keep a place");
                self.queue.push_back(r);
            }
        }
        if take || direct {
            self.out_valid = true;
        } else if pop {
            self.out_valid = false;
        }
        if fire {
            self.oc = if pop { 0 } else { self.oc + 1 };
        }
        if self.out_chunk > 0 && (fire || take || direct) {
            self.refresh_chunk();
        }
        if self.mmv.is_some() {
            self.clock_mmv(input, pop);
            return;
        }
        // Stage A issues a step; the registers between move on.
        let last = self.last();
        let advance = self.busy() && (!last || self.room());
        self.lasts = (self.lasts << 1) & self.mask();
        if advance {
            if last {
                self.issue_last();
            } else {
                self.step += 1;
            }
        }
        if pop {
            self.pending -= 1;
        }
        if let Some(beat) = input {
            let Beat::Bits(b) = beat else {
                panic!("an MVTU takes bit beats")
            };
            if self.chunked {
                // A beat of the simulator keeps each plane word-aligned (as the adapter's).
                let dp = &self.dp;
                let beat_words = words_for(dp.simd);
                for k in 0..dp.p_n {
                    let plane = &mut self.filling[k * dp.plane_words..][..dp.plane_words];
                    copy_bits(b, k * beat_words * 64, plane, self.wsf * dp.simd, dp.simd);
                }
                self.wsf += 1;
                if self.wsf == self.dp.sf_n {
                    self.wsf = 0;
                    let next = self.spare_frame();
                    let full = std::mem::replace(&mut self.filling, next);
                    self.stored.push_back(full);
                }
            } else {
                self.input.copy_from_slice(b);
                self.busy = true;
            }
        }
    }
}
