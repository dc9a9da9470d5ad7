//! ECP5 block RAM output registers, filled from the register after each read.
//!
//! Yosys maps a memory's read register into a DP16KD but never the register after it: its
//! `memory_libmap` has no rule for `REGMODE = "OUTREG"`, so every inferred DP16KD runs
//! unregistered and its data leave it 5.83 ns after the clock (nextpnr's timing of a speed-6
//! DP16KD with `REGMODE = "NOREG"`; 0.97 ns with `"OUTREG"`). Designs pipelined with two
//! registers after a block RAM read (`compiler::passes::pipelining`) have that second register
//! in the fabric, so the 5.83 ns still lead a path that also crosses the routing from the block
//! to the fabric: on the ULX3S that was the critical path of the designs whose popcount tables
//! fill a hundred blocks (87 MHz).
//!
//! [`absorb`] moves such registers into the block: for each port of a DP16KD whose used data
//! outputs each drive one flip-flop and nothing else, where every one of those flip-flops is
//! clocked by the port's clock, has no set or reset, shares one clock enable (or none) and
//! feeds only flip-flops, the port becomes `"OUTREG"`, its outputs take over the flip-flops'
//! outputs, the flip-flops go, and their shared enable becomes the port's output clock enable.
//! Blocks in their 36-bit mode (one read port driving both ports' outputs) keep their registers
//! in the fabric. A register that feeds logic stays in the fabric: in the block it would put the route from the
//! block to the fabric (up to 6 ns across the ECP5-85F) in front of that logic, which is slower
//! than the unregistered block's 5.83 ns in front of a register beside the logic (the SFC design
//! `7px 8x196t3 8x64t3 8x64t3 1x32` fell from 87.2 to 77.5 MHz when its table registers that fed
//! the popcount trees moved in). So designs meant to use the output register read their block
//! RAMs through three registers (`compiler::passes::pipelining::read_registers_of`). That is the register the RTL
//! describes: a flip-flop that loads the block's data out on every enabled clock edge, which is
//! what the output register does. Only the value before the first clock edge differs (the block's
//! output register starts at 0, as does a flip-flop without a set), and the accelerator ignores
//! data before its first valid beat. Ports that do not match exactly are left alone.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// What [`absorb`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Absorbed {
    /// Block RAM ports switched to their output register.
    pub ports: usize,
    /// Fabric flip-flops removed (moved into those registers).
    pub flip_flops: usize,
    /// Block RAM ports that read data but kept `"NOREG"` (their data do not meet one plain
    /// register each).
    pub left: usize,
}

const BRAM: &str = "DP16KD";

/// A port to switch: the block, the port's letter, its (data output pin, flip-flop) pairs and
/// the flip-flops' shared clock enable (`None`: always enabled).
type Move = (String, char, Vec<(String, String)>, Option<u64>);
const FF: &str = "TRELLIS_FF";

/// A parameter's string value as Yosys writes it (strings that look like bit patterns get a
/// trailing space).
fn param<'a>(cell: &'a Value, name: &str) -> Option<&'a str> {
    cell["parameters"][name].as_str().map(str::trim_end)
}

/// The single bit connected to `port`: `Ok(net)` for a net, `Err("0")` etc. for a constant,
/// `None` when unconnected.
fn bit(cell: &Value, port: &str) -> Option<Result<u64, String>> {
    let bits = cell["connections"][port].as_array()?;
    match bits.as_slice() {
        [b] => Some(
            b.as_u64()
                .ok_or_else(|| b.as_str().unwrap_or("?").to_string()),
        ),
        _ => None,
    }
}

fn is_const(cell: &Value, port: &str, value: &str) -> bool {
    matches!(bit(cell, port), Some(Err(v)) if v == value)
}

