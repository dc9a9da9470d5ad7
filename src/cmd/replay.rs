//! `flipchip sim --replay CEX.vcd`: a counterexample of `flipchip prove` replayed in the
//! cycle-accurate simulator. Three kinds of waveform are known:
//! - the formal wrapper's top (protocol properties): its environment (`s_valid` as bubbles,
//!   `m_ready` as back-pressure, the beats the design took on `s_data`) drives the simulator;
//! - the whole network's datapath harness (`{top}_equiv`): the same, with the output always
//!   ready and the harness's `init` as the reset;
//! - one layer's datapath harness (`l{N}_equiv`): see [`super::replay_layer`].
//!
//! The simulator runs for as many cycles as the counterexample has after reset, and the design's
//! side of every cycle (`s_ready`, `m_valid`, `m_class`, the scores, the stages' handshakes) is
//! compared with the simulator's: the first cycle where they part is the failure, shown where
//! the simulator, which implements the model and not the Verilog, does what the design should.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use compiler::ir::{Design, InputFormat};
use serde_json::json;
use sim::stimulus::Cycle;

/// The top-level signals of a VCD, one map (name -> bits, most significant first) per clock
/// cycle: the values as of time `10 t`, before the rising edge at `10 t + 5` (the convention of
/// both the simulator's VCD and the prover's counterexamples).
pub(super) fn cycles(text: &str, file: &Path) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut depth = 0usize;
    let mut tokens = text.split_whitespace();
    let mut in_header = true;
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    let mut time: Option<u64> = None;
    while let Some(tok) = tokens.next() {
        if in_header {
            match tok {
                "$scope" => depth += 1,
                "$upscope" => depth = depth.saturating_sub(1),
                "$var" => {
                    let f: Vec<&str> = tokens.by_ref().take_while(|t| *t != "$end").collect();
                    if f.len() >= 4 && depth == 1 {
                        ids.insert(f[2].to_string(), f[3].to_string());
                    }
                }
                "$enddefinitions" => in_header = false,
                _ => {}
            }
            continue;
        }
        if let Some(t) = tok.strip_prefix('#') {
            let t: u64 = t
                .parse()
                .with_context(|| format!("{}: bad time {tok:?}", file.display()))?;
            if time.is_some_and(|p| p % 10 == 0) {
                out.push(values.clone());
            }
            time = Some(t);
        } else if let Some(bits) = tok.strip_prefix('b') {
            let id = tokens
                .next()
                .with_context(|| format!("{}: vector without an identifier", file.display()))?;
            if let Some(name) = ids.get(id) {
                values.insert(name.clone(), bits.to_string());
            }
        } else if tok.starts_with('$') {
            // $dumpvars / $end around the initial values.
        } else if tok.len() >= 2 {
            let (v, id) = tok.split_at(1);
            if let Some(name) = ids.get(id) {
                values.insert(name.clone(), v.to_string());
            }
        }
    }
    if time.is_some_and(|p| p % 10 == 0) {
        out.push(values);
    }
    if ids.is_empty() || out.is_empty() {
        bail!("{}: no top-level signals or no cycles", file.display());
    }
    Ok(out)
}

/// A value's bits as a number (x and z as 0), or the low 64 bits.
pub(super) fn num(bits: Option<&String>) -> u64 {
    let b = bits.map_or("0", |s| s.as_str());
    let b = &b[b.len().saturating_sub(64)..];
    u64::from_str_radix(&b.replace(['x', 'z', 'X', 'Z'], "0"), 2).unwrap_or(0)
}

/// A wide value's bits, least significant first.
pub(super) fn bits_lsb_first(bits: Option<&String>, width: usize) -> Vec<bool> {
    let b: Vec<bool> = bits
        .map_or("", |s| s.as_str())
        .chars()
        .rev()
        .map(|c| c == '1')
        .collect();
    (0..width)
        .map(|i| b.get(i).copied().unwrap_or(false))
        .collect()
}

