//! Switching activity from a VCD of the gate-level simulation: how often each cell's pins
//! toggled, counted from the end of reset, and how many clock cycles that window holds.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use crate::Error;

/// Toggles per cell pin over a window of clock cycles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Activity {
    /// Rising clock edges after reset.
    pub cycles: u64,
    /// (instance, pin) to its 0-1 and 1-0 transitions after reset.
    pub toggles: BTreeMap<(String, String), u64>,
}

impl Activity {
    /// Transitions per clock cycle of `pin` of `instance` (0 if it never appeared).
    pub fn rate(&self, instance: &str, pin: &str) -> f64 {
        let n = self
            .toggles
            .get(&(instance.to_string(), pin.to_string()))
            .copied()
            .unwrap_or(0);
        n as f64 / self.cycles.max(1) as f64
    }
}

/// Reads the VCD at `path`; `dut` is the scope name of the netlist's instance, whose `clk` and
/// `rst` ports set the window and whose child scopes are the cells.
pub fn read(path: &Path, dut: &str) -> Result<Activity, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse(std::io::BufReader::new(file), dut).map_err(|message| Error::Parse {
        path: path.to_path_buf(),
        message,
    })
}

/// [`read`] on any reader.
pub fn parse(input: impl BufRead, dut: &str) -> Result<Activity, String> {
    // Per identifier code: the cell pins it stands for (one net may be several pins).
    let mut pins: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let (mut clk, mut rst) = (None::<String>, None::<String>);
    let mut scopes: Vec<String> = Vec::new();
    let mut in_header = true;
    // Last value per one-bit identifier: b'0', b'1' or b'x'.
    let mut value: HashMap<String, u8> = HashMap::new();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut counting = false;
    let mut cycles = 0u64;
    for line in input.lines() {
        let line = line.map_err(|e| e.to_string())?;
        let l = line.trim();
        if in_header {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.first().copied() {
                Some("$scope") if f.len() >= 3 => scopes.push(f[2].to_string()),
                Some("$upscope") => {
                    scopes.pop();
                }
                Some("$var") if f.len() >= 5 && f[2] == "1" => {
                    let (code, name) = (f[3].to_string(), f[4].to_string());
                    let depth = scopes.iter().rposition(|s| s == dut);
                    match depth.map(|d| scopes.len() - 1 - d) {
                        Some(0) if name == "clk" => clk = Some(code),
                        Some(0) if name == "rst" => rst = Some(code),
                        Some(1) => pins
                            .entry(code)
                            .or_default()
                            .push((scopes[scopes.len() - 1].clone(), name)),
                        _ => {}
                    }
                }
                Some("$enddefinitions") => {
                    in_header = false;
                    if clk.is_none() || rst.is_none() {
                        return Err(format!("no clk and rst in scope {dut}"));
                    }
                }
                _ => {}
            }
            continue;
        }
        let bytes = l.as_bytes();
        let (v, code) = match bytes.first() {
            Some(b'0' | b'1' | b'x' | b'X' | b'z' | b'Z') => {
                (bytes[0].to_ascii_lowercase(), &l[1..])
            }
            _ => continue,
        };
        let v = if v == b'z' { b'x' } else { v };
        let old = value.insert(code.to_string(), v);
        let toggled = matches!((old, v), (Some(b'0'), b'1') | (Some(b'1'), b'0'));
        if Some(code) == rst.as_deref() && v == b'0' && old == Some(b'1') {
            counting = true;
        }
        if !counting || !toggled {
            continue;
        }
        if Some(code) == clk.as_deref() && v == b'1' {
            cycles += 1;
        }
        if pins.contains_key(code) {
            *counts.entry(code.to_string()).or_default() += 1;
        }
    }
    let mut toggles = BTreeMap::new();
    for (code, list) in pins {
        let n = counts.get(&code).copied().unwrap_or(0);
        for p in list {
            toggles.insert(p, n);
        }
    }
    Ok(Activity { cycles, toggles })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VCD: &str = "$timescale 1ns $end
$scope module tb $end
$scope module w $end
$scope module u $end
$var wire 1 ! clk $end
$var wire 1 \" rst $end
$var wire 8 # bus [7:0] $end
$scope module g1 $end
$var wire 1 $ Y $end
$upscope $end
$scope module g2 $end
$var wire 1 $ A $end
$var wire 1 % Q $end
$upscope $end
$upscope $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
$dumpvars
0!
1\"
x$
0%
$end
#5
1!
1$
#10
0!
0\"
#15
1!
0$
1%
#20
0!
#25
1!
1$
";

    #[test]
    fn toggles_after_reset_per_pin_and_cycles() {
        let a = parse(VCD.as_bytes(), "u").unwrap();
        // Rising edges at 15 and 25 come after reset fell at 10.
        assert_eq!(a.cycles, 2);
        assert_eq!(a.toggles[&("g1".into(), "Y".into())], 2);
        assert_eq!(a.toggles[&("g2".into(), "A".into())], 2);
        assert_eq!(a.toggles[&("g2".into(), "Q".into())], 1);
        assert_eq!(a.rate("g2", "Q"), 0.5);
        assert_eq!(a.rate("g9", "Y"), 0.0);
    }

    #[test]
    fn a_vcd_without_the_scope_is_an_error() {
        assert!(parse(VCD.as_bytes(), "nothere").is_err());
    }
}