/// Moves the register after each read of the top module's DP16KDs into the block (see the
/// module doc). `netlist` is Yosys's JSON netlist (`write_json`) after `synth_ecp5`.
pub fn absorb(netlist: &mut Value) -> Result<Absorbed, String> {
    let modules = netlist["modules"]
        .as_object_mut()
        .ok_or("the netlist has no \"modules\" object")?;
    let top = modules
        .iter()
        .find(|(_, m)| {
            m["attributes"]["top"]
                .as_str()
                .is_some_and(|v| v.trim_start_matches('0') == "1")
        })
        .map(|(name, _)| name.clone())
        .ok_or("the netlist has no module marked as top")?;
    let module = modules.get_mut(&top).expect("found above");

    // How many cell inputs and module outputs read each net.
    let mut readers: HashMap<u64, usize> = HashMap::new();
    if let Some(ports) = module["ports"].as_object() {
        for p in ports.values().filter(|p| p["direction"] != "input") {
            for b in p["bits"].as_array().into_iter().flatten() {
                if let Some(n) = b.as_u64() {
                    *readers.entry(n).or_default() += 1;
                }
            }
        }
    }
    let cells = module["cells"]
        .as_object()
        .ok_or_else(|| format!("module {top} has no \"cells\" object"))?;
    for cell in cells.values() {
        let dirs = &cell["port_directions"];
        for (port, bits) in cell["connections"].as_object().into_iter().flatten() {
            if dirs[port] == "output" {
                continue;
            }
            for b in bits.as_array().into_iter().flatten() {
                if let Some(n) = b.as_u64() {
                    *readers.entry(n).or_default() += 1;
                }
            }
        }
    }
    // Plain flip-flops by the net on their data input, and how many flip-flops read each net.
    let mut ff_by_input: HashMap<u64, String> = HashMap::new();
    let mut ff_readers: HashMap<u64, usize> = HashMap::new();
    for (name, cell) in cells.iter().filter(|(_, c)| c["type"] == FF) {
        if let Some(Ok(n)) = bit(cell, "DI") {
            ff_by_input.insert(n, name.clone());
            *ff_readers.entry(n).or_default() += 1;
        }
    }

    let mut plan: Vec<Move> = Vec::new();
    let mut result = Absorbed::default();
    for (name, cell) in cells.iter().filter(|(_, c)| c["type"] == BRAM) {
        // In its 36-bit mode a block has one read port whose data leave on both ports'
        // outputs; which output register and clock serve each half is not checked here, so
        // such a block keeps its registers in the fabric.
        let wide = ["DATA_WIDTH_A", "DATA_WIDTH_B"].iter().any(|p| {
            cell["parameters"][*p]
                .as_str()
                .and_then(|v| u64::from_str_radix(v.trim(), 2).ok())
                .or_else(|| cell["parameters"][*p].as_u64())
                == Some(36)
        });
        for x in ['A', 'B'] {
            let outputs: Vec<(String, u64)> = (0..18)
                .filter_map(|i| {
                    let pin = format!("DO{x}{i}");
                    match bit(cell, &pin) {
                        Some(Ok(n)) if readers.get(&n).copied().unwrap_or(0) > 0 => Some((pin, n)),
                        _ => None,
                    }
                })
                .collect();
            if outputs.is_empty() {
                continue;
            }
            let clock = bit(cell, &format!("CLK{x}"));
            let port_ok = !wide
                && param(cell, &format!("REGMODE_{x}")).unwrap_or("NOREG") == "NOREG"
                && param(cell, &format!("CLK{x}MUX")).unwrap_or(&format!("CLK{x}"))
                    == format!("CLK{x}")
                && is_const(cell, &format!("OCE{x}"), "1")
                && is_const(cell, &format!("RST{x}"), "0")
                && matches!(clock, Some(Ok(_)));
            let mut moves = Vec::new();
            let mut enables = HashSet::new();
            let ok = port_ok
                && outputs.iter().all(|(pin, net)| {
                    let Some(ff_name) = ff_by_input.get(net) else {
                        return false;
                    };
                    let ff = &cells[ff_name];
                    let enable = match param(ff, "CEMUX").unwrap_or("1") {
                        "1" => None,
                        "CE" => match bit(ff, "CE") {
                            Some(Ok(n)) => Some(n),
                            Some(Err(v)) if v == "1" => None,
                            _ => return false,
                        },
                        _ => return false,
                    };
                    let plain = readers[net] == 1
                        && bit(ff, "CLK") == clock
                        && param(ff, "CLKMUX").unwrap_or("CLK") == "CLK"
                        && (bit(ff, "LSR").is_none() || is_const(ff, "LSR", "0"))
                        && param(ff, "REGSET").unwrap_or("RESET") == "RESET"
                        && matches!(bit(ff, "Q"), Some(Ok(q))
                            if readers.get(&q).is_some_and(|&r| r > 0 && ff_readers.get(&q) == Some(&r)));
                    enables.insert(enable);
                    moves.push((pin.clone(), ff_name.clone()));
                    plain
                })
                && enables.len() == 1;
            if ok {
                plan.push((name.clone(), x, moves, enables.into_iter().next().flatten()));
            } else {
                result.left += 1;
            }
        }
    }

    let cells = module["cells"].as_object_mut().expect("checked above");
    for (block, x, moves, enable) in plan {
        let mut outputs = Vec::new();
        for (pin, ff_name) in &moves {
            let ff = cells.remove(ff_name).expect("each flip-flop reads one net");
            outputs.push((pin.clone(), ff["connections"]["Q"].clone()));
        }
        let cell = cells.get_mut(&block).expect("planned from the cells");
        cell["parameters"][format!("REGMODE_{x}")] = Value::from("OUTREG");
        for (pin, q) in outputs {
            cell["connections"][pin] = q;
        }
        if let Some(n) = enable {
            cell["connections"][format!("OCE{x}")] = Value::from(vec![n]);
        }
        result.ports += 1;
        result.flip_flops += moves.len();
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A top module with one DP16KD (clock on net 2, port A's data out on nets 10.., port B's
    /// on 30..) whose used outputs each feed a flip-flop (Q on nets 50.. and 70..) and then
    /// another, as `synth_ecp5` writes a ROM read through three registers.
    fn netlist(width: usize) -> Value {
        let mut cells = serde_json::Map::new();
        let mut bram = json!({
            "type": "DP16KD",
            "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "CLKAMUX": "CLKA",
                           "CLKBMUX": "CLKB"},
            "port_directions": {},
            "connections": {"CLKA": [2], "CLKB": [2], "OCEA": ["1"], "OCEB": ["1"],
                            "RSTA": ["0"], "RSTB": ["0"], "CEA": ["1"], "CEB": ["1"]},
        });
        for (x, base, q) in [('A', 10, 50), ('B', 30, 70)] {
            for i in 0..18 {
                bram["connections"][format!("DO{x}{i}")] = json!([base + i]);
                bram["port_directions"][format!("DO{x}{i}")] = json!("output");
            }
            for i in 0..width {
                cells.insert(
                    format!("ff_{x}{i}"),
                    json!({
                        "type": "TRELLIS_FF",
                        "parameters": {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED",
                                       "LSRMUX": "LSR", "REGSET": "RESET"},
                        "port_directions": {"CLK": "input", "DI": "input", "LSR": "input",
                                            "Q": "output"},
                        "connections": {"CLK": [2], "DI": [base + i], "LSR": ["0"],
                                        "Q": [q + i]},
                    }),
                );
                // The register after it, in front of the logic.
                cells.insert(
                    format!("next_{x}{i}"),
                    json!({
                        "type": "TRELLIS_FF",
                        "parameters": {"CEMUX": "1 ", "CLKMUX": "CLK", "REGSET": "RESET"},
                        "port_directions": {"CLK": "input", "DI": "input", "Q": "output"},
                        "connections": {"CLK": [2], "DI": [q + i], "Q": [q + i + 100]},
                    }),
                );
            }
        }
        cells.insert("bram".into(), bram);
        json!({"modules": {
            "DP16KD": {"attributes": {"blackbox": "00000000000000000000000000000001"}},
            "top": {
                "attributes": {"top": "00000000000000000000000000000001"},
                "ports": {"clk": {"direction": "input", "bits": [2]}},
                "cells": cells,
            },
        }})
    }

    fn cells(n: &Value) -> &serde_json::Map<String, Value> {
        n["modules"]["top"]["cells"].as_object().unwrap()
    }

    #[test]
    fn registers_after_both_reads_move_into_the_block() {
        let mut n = netlist(16);
        let a = absorb(&mut n).unwrap();
        assert_eq!(
            a,
            Absorbed {
                ports: 2,
                flip_flops: 32,
                left: 0
            }
        );
        let c = cells(&n);
        assert_eq!(
            c.len(),
            33,
            "the block and the registers after the moved ones are left"
        );
        assert!(!c.contains_key("ff_A0") && c.contains_key("next_A0"));
        let b = &c["bram"];
        assert_eq!(b["parameters"]["REGMODE_A"], "OUTREG");
        assert_eq!(b["parameters"]["REGMODE_B"], "OUTREG");
        // Each output now drives what its flip-flop drove; the unused ones are untouched.
        assert_eq!(b["connections"]["DOA0"], json!([50]));
        assert_eq!(b["connections"]["DOB15"], json!([85]));
        assert_eq!(b["connections"]["DOA16"], json!([26]));
        assert_eq!(b["connections"]["OCEA"], json!(["1"]));
    }

    #[test]
    fn a_shared_clock_enable_becomes_the_output_enable() {
        let mut n = netlist(4);
        for (name, ff) in n["modules"]["top"]["cells"].as_object_mut().unwrap() {
            if name.starts_with("ff_B") {
                ff["parameters"]["CEMUX"] = json!("CE");
                ff["connections"]["CE"] = json!([99]);
            }
        }
        assert_eq!(absorb(&mut n).unwrap().ports, 2);
        assert_eq!(cells(&n)["bram"]["connections"]["OCEB"], json!([99]));
        assert_eq!(cells(&n)["bram"]["connections"]["OCEA"], json!(["1"]));
    }

    /// Each change makes port A's register something the block's output register is not.
    #[test]
    fn registers_that_differ_from_the_output_register_stay() {
        type Change = (&'static str, fn(&mut Value));
        let changes: [Change; 9] = [
            ("logic after the register", |n| {
                n["modules"]["top"]["cells"]["lut"] = json!({
                    "type": "LUT4", "port_directions": {"A": "input", "Z": "output"},
                    "connections": {"A": [53], "Z": [96]},
                })
            }),
            ("a reset", |n| {
                n["modules"]["top"]["cells"]["ff_A3"]["connections"]["LSR"] = json!([98])
            }),
            ("another clock", |n| {
                n["modules"]["top"]["cells"]["ff_A0"]["connections"]["CLK"] = json!([3])
            }),
            ("an inverted clock", |n| {
                n["modules"]["top"]["cells"]["ff_A0"]["parameters"]["CLKMUX"] = json!("INV")
            }),
            ("a set value", |n| {
                n["modules"]["top"]["cells"]["ff_A1"]["parameters"]["REGSET"] = json!("SET")
            }),
            ("two enables", |n| {
                let c = &mut n["modules"]["top"]["cells"];
                c["ff_A0"]["parameters"]["CEMUX"] = json!("CE");
                c["ff_A0"]["connections"]["CE"] = json!([97]);
            }),
            ("a second reader of the data", |n| {
                n["modules"]["top"]["cells"]["lut"] = json!({
                    "type": "LUT4", "port_directions": {"A": "input", "Z": "output"},
                    "connections": {"A": [12], "Z": [96]},
                })
            }),
            ("a data bit read by logic only", |n| {
                let c = n["modules"]["top"]["cells"].as_object_mut().unwrap();
                c.remove("ff_A2");
                c.insert(
                    "lut".into(),
                    json!({"type": "LUT4", "port_directions": {"A": "input", "Z": "output"},
                           "connections": {"A": [12], "Z": [96]}}),
                );
            }),
            ("an output reset", |n| {
                n["modules"]["top"]["cells"]["bram"]["connections"]["RSTA"] = json!([95])
            }),
        ];
        for (what, change) in changes {
            let mut n = netlist(4);
            change(&mut n);
            let a = absorb(&mut n).unwrap();
            assert_eq!((a.ports, a.left), (1, 1), "{what}");
            assert_eq!(
                cells(&n)["bram"]["parameters"]["REGMODE_A"],
                "NOREG",
                "{what}"
            );
            assert!(cells(&n).contains_key("ff_A0"), "{what}");
        }
    }

    /// In its 36-bit mode the block's one read port drives both ports' outputs.
    #[test]
    fn a_block_in_its_36_bit_mode_keeps_its_registers() {
        let mut n = netlist(16);
        n["modules"]["top"]["cells"]["bram"]["parameters"]["DATA_WIDTH_B"] =
            json!("00000000000000000000000000100100");
        let a = absorb(&mut n).unwrap();
        assert_eq!((a.ports, a.left), (0, 2));
        assert_eq!(cells(&n)["bram"]["parameters"]["REGMODE_B"], "NOREG");
        assert_eq!(cells(&n).len(), 65);
    }

    #[test]
    fn a_port_without_readers_and_a_netlist_without_top_are_handled() {
        let mut n = netlist(0);
        assert_eq!(absorb(&mut n).unwrap(), Absorbed::default());
        let mut n = json!({"modules": {"m": {"cells": {}}}});
        assert!(absorb(&mut n).unwrap_err().contains("top"));
    }
}
