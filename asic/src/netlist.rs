//! The gate-level netlist Yosys writes (`write_verilog -noattr -noexpr` after `splitnets`):
//! one module of ports, wires, `assign`s of one bit to another and cell instances with named
//! one-bit connections, read into nets and cells for the cycle simulator.

use std::collections::HashMap;

/// A net: an index into [`Netlist::net_names`], or a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Net {
    /// Tied to 0 or 1.
    Const(bool),
    /// A named net.
    Id(usize),
}

/// One cell instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The library cell.
    pub cell: String,
    /// The instance name.
    pub name: String,
    /// Pin to net.
    pub pins: Vec<(String, Net)>,
}

/// A port of the module, bit by bit.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    /// Its name.
    pub name: String,
    /// An input (else an output).
    pub input: bool,
    /// Its bits' nets, the lowest first.
    pub bits: Vec<Net>,
}

/// The module.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Netlist {
    /// Net names by index.
    pub net_names: Vec<String>,
    /// The ports.
    pub ports: Vec<Port>,
    /// The cells.
    pub instances: Vec<Instance>,
    /// `assign a = b;`: net `a` follows net `b`.
    pub assigns: Vec<(usize, Net)>,
}

impl Netlist {
    /// The port `name`.
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }
}

/// Reads the netlist text; an error says which line could not be read.
pub fn parse(text: &str) -> Result<Netlist, String> {
    let mut nl = Netlist::default();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut id = |nl: &mut Netlist, name: &str| -> usize {
        *ids.entry(name.to_string()).or_insert_with(|| {
            nl.net_names.push(name.to_string());
            nl.net_names.len() - 1
        })
    };
    // Port directions and widths as declared, in declaration order.
    let mut declared: Vec<(String, bool, u32, u32)> = Vec::new();
    let mut modules = 0;
    let mut current: Option<Instance> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let bad = |what: &str| format!("line {}: {what}: {line}", n + 1);
        if line.is_empty() || line.starts_with("/*") || line.starts_with("//") {
            continue;
        }
        if let Some(inst) = current.as_mut() {
            if line == ");" {
                nl.instances
                    .push(current.take().unwrap_or_else(|| unreachable!()));
                continue;
            }
            let conn = line
                .strip_prefix('.')
                .and_then(|c| c.trim_end_matches(',').strip_suffix(')'))
                .ok_or_else(|| bad("expected a pin connection"))?;
            let (pin, net) = conn.split_once('(').ok_or_else(|| bad("no '('"))?;
            let net = reference(net).ok_or_else(|| bad("not a one-bit net"))?;
            let net = match net {
                Ref::Const(b) => Net::Const(b),
                Ref::Name(s) => Net::Id(id(&mut nl, &s)),
            };
            inst.pins.push((pin.trim().to_string(), net));
            continue;
        }
        let word = line.split_whitespace().next().unwrap_or_default();
        match word {
            "module" => {
                modules += 1;
                if modules > 1 {
                    return Err(bad("more than one module (not flattened?)"));
                }
            }
            "endmodule" => {}
            "input" | "output" | "inout" => {
                if word == "inout" {
                    return Err(bad("inout ports are not supported"));
                }
                let (hi, lo, name) = declaration(&line[word.len()..]).ok_or_else(|| bad("?"))?;
                declared.push((name, word == "input", hi, lo));
            }
            "wire" | "reg" => {}
            "assign" => {
                let (lhs, rhs) = line["assign".len()..]
                    .trim()
                    .trim_end_matches(';')
                    .split_once('=')
                    .ok_or_else(|| bad("no '='"))?;
                let lhs = match reference(lhs) {
                    Some(Ref::Name(s)) => id(&mut nl, &s),
                    _ => return Err(bad("not a one-bit assignment")),
                };
                let rhs = match reference(rhs).ok_or_else(|| bad("not a one-bit assignment"))? {
                    Ref::Const(b) => Net::Const(b),
                    Ref::Name(s) => Net::Id(id(&mut nl, &s)),
                };
                nl.assigns.push((lhs, rhs));
            }
            _ => {
                let head = line
                    .strip_suffix('(')
                    .ok_or_else(|| bad("not a cell instance"))?;
                let mut parts = head.split_whitespace();
                let (Some(cell), Some(name), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad("not a cell instance"));
                };
                current = Some(Instance {
                    cell: cell.to_string(),
                    name: name.trim_start_matches('\\').to_string(),
                    pins: Vec::new(),
                });
            }
        }
    }
    if current.is_some() {
        return Err("the last cell instance is not closed".into());
    }
    for (name, input, hi, lo) in declared {
        let bits = if hi == 0 && lo == 0 && !declared_vector(text, &name) {
            vec![Net::Id(id(&mut nl, &name))]
        } else {
            (lo.min(hi)..=hi.max(lo))
                .map(|b| Net::Id(id(&mut nl, &format!("{name}[{b}]"))))
                .collect()
        };
        nl.ports.push(Port { name, input, bits });
    }
    Ok(nl)
}

