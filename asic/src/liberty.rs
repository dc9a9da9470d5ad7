//! What the flow needs from a liberty file: each cell's area (um^2 in the OSU libraries, the
//! same as its LEF outline), its pins, whether it stores state (an `ff` or `latch` group), and
//! the Boolean functions the cycle simulator evaluates (`function`, and the `ff`/`latch`
//! group's `next_state`, `clocked_on`, `data_in`, `enable`, `clear`, `preset`). A
//! line-oriented reader, enough for the OSU files; timing and power tables are left to OpenSTA.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Error;

/// One cell of the library.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cell {
    /// Area in the library's unit (um^2 for the OSU libraries).
    pub area: f64,
    /// Output pin names, in file order.
    pub outputs: Vec<String>,
    /// A flip-flop or latch.
    pub sequential: bool,
    /// Input pin names, in file order.
    pub inputs: Vec<String>,
    /// Output pin to its `function` (over input pins and the state variables).
    pub functions: BTreeMap<String, String>,
    /// An output with a `three_state` condition (a tri-state buffer).
    pub three_state: bool,
    /// The `ff` or `latch` group.
    pub state: Option<State>,
}

/// A flip-flop's or latch's group: `ff (IQ, IQN) { next_state, clocked_on, clear, preset }` or
/// `latch (IQ, IQN) { data_in, enable, clear, preset }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// A latch (transparent while `clock` is true) rather than an edge-triggered flip-flop.
    pub latch: bool,
    /// The state variable and its complement, as the output functions name them.
    pub vars: (String, String),
    /// `next_state` or `data_in`.
    pub data: String,
    /// `clocked_on` or `enable`.
    pub clock: String,
    /// Asynchronous clear, if any.
    pub clear: Option<String>,
    /// Asynchronous preset, if any.
    pub preset: Option<String>,
}

/// The cells of a library by name.
pub type Library = BTreeMap<String, Cell>;

/// Reads the cells of the liberty file `path`.
pub fn read(path: &Path) -> Result<Library, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let lib = parse(&text);
    if lib.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            message: "no cells".into(),
        });
    }
    Ok(lib)
}

/// The cells described in liberty `text`.
pub fn parse(text: &str) -> Library {
    let mut lib = Library::new();
    // The cell being read, its brace depth, and the pin being read inside it.
    let mut cell: Option<(String, usize)> = None;
    let mut pin: Option<String> = None;
    let mut depth = 0usize;
    for raw in text.lines() {
        let line = raw.trim();
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if let Some(name) = group_name(line, "cell") {
            cell = Some((name.clone(), depth));
            lib.entry(name).or_default();
        } else if let Some((c, _)) = &cell {
            let entry = lib.entry(c.clone()).or_default();
            if let Some(name) = group_name(line, "pin") {
                pin = Some(name);
            } else if let Some((latch, vars)) = group_name(line, "ff")
                .map(|v| (false, v))
                .or_else(|| group_name(line, "latch").map(|v| (true, v)))
            {
                entry.sequential = true;
                let (q, qn) = vars.split_once(',').unwrap_or((&vars, ""));
                entry.state = Some(State {
                    latch,
                    vars: (q.trim().to_string(), qn.trim().to_string()),
                    ..State::default()
                });
            } else if let Some(v) = attribute(line, "area") {
                entry.area = v.parse().unwrap_or(0.0);
            } else if let (Some(p), Some(dir)) = (&pin, attribute(line, "direction")) {
                let list = if dir == "output" {
                    &mut entry.outputs
                } else {
                    &mut entry.inputs
                };
                if !list.contains(p) {
                    list.push(p.clone());
                }
            } else if let (Some(p), Some(f)) = (&pin, attribute(line, "function")) {
                entry.functions.insert(p.clone(), f.to_string());
            } else if pin.is_some() && attribute(line, "three_state").is_some() {
                entry.three_state = true;
            } else if let Some(st) = entry.state.as_mut().filter(|_| pin.is_none()) {
                if let Some(v) = attribute(line, "next_state").or(attribute(line, "data_in")) {
                    st.data = v.to_string();
                }
                if let Some(v) = attribute(line, "clocked_on").or(attribute(line, "enable")) {
                    st.clock = v.to_string();
                }
                if let Some(v) = attribute(line, "clear") {
                    st.clear = Some(v.to_string());
                }
                if let Some(v) = attribute(line, "preset") {
                    st.preset = Some(v.to_string());
                }
            }
        }
        depth = (depth + opens).saturating_sub(closes);
        if let Some((_, d)) = &cell {
            if depth <= *d {
                cell = None;
                pin = None;
            }
        }
    }
    lib
}

/// `NAME` of a line `keyword (NAME) {`.
fn group_name(line: &str, keyword: &str) -> Option<String> {
    let rest = line.strip_prefix(keyword)?.trim_start();
    let inner = rest.strip_prefix('(')?;
    let (name, after) = inner.split_once(')')?;
    after
        .trim_start()
        .starts_with('{')
        .then(|| name.trim().trim_matches('"').to_string())
}

/// The value of a line `key : value ;`.
fn attribute<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (k, v) = line.split_once(':')?;
    (k.trim() == key).then(|| v.trim().trim_end_matches(';').trim().trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIB: &str = r#"library (x) {
  cell (AND2X1) {
area : 32;
    pin(A)  {
      direction : input;
    }
    pin(Y)  {
      direction : output;
      function : "(A B)";
    }
  }
  cell (DFFPOSX1) {
    area : 96;
    ff (DS0000,P0000) {
      next_state : "D";
    }
    pin(Q)  {
      direction : output;
    }
  }
  cell (FAX1) {
    area : 80;
    pin(YC) {
      direction : output;
    }
    pin(YS) {
      direction : output;
    }
  }
}
"#;

    #[test]
    fn cells_areas_outputs_and_state() {
        let lib = parse(LIB);
        assert_eq!(lib.len(), 3);
        assert_eq!(lib["AND2X1"].area, 32.0);
        assert_eq!(lib["AND2X1"].outputs, ["Y"]);
        assert!(!lib["AND2X1"].sequential);
        assert!(lib["DFFPOSX1"].sequential);
        assert_eq!(lib["DFFPOSX1"].outputs, ["Q"]);
        assert_eq!(lib["FAX1"].area, 80.0);
        assert_eq!(lib["FAX1"].outputs, ["YC", "YS"]);
    }
}
