//! Vector RAM: where a dense layer fed by another layer keeps its input vector, in registers
//! or in a RAM.
//!
//! By default a layer hands its whole result vector on in one beat, and the next layer copies
//! it into an input register that rotates by SIMD bits per step. The copy's load enable is the
//! next layer's `in_ready`, which comes from its step counters (a frame is taken in the cycle
//! of its last step), and it fans out to every bit of the register and its 2:1 load-or-rotate
//! mux: in the ULX3S Fashion-MNIST build (784-256-256-10, folded `64x16 1x128 1x4`) that
//! path, from layer 2's step counter through `in_ready` into the load enable of its 256-bit
//! input register, was the critical path (8.8 ns, 113.5 MHz against 125 MHz asked).
//!
//! With a vector RAM the producing layer hands its result on in chunks of the consumer's SIMD
//! bits, lowest first, one per beat, and the consumer writes each chunk into a RAM of two
//! vectors (one filling while the other is read, as the first layer's input buffer, see
//! [`super::input_buffer`]) and reads one chunk back per step. What changes in hardware:
//! - the consumer's `in_ready` is a register (a half of the RAM is free), no longer a function
//!   of its step counters, and enables one RAM write and its address counter, not a register
//!   as wide as the vector;
//! - the producer keeps its output register and rotates it by a chunk at each handshake, its
//!   low chunk being `out_data`: that enable is wide, but it starts from flip-flops (the
//!   consumer's ready and the producer's valid) through one gate, and the RAM's write data
//!   comes straight from flip-flops. A multiplexer selected by a chunk counter instead was
//!   tried first: for layer 2's 64 chunks of 4 bits it is six LUT levels deep;
//! - the consumer's rotating input register is gone; the vector sits in the RAM (LUT RAM or a
//!   block RAM, as Yosys maps it), and the producer's rotation costs what the consumer's did.
//!
//! The other shape considered, the producer writing each neuron group's PE bits into the
//! consumer's RAM as the group finishes, would make the RAM's write and read widths differ (PE
//! against SIMD, in general neither dividing the other) and move the consumer's back-pressure
//! into the producer's pipeline, which by design never waits after its first stage. Handing
//! on chunks keeps one valid/ready stream between layers, so FIFOs, the simulator and the
//! handshake proofs treat it like any other stream.
//!
//! The pass picks RAM for an input vector of at least [`MIN_VECTOR_RAM_BITS`] bits where the
//! folding allows it; a fold file's `input_ram_layers` lists exactly the layers that get one.

use super::Pass;
use crate::ir::{Design, Mvtu, Stage};
use crate::CompileError;

/// The narrowest input vector (bits) that the pass keeps in RAM by itself: from there on the
/// load enable of the input register fans out far enough to limit the clock.
pub const MIN_VECTOR_RAM_BITS: usize = 128;

/// The vector RAM pass: `None` chooses, `Some(layers)` puts exactly these layers' input
/// vectors in RAM (layer numbers from 1).
pub struct VectorRam(pub Option<Vec<usize>>);

/// Whether `consumer` can keep its input vector in RAM, written in chunks by `producer`, the
/// layer right before it; else why not.
pub fn vector_ram(producer: &Mvtu, consumer: &Mvtu) -> Result<(), String> {
    if producer.is_conv() || consumer.is_conv() {
        return Err("a convolution hands on or takes one pixel at a time".into());
    }
    if consumer.table > 0 {
        return Err(super::input_buffer::TABLES_NEED_REGISTERS.into());
    }
    if producer.frames_per_read() > 1 || consumer.frames_per_read() > 1 {
        return Err(
            "it or the layer before it works on several frames per weight read (mmv)".into(),
        );
    }
    if consumer.synapse_folds() < 2 {
        return Err(format!(
            "it reads its whole input in one step (SIMD {} = its {} inputs)",
            consumer.simd, consumer.inputs
        ));
    }
    if producer.outputs != consumer.inputs || producer.is_scores() {
        return Err(format!(
            "layer {} does not hand on its {} input bits",
            producer.index, consumer.inputs
        ));
    }
    Ok(())
}

/// Stage indices `(producer, consumer)` of each dense layer fed directly by another MVTU.
fn pairs(design: &Design) -> Vec<(usize, usize)> {
    (1..design.stages.len())
        .filter(|&i| {
            matches!(
                (&design.stages[i - 1], &design.stages[i]),
                (Stage::Mvtu(_), Stage::Mvtu(_))
            )
        })
        .map(|i| (i - 1, i))
        .collect()
}

fn mvtu(design: &Design, i: usize) -> &Mvtu {
    match &design.stages[i] {
        Stage::Mvtu(m) => m,
        _ => unreachable!("pairs are MVTUs"),
    }
}

/// What a fold file records for `design`: the layers whose input vector is in RAM, or `None`
/// if no layer has the choice.
pub fn choice(design: &Design) -> Option<Vec<usize>> {
    let mut any = false;
    let mut layers = Vec::new();
    for (p, c) in pairs(design) {
        let (p, c) = (mvtu(design, p), mvtu(design, c));
        if c.input_ram() {
            layers.push(c.index);
            any = true;
        } else if vector_ram(p, c).is_ok() {
            any = true;
        }
    }
    any.then_some(layers)
}

/// Puts the layer at stage `c` in RAM mode, fed in chunks by the layer at stage `p`.
fn buffer_in_ram(design: &mut Design, p: usize, c: usize) {
    let simd = mvtu(design, c).simd;
    if let Stage::Mvtu(l) = &mut design.stages[p] {
        l.out_chunk = simd;
    }
    if let Stage::Mvtu(l) = &mut design.stages[c] {
        // The producer can hand on a chunk every cycle.
        l.chunk_interval = 1;
    }
}

impl Pass for VectorRam {
    fn name(&self) -> &'static str {
        "vector-ram"
    }

    fn description(&self) -> &'static str {
        "keeps the input vector of a dense layer fed by another layer in a RAM of two vectors, \
         written in chunks"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        let pairs = pairs(design);
        for l in design.mvtus_mut() {
            l.out_chunk = 0;
        }
        for &(_, c) in &pairs {
            if let Stage::Mvtu(l) = &mut design.stages[c] {
                l.chunk_interval = 0;
            }
        }
        if let Some(layers) = &self.0 {
            for &want in layers {
                let found = pairs
                    .iter()
                    .find(|&&(_, c)| mvtu(design, c).index == want)
                    .copied();
                let Some((p, c)) = found else {
                    return Err(CompileError::Folding(format!(
                        "input_ram_layers: layer {want} is not a layer fed by the layer before \
                         it (layers that are: {})",
                        pairs
                            .iter()
                            .map(|&(_, c)| mvtu(design, c).index.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                };
                if let Err(why) = vector_ram(mvtu(design, p), mvtu(design, c)) {
                    return Err(CompileError::Folding(format!(
                        "input_ram_layers: layer {want} cannot keep its input in RAM: {why}"
                    )));
                }
                buffer_in_ram(design, p, c);
            }
            return Ok(());
        }
        for (p, c) in pairs {
            let (pl, cl) = (mvtu(design, p), mvtu(design, c));
            if vector_ram(pl, cl).is_ok() && cl.inputs >= MIN_VECTOR_RAM_BITS {
                buffer_in_ram(design, p, c);
            }
        }
        Ok(())
    }
}