/// Whether `name` was declared with a range (`input [0:0] name;`).
fn declared_vector(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        (l.starts_with("input [") || l.starts_with("output ["))
            && l.trim_end_matches(';').ends_with(&format!(" {name}"))
    })
}

/// `[hi:lo] name;` or `name;`.
fn declaration(rest: &str) -> Option<(u32, u32, String)> {
    let rest = rest.trim().trim_end_matches(';').trim();
    if let Some(r) = rest.strip_prefix('[') {
        let (range, name) = r.split_once(']')?;
        let (hi, lo) = range.split_once(':')?;
        Some((
            hi.trim().parse().ok()?,
            lo.trim().parse().ok()?,
            name.trim().trim_start_matches('\\').to_string(),
        ))
    } else {
        Some((0, 0, rest.trim_start_matches('\\').to_string()))
    }
}

enum Ref {
    Const(bool),
    Name(String),
}

/// A one-bit reference: `name`, `name[3]`, `\escaped.name[3] ` or `1'h0` / `1'b1`.
fn reference(s: &str) -> Option<Ref> {
    let s = s.trim();
    if let Some(v) = s.strip_prefix("1'h").or_else(|| s.strip_prefix("1'b")) {
        return match v {
            "0" => Some(Ref::Const(false)),
            "1" => Some(Ref::Const(true)),
            // An undriven or unknown bit: the flow ties these to 0 (`setundef -zero`).
            _ => None,
        };
    }
    if s.is_empty() || s.contains(['{', '}', ',', ' ']) && !s.starts_with('\\') {
        return None;
    }
    let name = s.strip_prefix('\\').unwrap_or(s).trim();
    // `name[3:0]` is a slice, not one bit.
    if name.contains(':') && !s.starts_with('\\') {
        return None;
    }
    Some(Ref::Name(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "/* Generated by Yosys */
module flipchip_top(clk, a, y);
  wire _0_;
  wire \\l1.acc[3] ;
  input clk;
  input [1:0] a;
  output y;
  INVX1 g1 (
    .A(a[0]),
    .Y(_0_)
  );
  DFFPOSX1 g2 (
    .CLK(clk),
    .D(\\l1.acc[3] ),
    .Q(y)
  );
  NAND2X1 g3 (
    .A(_0_),
    .B(1'h1),
    .Y(\\l1.acc[3] )
  );
  assign _1_ = a[1];
endmodule
";

    #[test]
    fn cells_ports_and_assigns() {
        let nl = parse(V).unwrap();
        assert_eq!(nl.instances.len(), 3);
        assert_eq!(nl.instances[1].cell, "DFFPOSX1");
        assert_eq!(nl.instances[1].name, "g2");
        let net = |n: &str| Net::Id(nl.net_names.iter().position(|x| x == n).unwrap());
        assert_eq!(nl.instances[1].pins[1], ("D".to_string(), net("l1.acc[3]")));
        assert_eq!(nl.instances[2].pins[1].1, Net::Const(true));
        assert_eq!(nl.port("a").unwrap().bits, vec![net("a[0]"), net("a[1]")]);
        assert!(nl.port("a").unwrap().input);
        assert!(!nl.port("y").unwrap().input);
        assert_eq!(nl.port("y").unwrap().bits, vec![net("y")]);
        assert_eq!(
            nl.assigns,
            vec![(
                nl.net_names.iter().position(|x| x == "_1_").unwrap(),
                net("a[1]")
            )]
        );
    }

    #[test]
    fn what_it_cannot_read_is_an_error_with_the_line() {
        let e = parse("module m(a);\n  FOO g1 (\n    .A(a[3:0])\n  );\nendmodule\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(parse("module m(a);\nmodule n(b);\n").is_err());
        assert!(parse("module m(a);\n  FOO g1 (\n").is_err());
    }
}
