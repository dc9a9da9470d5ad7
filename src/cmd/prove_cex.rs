//! The counterexample waveform of a refuted datapath miter, taken from ABC's own model.
//!
//! ABC refutes an unrolled miter in a second or less, but SymbiYosys' bounded check, rerun for
//! its trace, can spend minutes on the same failure (Z3 replaying the popcounts of a whole
//! network). The harness reads its frame from a free input in the reset cycle only, so the
//! values ABC found for that input in frame 0 are the whole counterexample: the harness with
//! its frame pinned to them is simulated by Yosys, which writes the waveform and names the
//! assertion that fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use compiler::equiv::harness::Harness;

/// The free input's bits in frame 0 of ABC's counterexample (`write_cex -n`: lines
/// `pi<index>_<frame>@0=<value>`, the index an input of the AIG), mapped through the AIG's
/// map file (`input <index> <bit> <name>`) to the bits of `name`, least significant first.
pub(super) fn frame_bits(cex: &str, aim: &str, name: &str) -> anyhow::Result<Vec<bool>> {
    let mut of_input: BTreeMap<usize, usize> = BTreeMap::new();
    for l in aim.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let ["input", index, bit, n] = f[..] {
            if n == name {
                of_input.insert(index.parse()?, bit.parse()?);
            }
        }
    }
    if of_input.is_empty() {
        bail!("the AIG has no input {name}");
    }
    let mut bits = vec![false; of_input.values().max().map_or(0, |b| b + 1)];
    let mut seen = 0;
    for l in cex.lines().filter(|l| l.starts_with("pi")) {
        let Some((lhs, value)) = l.split_once('=') else {
            continue;
        };
        let lhs = lhs.split('@').next().unwrap_or("");
        let Some((index, frame)) = lhs[2..].split_once('_') else {
            continue;
        };
        if frame.parse::<u64>().ok() != Some(0) {
            continue;
        }
        if let Some(&bit) = index.parse().ok().and_then(|i| of_input.get(&i)) {
            bits[bit] = value.trim() == "1";
            seen += 1;
        }
    }
    if seen != of_input.len() {
        bail!(
            "ABC's counterexample gives {seen} of the {} bits of {name}",
            of_input.len()
        );
    }
    Ok(bits)
}

/// `h`'s text with its frame taken from the constant `bits` instead of its free input.
fn pinned(h: &Harness, input: &str, bits: &[bool]) -> anyhow::Result<String> {
    let vector = input.strip_suffix("_in").unwrap_or(input);
    let from = format!("if (init) {vector} <= {input};");
    if !h.text.contains(&from) {
        bail!("{} takes its frame from no {input}", h.top);
    }
    let mut hex = String::new();
    for d in (0..bits.len().div_ceil(4)).rev() {
        let v = (0..4).fold(0u32, |v, k| {
            v | (u32::from(bits.get(d * 4 + k) == Some(&true)) << k)
        });
        hex.push(char::from_digit(v, 16).unwrap_or('0'));
    }
    Ok(h.text.replace(
        &from,
        &format!("if (init) {vector} <= {}'h{hex};", bits.len()),
    ))
}

/// The harness's free input: the frame (`x_in`, `pixels_in`) or a lemma's vector (`v_in`).
fn free_input(h: &Harness) -> Option<&'static str> {
    ["x_in", "pixels_in", "v_in"]
        .into_iter()
        .find(|i| h.text.contains(&format!("] {i}\n")))
}

