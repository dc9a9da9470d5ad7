//! Parser of the trace files both testbenches write (format in the crate documentation).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use sim::trace::{OutputBeat, Ports, Trace};

use crate::{io_err, HarnessError, Rtl};

pub(crate) struct Parsed {
    pub trace: Trace,
    /// Seconds of the testbench's own simulation loop, if it measured them.
    pub loop_seconds: Option<f64>,
}

#[derive(Debug)]
enum Field {
    /// The value has `x` or `z` digits.
    Unknown,
    Bad,
}

fn nibble(c: u8) -> Result<u64, Field> {
    match c {
        b'0'..=b'9' => Ok(u64::from(c - b'0')),
        b'a'..=b'f' => Ok(u64::from(c - b'a' + 10)),
        b'A'..=b'F' => Ok(u64::from(c - b'A' + 10)),
        b'x' | b'X' | b'z' | b'Z' => Err(Field::Unknown),
        _ => Err(Field::Bad),
    }
}

/// Hex digits into little-endian 64-bit limbs.
fn hex_limbs(s: &[u8]) -> Result<Vec<u64>, Field> {
    if s.is_empty() {
        return Err(Field::Bad);
    }
    let mut limbs = vec![0u64; s.len().div_ceil(16)];
    let mut unknown = false;
    for (k, &c) in s.iter().rev().enumerate() {
        match nibble(c) {
            Ok(n) => limbs[k / 16] |= n << (4 * (k % 16)),
            Err(Field::Unknown) => unknown = true,
            Err(e) => return Err(e),
        }
    }
    if unknown {
        Err(Field::Unknown)
    } else {
        Ok(limbs)
    }
}

fn hex_u64(s: &[u8]) -> Result<u64, Field> {
    let limbs = hex_limbs(s)?;
    if limbs[1..].iter().any(|&l| l != 0) {
        return Err(Field::Bad);
    }
    Ok(limbs[0])
}

/// Bits `lo .. lo + width` of `limbs` (zero beyond the end), sign-extended from `width`.
fn signed_field(limbs: &[u64], lo: usize, width: u32) -> i64 {
    let word = |i: usize| limbs.get(i).copied().unwrap_or(0);
    let (w, off) = (lo / 64, lo % 64);
    let mut v = word(w) >> off;
    if off != 0 {
        v |= word(w + 1) << (64 - off);
    }
    let shift = 64 - width;
    ((v << shift) as i64) >> shift
}

pub(crate) fn parse(rtl: Rtl, path: &Path, ports: &Ports) -> Result<Parsed, HarnessError> {
    let file = File::open(path).map_err(io_err("opening trace", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut trace = Trace::default();
    let mut loop_seconds = None;
    let mut ended = false;
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(io_err("reading trace", path))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let fmt = |msg: String| HarnessError::TraceFormat {
            tool: rtl,
            line: line_no,
            msg,
        };
        let text = || String::from_utf8_lossy(&buf).trim_end().to_string();
        if ended {
            return Err(fmt(format!("data after the end line: {}", text())));
        }
        let mut fields = buf.trim_ascii_end().split(|&b| b == b' ');
        let tag = fields.next().unwrap_or_default();
        let fields: Vec<&[u8]> = fields.collect();
        let want = |k: usize| {
            if fields.len() == k {
                Ok(())
            } else {
                Err(fmt(format!("expected {k} fields: {}", text())))
            }
        };
        let cycle = |s: &[u8]| hex_u64(s).map_err(|_| fmt(format!("bad cycle: {}", text())));
        let unknown = |cycle: u64, signal: &str, s: &[u8]| HarnessError::Unknown {
            tool: rtl,
            cycle,
            signal: signal.into(),
            detail: format!(" (value {})", String::from_utf8_lossy(s)),
        };
        match tag {
            b"F" => {
                want(2)?;
                let c = cycle(fields[0])?;
                let fire = hex_u64(fields[1]).map_err(|e| match e {
                    Field::Unknown => unknown(c, "dbg_fire", fields[1]),
                    Field::Bad => fmt(format!("bad dbg_fire: {}", text())),
                })?;
                trace.fires.push((c, fire));
            }
            b"O" => {
                want(3)?;
                let c = cycle(fields[0])?;
                let class = hex_u64(fields[1]).map_err(|e| match e {
                    Field::Unknown => unknown(c, "m_class", fields[1]),
                    Field::Bad => fmt(format!("bad m_class: {}", text())),
                })?;
                let class = u32::try_from(class)
                    .map_err(|_| fmt(format!("m_class too wide: {}", text())))?;
                let limbs = hex_limbs(fields[2]).map_err(|e| match e {
                    Field::Unknown => unknown(c, "m_scores", fields[2]),
                    Field::Bad => fmt(format!("bad m_scores: {}", text())),
                })?;
                let sw = ports.score_width;
                let scores = (0..ports.classes as usize)
                    .map(|i| signed_field(&limbs, i * sw as usize, sw))
                    .collect();
                trace.outputs.push(OutputBeat {
                    cycle: c,
                    class,
                    scores,
                });
            }
            b"X" => {
                want(2)?;
                let c = cycle(fields[0])?;
                return Err(HarnessError::Unknown {
                    tool: rtl,
                    cycle: c,
                    signal: String::from_utf8_lossy(fields[1]).into_owned(),
                    detail: String::new(),
                });
            }
            b"E" => {
                if !(2..=3).contains(&fields.len()) {
                    return Err(fmt(format!("expected 2 or 3 fields: {}", text())));
                }
                trace.cycles = cycle(fields[0])?;
                let outs = cycle(fields[1])?;
                if outs != trace.outputs.len() as u64 {
                    return Err(fmt(format!(
                        "end line counts {outs} outputs but the trace has {}",
                        trace.outputs.len()
                    )));
                }
                if let Some(ns) = fields.get(2) {
                    loop_seconds = Some(cycle(ns)? as f64 * 1e-9);
                }
                ended = true;
            }
            _ => return Err(fmt(format!("unknown record: {}", text()))),
        }
    }
    if !ended {
        return Err(HarnessError::TraceFormat {
            tool: rtl,
            line: line_no,
            msg: "trace has no end line (testbench stopped early)".into(),
        });
    }
    Ok(Parsed {
        trace,
        loop_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_sign_extension() {
        assert_eq!(hex_u64(b"00ff").ok(), Some(255));
        assert!(matches!(hex_u64(b"0x"), Err(Field::Unknown)));
        assert!(matches!(hex_u64(b"1g"), Err(Field::Bad)));
        assert!(matches!(hex_u64(b"10000000000000000"), Err(Field::Bad)));
        // Three 24-bit scores: -1, 5, -8388608, i.e. 72 bits.
        let limbs = hex_limbs(b"800000000005ffffff").unwrap();
        assert_eq!(signed_field(&limbs, 0, 24), -1);
        assert_eq!(signed_field(&limbs, 24, 24), 5);
        assert_eq!(signed_field(&limbs, 48, 24), -8_388_608);
        // Minimal-digit output (Verilator) reads the same as padded output.
        let limbs = hex_limbs(b"5").unwrap();
        assert_eq!(signed_field(&limbs, 0, 4), 5);
        assert_eq!(signed_field(&limbs, 4, 4), 0);
        assert_eq!(signed_field(&limbs, 64, 64), 0);
        let limbs = hex_limbs(b"ffffffffffffffff8000000000000000").unwrap();
        assert_eq!(signed_field(&limbs, 0, 64), i64::MIN);
        assert_eq!(signed_field(&limbs, 64, 64), -1);
        assert_eq!(signed_field(&limbs, 60, 8), -8);
    }
}