/// Replays the counterexample `cex` on `design` and prints where the design parts from the
/// simulator.
pub fn run(design: &Design, cex: &Path, json_out: bool) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(cex).with_context(|| format!("reading {}", cex.display()))?;
    let steps = cycles(&text, cex)?;
    if steps[0].contains_key("in_data") && steps[0].contains_key("out_data") {
        return super::replay_layer::run(design, &top_scope(&text), &steps, cex, json_out);
    }
    // The network's datapath harness resets with `init` and never stalls its output.
    let harness = !steps[0].contains_key("rst") && steps[0].contains_key("init");
    let (rst, needed): (&str, &[&str]) = if harness {
        ("init", &["s_valid", "s_ready", "s_data", "m_valid"])
    } else {
        (
            "rst",
            &["rst", "s_valid", "s_ready", "s_data", "m_valid", "m_ready"],
        )
    };
    for &s in needed {
        if !steps[0].contains_key(s) {
            bail!(
                "{}: no top-level {s}; is this a counterexample of flipchip prove?",
                cex.display()
            );
        }
    }
    let input = design.input();
    if input.format == InputFormat::Packed {
        bail!("replaying a design with packed input is not supported yet");
    }
    // The wrapper resets in its first cycle(s); the simulator starts where reset leaves it.
    let reset = steps.iter().take_while(|s| num(s.get(rst)) == 1).count();
    let after = &steps[reset..];
    if after.is_empty() {
        bail!("{}: the counterexample never leaves reset", cex.display());
    }
    let env: Vec<Cycle> = after
        .iter()
        .map(|s| Cycle {
            bubble: num(s.get("s_valid")) == 0,
            stall: !harness && num(s.get("m_ready")) == 0,
        })
        .collect();
    // The beats the design took, then the one it was offered last and had not taken yet.
    let mut beats: Vec<Vec<bool>> = Vec::new();
    let width = input.input_width();
    let mut pending = None;
    for s in after {
        if num(s.get("s_valid")) == 1 {
            let b = bits_lsb_first(s.get("s_data"), width);
            if num(s.get("s_ready")) == 1 {
                beats.push(b);
                pending = None;
            } else {
                pending = Some(b);
            }
        }
    }
    beats.extend(pending);
    // Bytes of pixels, `pixels_per_beat` to a beat, the earliest lowest; the last frame padded.
    let ppb = input.pixels_per_beat;
    let per_frame = input.pixels / ppb;
    while beats.is_empty() || !beats.len().is_multiple_of(per_frame) {
        beats.push(vec![false; width]);
    }
    let pixels: Vec<u8> = beats
        .iter()
        .flat_map(|b| {
            (0..ppb).map(move |p| {
                (0..8).fold(0u8, |v, k| {
                    v | (u8::from(b.get(p * 8 + k) == Some(&true)) << k)
                })
            })
        })
        .collect();
    let mut ours = Vec::new();
    sim::replay(design, &pixels, &env, &mut ours).context("replaying in the simulator")?;
    let ours = cycles(
        &String::from_utf8_lossy(&ours),
        Path::new("the simulator's VCD"),
    )?;
    let mut first = None;
    for (t, (rtl, sim)) in after.iter().zip(&ours).enumerate() {
        let mut diffs = Vec::new();
        for sig in ["s_ready", "m_valid", "dbg_fire"] {
            let (a, b) = (num(rtl.get(sig)), num(sim.get(sig)));
            if a != b {
                diffs.push(format!("{sig} design {a:#x}, simulator {b:#x}"));
            }
        }
        if diffs.is_empty() && num(rtl.get("m_valid")) == 1 {
            let (a, b) = (num(rtl.get("m_class")), num(sim.get("m_class")));
            if a != b {
                diffs.push(format!("m_class design {a}, simulator {b}"));
            }
            diffs.extend(score_differences(design, rtl, sim));
            if !diffs.is_empty() && rtl.contains_key("class") {
                diffs.push(format!(
                    "the specification's class {}",
                    num(rtl.get("class"))
                ));
            }
        }
        if !diffs.is_empty() {
            let m_ready = if harness { 1 } else { num(rtl.get("m_ready")) };
            first = Some((t, diffs, num(rtl.get("s_valid")), m_ready));
            break;
        }
    }
    let n = after.len();
    match &first {
        Some((t, diffs, sv, mr)) => eprintln!(
            "{}: replayed {n} cycles after reset: the design parts from the simulator at cycle \
             {t} (s_valid {sv}, m_ready {mr}): {}",
            cex.display(),
            diffs.join("; ")
        ),
        None => eprintln!(
            "{}: replayed {n} cycles after reset: the design does what the simulator does in \
             every cycle",
            cex.display()
        ),
    }
    if json_out {
        super::print_json(&json!({
            "replay": cex.display().to_string(),
            "cycles": n,
            "reset_cycles": reset,
            "beats": beats.len(),
            "reproduced": first.is_some(),
            "first_difference": first.as_ref().map(|(t, d, _, _)| json!({"cycle": t, "signals": d})),
        }));
    }
    Ok(())
}