/// Writes the waveform of `h` refuted by ABC (its counterexample in `abc_cex`, the AIG's map in
/// `aim`) as `work/{top}_cex.vcd`; returns its path and the failed assertion (`file:line:
/// text`), if Yosys names one.
pub(super) fn waveform(
    work: &Path,
    design_files: &[PathBuf],
    spec_file: &Path,
    h: &Harness,
    abc_cex: &Path,
    aim: &Path,
    timeout: u64,
) -> anyhow::Result<(PathBuf, Option<String>)> {
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let input = free_input(h).with_context(|| format!("{} has no free input", h.top))?;
    let bits = frame_bits(&read(abc_cex)?, &read(aim)?, input)
        .with_context(|| format!("{}", abc_cex.display()))?;
    let file = work.join(format!("{}_cex.sv", h.top));
    std::fs::write(&file, pinned(h, input, &bits)?)
        .with_context(|| format!("writing {}", file.display()))?;
    let vcd = work.join(format!("{}_cex.vcd", h.top));
    let yosys = tools::require(&["yosys"], "scripts/setup.sh")?;
    let names: Vec<String> = design_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    // A harness with taps reads the flattened design's nets (`Harness::taps`). Flattened after
    // `prep`: flattened before it, Yosys' simulation left the top's handshakes undefined.
    let taps = if h.taps.is_empty() {
        String::new()
    } else {
        format!("flatten; {}", h.tap_commands().replace('\n', "; "))
    };
    let keep = h.keep_commands().replace('\n', "; ");
    let script = format!(
        "read_verilog -defer {}; read_verilog -defer {}; read_verilog -sv -formal {}; \
         {keep}prep -top {}; {taps}sim -clock clk -zinit -n {} -vcd {}",
        names.join(" "),
        spec_file.display(),
        file.display(),
        h.top,
        h.depth,
        vcd.display()
    );
    let ran = tools::Run::new(
        &format!("prove datapath {} (counterexample)", h.top),
        &yosys,
        format!("{}_cex.log", h.top),
    )
    .args(["-q", "-p", &script])
    .current_dir(work)
    .timeout(Duration::from_secs(timeout.max(30)))
    .run()?;
    if !vcd.exists() {
        bail!("Yosys wrote no waveform {}", vcd.display());
    }
    let assertion = failed_at(&ran.text()).and_then(|number| {
        let source = h
            .text
            .lines()
            .nth(number.checked_sub(1)?)?
            .trim()
            .to_string();
        Some(format!("{}.sv:{number}: {source}", h.top))
    });
    if assertion.is_none() {
        bail!(
            "the pinned harness {} fails no assertion in Yosys' simulation",
            file.display()
        );
    }
    Ok((vcd, assertion))
}

/// The line of the first failed assertion in Yosys' simulation log: it warns `Assert
/// <cell> (<file>:<l1>.<c1>-<l2>.<c2>) failed.`, the span ending in the assertion's line.
fn failed_at(log: &str) -> Option<usize> {
    log.lines().find_map(|l| {
        let (_, rest) = l.split_once("Assert ")?;
        let (span, _) = rest.rsplit_once(") failed")?;
        let (_, end) = span.rsplit_once('-')?;
        end.split('.').next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_comes_from_frame_0_of_the_counterexample_through_the_map() {
        let aim = "input 0 0 clk\ninput 1 0 x_in\ninput 2 1 x_in\ninput 3 2 x_in\n\
                   latch 0 0 init\n";
        let cex = "# FALSIFYING OUTPUTS: miter\npi0000_00@0=0\npi0001_00@0=1\npi0002_00@0=0\n\
                   pi0003_00@0=1\npi0001_01@0=0\npi0002_01@0=1\n";
        assert_eq!(frame_bits(cex, aim, "x_in").unwrap(), [true, false, true]);
        // A counterexample that leaves out a bit of the frame is refused.
        let short = "pi0001_00@0=1\npi0002_00@0=0\n";
        assert!(frame_bits(short, aim, "x_in").is_err());
        assert!(frame_bits(cex, aim, "pixels_in").is_err());
    }

    #[test]
    fn the_failed_assertion_is_the_end_of_the_span_yosys_gives() {
        let log = "Warning: Assert l2_equiv.$assert$d/l2_equiv_cex.sv:46$73 \
                   (d/l2_equiv_cex.sv:46.46-47.62) failed.\n";
        assert_eq!(failed_at(log), Some(47));
        assert_eq!(failed_at("Warning: something else\n"), None);
    }

    #[test]
    fn a_pinned_harness_takes_its_frame_from_a_constant() {
        let h = Harness {
            top: "l1_equiv".into(),
            text: "    input wire [5:0] x_in\n);\n        if (init) x <= x_in;\n".into(),
            depth: 9,
            design_top: "l1_mvtu".into(),
            taps: Vec::new(),
            cuts: Vec::new(),
        };
        assert_eq!(free_input(&h), Some("x_in"));
        let bits = [true, false, true, true, false, true];
        let p = pinned(&h, "x_in", &bits).unwrap();
        assert!(p.contains("if (init) x <= 6'h2d;"), "{p}");
    }
}
