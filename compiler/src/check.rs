//! Well-formedness of a [`Design`], checked before any backend reads it, so that user mistakes
//! (an impossible folding) come back as messages naming the layer instead of broken Verilog.

use crate::ir::{Design, InputFormat, Stage, MAX_INPUT_BITS};
use crate::CompileError;

/// The pixels per beat divide the frame (at most [`InputFormat::max_pixels_per_beat`]: a beat
/// is at most [`MAX_INPUT_BITS`] wide); packed input comes with a one-bit encoding; every
/// layer's PE divides its outputs and its SIMD its inputs, all non-zero.
pub fn check_folding(design: &Design) -> Result<(), CompileError> {
    check_shape(design)?;
    let input = design.input();
    let (k, pixels, format) = (input.pixels_per_beat, input.pixels, input.format);
    if format == InputFormat::Packed && !input.one_bit() {
        return Err(CompileError::Folding(format!(
            "packed input (\"input\": \"packed\" in the fold file, --packed-input) needs a \
             one-bit encoding such as threshold:T, but the model's encoding {} has {} bit(s) per \
             pixel in {} plane(s)",
            input.encoding,
            input.encoding.bits_per_pixel(),
            input.encoding.planes()
        )));
    }
    let most = format.max_pixels_per_beat();
    if k == 0 || k > most || pixels % k != 0 {
        return Err(CompileError::Folding(format!(
            "pixels_per_beat {k} must divide the {pixels} pixels of a frame and be 1..={most} \
             (input beats of at most {MAX_INPUT_BITS} bits, {})",
            match format {
                InputFormat::Pixels => "a pixel byte takes 8",
                InputFormat::Packed => "a packed pixel takes 1",
            }
        )));
    }
    if let Some(channels) = design.input().stream {
        if channels % k != 0 {
            return Err(CompileError::Folding(format!(
                "pixels_per_beat {k} must divide the {channels} value(s) of an image pixel: the \
                 input streams one image pixel per beat to the first convolution or pool"
            )));
        }
    }
    for l in design.mvtus() {
        let kind = if l.is_conv() {
            format!(
                "convolution, {}-bit windows -> {} channels",
                l.inputs, l.outputs
            )
        } else {
            format!("{} inputs -> {} outputs", l.inputs, l.outputs)
        };
        let bad = |what: &str, v: usize, of: &str, n: usize| {
            Err(CompileError::Folding(format!(
                "layer {} ({kind}): {what} {v} {} the {n} {of}",
                l.index,
                if v == 0 {
                    "must be at least 1, not 0, and divide"
                } else if v > n {
                    "is larger than"
                } else {
                    "does not divide"
                }
            )))
        };
        if l.pe == 0 || l.pe > l.outputs || l.outputs % l.pe != 0 {
            return bad("PE", l.pe, "outputs", l.outputs);
        }
        if l.simd == 0 || l.simd > l.inputs || l.inputs % l.simd != 0 {
            return bad("SIMD", l.simd, "inputs", l.inputs);
        }
    }
    Ok(())
}

/// The pipeline starts with an input adapter and ends with an argmax, the two ends the top's
/// ports are made for.
fn check_shape(design: &Design) -> Result<(), CompileError> {
    let err = |m: &str| Err(CompileError::Invalid(m.into()));
    match (design.stages.first(), design.stages.last()) {
        (Some(Stage::Input(_)), Some(Stage::Argmax(_))) if design.stages.len() >= 2 => Ok(()),
        (Some(Stage::Input(_)), _) => err("the pipeline does not end with an argmax"),
        _ => err("the pipeline does not start with an input adapter"),
    }
}

/// Each stage's output stream is as wide as the next stage's input stream.
fn check_chain(design: &Design) -> Result<(), CompileError> {
    for w in design.stages.windows(2) {
        let (a, b) = (w[0].block(), w[1].block());
        if a.out_width() != b.in_width() {
            return Err(CompileError::Invalid(format!(
                "stage {} hands on {}-bit beats but stage {} takes {}-bit beats",
                a.name(),
                a.out_width(),
                b.name(),
                b.in_width()
            )));
        }
    }
    Ok(())
}

/// Most stages a design may have.
pub const MAX_STAGES: usize = 63;

/// The whole design: folding, memories present, widths the backends support, stream widths
/// that agree from stage to stage.
pub fn check(design: &Design) -> Result<(), CompileError> {
    check_folding(design)?;
    let err = |m: String| Err(CompileError::Invalid(m));
    if design.input().pixels == 0 {
        return err("the input has no pixels".into());
    }
    if design.mvtus().next().is_none() {
        return err("the model has no layers".into());
    }
    for l in design.mvtus() {
        let Some(m) = &l.memory else {
            return err(format!("layer {}: weight memory not laid out", l.index));
        };
        if m.acc_width > 40 || m.score_width > 64 {
            return err(format!("layer {}: sums too wide for the datapath", l.index));
        }
        if m.loaded && l.neuron_folds() * l.synapse_folds() < 2 {
            return err(format!(
                "layer {}: its weights are one constant word at this folding (PE {} x SIMD {}), \
                 nothing to load into RAM; keep it a ROM or fold it further",
                l.index, l.pe, l.simd
            ));
        }
    }
    if design.argmax().classes == 0 {
        return err("the model has no classes".into());
    }
    // Simulator and harnesses record a cycle's handshakes in one 64-bit word: a bit per stage
    // and one for the input.
    if design.stages.len() > MAX_STAGES {
        return err(format!(
            "{} stages (FIFOs included); at most {MAX_STAGES} can be simulated and traced",
            design.stages.len()
        ));
    }
    check_chain(design)
}