/// The name of the waveform's top module (the first scope), or "" if it has none.
fn top_scope(text: &str) -> String {
    let mut t = text.split_whitespace();
    while let Some(tok) = t.next() {
        if tok == "$scope" {
            return t.nth(1).unwrap_or("").to_string();
        }
    }
    String::new()
}

/// `bits[at..at + w]` of a value (most significant first in `bits`) as a signed number.
pub(super) fn signed_field(bits: Option<&String>, at: usize, w: usize) -> i64 {
    let b = bits_lsb_first(bits, at + w);
    let v = (0..w).fold(0i64, |v, i| v | (i64::from(b[at + i]) << i));
    if w < 64 && b[at + w - 1] {
        v - (1i64 << w)
    } else {
        v
    }
}

/// The scores of a result on which the design (`m_scores`, class 0 lowest) and the simulator
/// (`m_score0`, `m_score1`, ...) differ, with the specification's where the waveform has it.
fn score_differences(
    design: &Design,
    rtl: &BTreeMap<String, String>,
    sim: &BTreeMap<String, String>,
) -> Vec<String> {
    if !rtl.contains_key("m_scores") {
        return Vec::new();
    }
    let a = design.argmax();
    let sw = a.score_width as usize;
    (0..a.classes)
        .filter_map(|c| {
            let ours = signed_field(rtl.get("m_scores"), c * sw, sw);
            let theirs = signed_field(sim.get(&format!("m_score{c}")), 0, sw);
            (ours != theirs).then(|| {
                let spec = rtl.contains_key("scores").then(|| {
                    let w = compiler::equiv::spec::SCORE_BITS as usize;
                    signed_field(rtl.get("scores"), c * w, w)
                });
                format!(
                    "score {c} design {ours}, simulator {theirs}{}",
                    spec.map_or(String::new(), |v| format!(", specification {v}"))
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vcd_reads_as_the_top_level_values_of_each_cycle() {
        let text = "$timescale 1ns $end\n$scope module top $end\n$var wire 1 ! clk $end\n\
                    $var wire 3 \" s_data $end\n$scope module inner $end\n\
                    $var wire 1 # deep $end\n$upscope $end\n$upscope $end\n$enddefinitions $end\n\
                    #0\n$dumpvars\n0!\nb101 \"\n1#\n$end\n#5\n1!\n#10\n0!\nb11 \"\n#15\n1!\n#20\n";
        let c = cycles(text, Path::new("t.vcd")).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(num(c[0].get("s_data")), 5);
        assert_eq!(num(c[1].get("s_data")), 3);
        assert!(!c[0].contains_key("deep"), "only the top level");
        assert_eq!(
            bits_lsb_first(c[1].get("s_data"), 4),
            [true, true, false, false]
        );
    }
}
