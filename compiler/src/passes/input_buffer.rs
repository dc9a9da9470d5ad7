//! Input buffer: where a dense first layer keeps its input frame, in registers or in a RAM.
//!
//! By default the input adapter packs the whole encoded frame into its output register and
//! hands it to the first layer in one beat, which copies it into its own input register and
//! rotates it by SIMD bits per step. A frame is then held twice in flip-flops, with a 2:1 mux
//! per bit: for Fashion-MNIST's 784 pixels in 4 bit planes 6,272 flip-flops and 3,136 LUTs,
//! about half the flip-flops and a quarter of the LUTs of the whole ULX3S design, and the load
//! enable of the 3,136-bit register was that design's critical path.
//!
//! With the input buffer in RAM, the adapter hands the frame on in chunks of SIMD bits per
//! plane (chunk mode), and the layer writes each chunk into a RAM that holds two frames (one
//! filling while the other is read) and reads one chunk back per step: the frame lives in block
//! RAM, the flip-flops left are one chunk in the adapter and the RAM's read register.
//!
//! The pass chooses RAM for a frame of at least [`MIN_RAM_BITS`] bits, where the buffer takes
//! block RAM rather than being mapped to logic anyway; a fold file's `input_ram` overrides.

use super::Pass;
use crate::ir::{Design, InputAdapter, Mvtu, Stage};
use crate::CompileError;

/// The smallest frame (bits, all planes) that the pass buffers in RAM by itself.
pub const MIN_RAM_BITS: usize = 1024;

/// Why a layer that reads tables keeps its input in registers.
pub const TABLES_NEED_REGISTERS: &str =
    "it reads tables, which its input chunk addresses as a step is issued, before a RAM read \
     of the chunk would return";

/// The input buffer pass: `None` chooses, `Some(true)` asks for RAM, `Some(false)` for
/// registers.
pub struct InputBuffer(pub Option<bool>);

/// Values per chunk if the first layer `l1`, fed by `adapter`, can take its input in chunks
/// into a RAM; else why not.
pub fn ram_chunk(adapter: &InputAdapter, l1: &Mvtu) -> Result<usize, String> {
    let bits = adapter.encoding.bits_per_pixel();
    let sf = l1.synapse_folds();
    if adapter.stream.is_some() || l1.is_conv() {
        return Err("the first layer reads a pixel stream (a convolution or pool)".into());
    }
    if l1.table > 0 {
        return Err(TABLES_NEED_REGISTERS.replacen("it ", "layer 1 ", 1));
    }
    if l1.frames_per_read() > 1 {
        return Err("layer 1 works on several frames per weight read (mmv)".into());
    }
    if sf < 2 {
        return Err(format!(
            "layer 1 reads its whole input in one step (SIMD {} = its {} inputs)",
            l1.simd, l1.inputs
        ));
    }
    if !l1.simd.is_multiple_of(bits) {
        return Err(format!(
            "layer 1's SIMD {} is not a whole number of encoded pixels ({bits} bits each)",
            l1.simd
        ));
    }
    let values = l1.simd / bits;
    if !values.is_multiple_of(adapter.pixels_per_beat) {
        return Err(format!(
            "pixels_per_beat {} does not divide the {values} pixels of a SIMD chunk",
            adapter.pixels_per_beat
        ));
    }
    Ok(values)
}

/// What a fold file records for `design`: whether its first layer buffers its input in RAM,
/// or `None` if the folding leaves no choice.
pub fn choice(design: &Design) -> Option<bool> {
    let l1 = first_layer(design)?;
    if l1.input_ram() {
        return Some(true);
    }
    ram_chunk(design.input(), l1).ok().map(|_| false)
}

/// Puts `design`'s first layer into chunk mode with `values` values per chunk.
fn buffer_in_ram(design: &mut Design, values: usize) {
    let k = design.input().pixels_per_beat;
    design.input_mut().chunk = Some(values);
    if let Some(Stage::Mvtu(l)) = design.stages.get_mut(1) {
        l.chunk_interval = values / k;
    }
}

/// The first layer, if it reads the input adapter directly.
fn first_layer(design: &Design) -> Option<&Mvtu> {
    match design.stages.get(1) {
        Some(Stage::Mvtu(l)) => Some(l),
        _ => None,
    }
}

impl Pass for InputBuffer {
    fn name(&self) -> &'static str {
        "input-buffer"
    }

    fn description(&self) -> &'static str {
        "keeps a dense first layer's input frame in a RAM of two frames instead of registers"
    }

    fn run(&self, design: &mut Design) -> Result<(), CompileError> {
        design.input_mut().chunk = None;
        for l in design.mvtus_mut() {
            l.chunk_interval = 0;
        }
        if self.0 == Some(false) {
            return Ok(());
        }
        let chunk = match first_layer(design) {
            Some(l1) => ram_chunk(design.input(), l1),
            None => Err("the model does not start with a dense layer".into()),
        };
        match (self.0, chunk) {
            (Some(true), Err(why)) => Err(CompileError::Folding(format!(
                "input_ram: the input cannot be buffered in RAM: {why}"
            ))),
            (Some(true), Ok(values)) => {
                buffer_in_ram(design, values);
                Ok(())
            }
            (_, Ok(values)) => {
                let l1 = first_layer(design).expect("a chunk needs a first layer");
                if l1.inputs * l1.planes >= MIN_RAM_BITS {
                    buffer_in_ram(design, values);
                }
                Ok(())
            }
            (_, Err(_)) => Ok(()),
        }
    }
}
