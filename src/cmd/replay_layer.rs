//! `flipchip sim --replay` of a counterexample of one layer's datapath proof (`flipchip prove
//! --datapath`, the harness `l{N}_equiv` or a part of it `l{N}_equiv_{k}`): the layer's unit in
//! the simulator, its cycle model alone, takes the beats the harness handed the design in the
//! cycles it handed them (the output always ready, as in the harness), and the design's
//! `in_ready`, `out_valid` and `out_data` are compared with the model's in every cycle. Where
//! they part, the message gives each differing output as the design, the simulator and the
//! specification (the harness's `y`) have it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use compiler::blocks::{Beat, Block, CycleModel};
use compiler::equiv::{harness, spec::SCORE_BITS};
use compiler::ir::{Design, Mvtu};
use serde_json::json;

use super::replay::{bits_lsb_first, num, signed_field};

/// The layer a harness named `l{N}_equiv` or `l{N}_equiv_{k}` proves.
fn layer_of(top: &str) -> Option<usize> {
    let rest = top.strip_prefix('l')?;
    let (n, tail) = rest.split_once("_equiv")?;
    (tail.is_empty()
        || tail
            .strip_prefix('_')
            .is_some_and(|k| k.parse::<usize>().is_ok()))
    .then(|| n.parse().ok())
    .flatten()
}

/// An input beat of `m` from the bits of the harness's `in_data` (plane `k` at bits
/// `k * plane_bits`), as the simulator hands beats on: each plane from a fresh word.
fn beat_of(m: &Mvtu, bits: &[bool]) -> Beat {
    let plane_bits = bits.len() / m.planes;
    let w = plane_bits.div_ceil(64);
    let mut words = vec![0u64; m.planes * w];
    for (i, &b) in bits.iter().enumerate() {
        let (k, j) = (i / plane_bits, i % plane_bits);
        words[k * w + j / 64] |= u64::from(b) << (j % 64);
    }
    Beat::Bits(words)
}

/// What one output element of the unit's result beat is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Element {
    Bit(bool),
    Score(i64),
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Element::Bit(b) => write!(f, "{}", u8::from(*b)),
            Element::Score(v) => write!(f, "{v}"),
        }
    }
}

/// The elements of a result beat of `m` from the design's `out_data`.
fn design_elements(m: &Mvtu, out_data: Option<&String>) -> Vec<Element> {
    let ow = m.out_width();
    if m.is_scores() {
        let ew = m.element_width() as usize;
        (0..ow / ew)
            .map(|i| Element::Score(signed_field(out_data, i * ew, ew)))
            .collect()
    } else {
        bits_lsb_first(out_data, ow)
            .into_iter()
            .map(Element::Bit)
            .collect()
    }
}

/// The elements of the model's result beat.
fn model_elements(m: &Mvtu, beat: &Beat) -> anyhow::Result<Vec<Element>> {
    Ok(match beat {
        Beat::Bits(words) => (0..m.out_width())
            .map(|i| Element::Bit(words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)))
            .collect(),
        Beat::Scores(v) => v.iter().map(|&s| Element::Score(s)).collect(),
        other => bail!("the simulator's {} gave {other:?}", m.name()),
    })
}

/// The specification's value of output `n` (neuron or class) from the harness's `y`.
fn spec_element(m: &Mvtu, y: Option<&String>, n: usize) -> Option<Element> {
    y?;
    Some(if m.is_scores() {
        let w = SCORE_BITS as usize;
        Element::Score(signed_field(y, n * w, w))
    } else {
        Element::Bit(bits_lsb_first(y, n + 1)[n])
    })
}

/// Replays the layer harness waveform `steps` (top module `top`) on its layer's unit of
/// `design` and prints where the design parts from the simulator.
pub(super) fn run(
    design: &Design,
    top: &str,
    steps: &[BTreeMap<String, String>],
    cex: &Path,
    json_out: bool,
) -> anyhow::Result<()> {
    let index = layer_of(top).with_context(|| {
        format!(
            "{}: the top module {top:?} is not a layer's datapath harness (l<N>_equiv)",
            cex.display()
        )
    })?;
    let m = harness::mvtu(design, index).with_context(|| {
        format!(
            "{}: the design has no unit for layer {index}",
            cex.display()
        )
    })?;
    for s in ["init", "in_valid", "in_ready"] {
        if !steps[0].contains_key(s) {
            bail!("{}: no top-level {s} in {top}", cex.display());
        }
    }
    let reset = steps.iter().take_while(|s| num(s.get("init")) == 1).count();
    let after = &steps[reset..];
    if after.is_empty() {
        bail!("{}: the counterexample never leaves reset", cex.display());
    }
    let mut model = m.cycle_model();
    let iw = m.in_width();
    let (mut beats, mut results) = (0usize, 0usize);
    let mut first = None;
    for (t, s) in after.iter().enumerate() {
        let in_valid = num(s.get("in_valid")) == 1;
        let in_ready = model.in_ready(true);
        let mut diffs = Vec::new();
        let (a, b) = (num(s.get("in_ready")), u64::from(in_ready));
        if a != b {
            diffs.push(format!("in_ready design {a:#x}, simulator {b:#x}"));
        }
        let out_valid = model.out_valid();
        let (a, b) = (num(s.get("out_valid")), u64::from(out_valid));
        if a != b {
            diffs.push(format!("out_valid design {a:#x}, simulator {b:#x}"));
        }
        if diffs.is_empty() && out_valid {
            let ours = design_elements(m, s.get("out_data"));
            let theirs = model_elements(m, model.out_data())?;
            // A chunked result comes a chunk of neurons per beat.
            let base = if m.chunked_output() {
                (results % m.out_beats()) * m.out_chunk
            } else {
                0
            };
            let what = if m.is_scores() { "score" } else { "neuron" };
            for (i, (x, y)) in ours.iter().zip(&theirs).enumerate() {
                if x != y {
                    let n = base + i;
                    let spec = spec_element(m, s.get("y"), n)
                        .map_or(String::new(), |v| format!(", specification {v}"));
                    diffs.push(format!(
                        "out_data {what} {n} design {x}, simulator {y}{spec}"
                    ));
                }
            }
            results += 1;
        }
        if !diffs.is_empty() {
            first = Some((t, diffs));
            break;
        }
        let beat = (in_valid && in_ready).then(|| {
            beats += 1;
            beat_of(m, &bits_lsb_first(s.get("in_data"), iw))
        });
        model.clock(beat.as_ref(), true);
    }
    let n = after.len();
    match &first {
        Some((t, diffs)) => eprintln!(
            "{}: replayed {n} cycles after reset on {}: the design parts from the simulator at \
             cycle {t}: {}",
            cex.display(),
            m.name(),
            diffs.join("; ")
        ),
        None => eprintln!(
            "{}: replayed {n} cycles after reset on {}: the design does what the simulator does \
             in every cycle",
            cex.display(),
            m.name()
        ),
    }
    if json_out {
        super::print_json(&json!({
            "replay": cex.display().to_string(),
            "layer": index,
            "cycles": n,
            "reset_cycles": reset,
            "beats": beats,
            "reproduced": first.is_some(),
            "first_difference": first.as_ref().map(|(t, d)| json!({"cycle": t, "signals": d})),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_names_give_their_layer() {
        assert_eq!(layer_of("l2_equiv"), Some(2));
        assert_eq!(layer_of("l12_equiv_3"), Some(12));
        assert_eq!(layer_of("l2_lemma"), None);
        assert_eq!(layer_of("flipchip_top_equiv"), None);
        assert_eq!(layer_of("l2_equiv_x"), None);
    }
}
