//! A two-state, zero-delay simulator of the synthesised netlist, for designs too large for
//! Icarus (a 100,000-cell netlist runs a few cycles per second there): every cell's outputs
//! are truth tables built from the liberty's `function`, `ff` and `latch` groups, the
//! combinational cells are sorted by level, and each settle re-evaluates only the cells whose
//! inputs changed. It drives the netlist with the harness protocol of `testbenches`
//! (`sim::stimulus`) and returns the same trace, so the gate-level check compares it with the
//! reference as it does the Icarus run's.
//!
//! Activity: every net's changes are counted from the end of reset, one settle after the inputs
//! change and one after the clock edge, as the Icarus run's VCD shows them (zero delay, so no
//! glitches: the dynamic power is a lower bound in both).

use std::collections::{BTreeMap, HashMap};

use sim::stimulus::{Stimulus, RESET_CYCLES};
use sim::trace::{OutputBeat, Ports, Trace};

use crate::liberty::Library;
use crate::logic::{truth_table, MAX_VARS};
use crate::netlist::{Net, Netlist};
use crate::vcd::Activity;

/// A combinational function: `out = table[inputs as bits]`.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) table: u64,
    pub(crate) inputs: Inputs,
    pub(crate) out: u32,
}

/// A node's input nets, inline: the settle loop reads every active node's inputs, and a
/// pointer per node to a separate allocation cost a cache miss each.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Inputs {
    pub(crate) nets: [u32; MAX_VARS],
    pub(crate) n: u8,
}

impl Inputs {
    fn of(nets: &[u32]) -> Inputs {
        let mut a = [0; MAX_VARS];
        a[..nets.len()].copy_from_slice(nets);
        Inputs {
            nets: a,
            n: nets.len() as u8,
        }
    }
}

impl std::ops::Deref for Inputs {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        &self.nets[..self.n as usize]
    }
}

/// A flip-flop or latch: state net, optional complement net, and tables over its pins.
#[derive(Clone, Debug)]
pub(crate) struct Seq {
    pub(crate) latch: bool,
    pub(crate) pins: Vec<u32>,
    pub(crate) data: u64,
    pub(crate) clock: u64,
    pub(crate) clear: Option<u64>,
    pub(crate) preset: Option<u64>,
    pub(crate) q: u32,
    pub(crate) qn: Option<u32>,
    pub(crate) clock_was: bool,
}

/// The compiled netlist.
pub struct CycleSim {
    names: Vec<String>,
    value: Vec<u8>,
    toggles: Vec<u64>,
    counting: bool,
    nodes: Vec<Node>,
    level: Vec<u32>,
    /// Fanout of each net: node indices (CSR).
    fan_start: Vec<u32>,
    fan: Vec<u32>,
    seqs: Vec<Seq>,
    /// Sequential cells reading each net (CSR), so that only those whose pins changed are
    /// looked at after a settle.
    seq_start: Vec<u32>,
    seq_fan: Vec<u32>,
    seq_dirty: Vec<bool>,
    /// Nodes to evaluate, by level.
    buckets: Vec<Vec<u32>>,
    dirty: Vec<bool>,
    /// Nets changed since the sequential cells were last looked at.
    changed: Vec<u32>,
    /// (instance, output pin, net) for the activity.
    outputs: Vec<(String, String, u32)>,
    ports: HashMap<String, Vec<u32>>,
}

/// Why a netlist cannot be simulated.
pub type SimError = String;

/// The netlist as functions over numbered nets, which both engines evaluate: combinational
/// nodes with their levels (Kahn's order), the sequential cells, the cell output pins whose
/// toggles the power needs, and the ports' nets.
pub(crate) struct Compiled {
    pub(crate) names: Vec<String>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) level: Vec<u32>,
    pub(crate) levels: usize,
    /// Readers of each net among the nodes (CSR, as [`readers`] gives them).
    pub(crate) fan_start: Vec<u32>,
    pub(crate) fan: Vec<u32>,
    pub(crate) seqs: Vec<Seq>,
    pub(crate) outputs: Vec<(String, String, u32)>,
    pub(crate) ports: HashMap<String, Vec<u32>>,
    /// The constant-1 net.
    pub(crate) one: u32,
}

/// Builds the functions of `nl`'s cells from `lib`.
pub(crate) fn compile(nl: &Netlist, lib: &Library) -> Result<Compiled, SimError> {
    let mut names = nl.net_names.clone();
    let net = |n: &mut Vec<String>, x: Net| -> u32 {
        match x {
            Net::Id(i) => i as u32,
            Net::Const(b) => {
                let name = if b { "1'b1" } else { "1'b0" };
                match n.iter().position(|s| s == name) {
                    Some(i) => i as u32,
                    None => {
                        n.push(name.into());
                        (n.len() - 1) as u32
                    }
                }
            }
        }
    };
    let one = net(&mut names, Net::Const(true));
    let mut nodes = Vec::new();
    let mut seqs = Vec::new();
    let mut outputs = Vec::new();
    for (a, b) in &nl.assigns {
        let b = net(&mut names, *b);
        nodes.push(Node {
            table: 0b10,
            inputs: Inputs::of(&[b]),
            out: *a as u32,
        });
    }
    for inst in &nl.instances {
        let what = |m: String| format!("cell {} ({}): {m}", inst.name, inst.cell);
        let cell = lib
            .get(&inst.cell)
            .ok_or_else(|| what("not in the liberty file".into()))?;
        if cell.three_state {
            return Err(what(
                "a tri-state cell, which the cycle simulator does not model".into(),
            ));
        }
        let pin_net = |names: &mut Vec<String>, pin: &str| -> Option<u32> {
            inst.pins
                .iter()
                .find(|(p, _)| p == pin)
                .map(|(_, n)| net(names, *n))
        };
        let inputs: Vec<&str> = cell.inputs.iter().map(String::as_str).collect();
        let in_nets: Vec<u32> = cell
            .inputs
            .iter()
            .map(|p| pin_net(&mut names, p).ok_or_else(|| what(format!("input {p} unconnected"))))
            .collect::<Result<_, _>>()?;
        let mut vars = inputs.clone();
        let mut var_nets = in_nets.clone();
        if let Some(st) = &cell.state {
            let table = |f: &str| truth_table(f, &inputs).map_err(&what);
            let q = names.len() as u32;
            names.push(format!("{}.{}", inst.name, st.vars.0));
            vars.push(&st.vars.0);
            var_nets.push(q);
            let qn = (!st.vars.1.is_empty()).then(|| {
                names.push(format!("{}.{}", inst.name, st.vars.1));
                vars.push(&st.vars.1);
                var_nets.push(q + 1);
                q + 1
            });
            seqs.push(Seq {
                latch: st.latch,
                pins: in_nets.clone(),
                data: table(&st.data)?,
                clock: table(&st.clock)?,
                clear: st.clear.as_deref().map(table).transpose()?,
                preset: st.preset.as_deref().map(table).transpose()?,
                q,
                qn,
                clock_was: false,
            });
        }
        for o in &cell.outputs {
            let f = cell
                .functions
                .get(o)
                .ok_or_else(|| what(format!("output {o} has no function")))?;
            let Some(out) = pin_net(&mut names, o) else {
                continue;
            };
            // Only the variables the function reads, so the table stays small.
            let used: Vec<usize> = (0..vars.len())
                .filter(|&i| {
                    f.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|w| w == vars[i])
                })
                .collect();
            let uv: Vec<&str> = used.iter().map(|&i| vars[i]).collect();
            nodes.push(Node {
                table: truth_table(f, &uv).map_err(&what)?,
                inputs: Inputs::of(&used.iter().map(|&i| var_nets[i]).collect::<Vec<_>>()),
                out,
            });
            outputs.push((inst.name.clone(), o.clone(), out));
        }
    }
    let n_nets = names.len();
    // One driver per net.
    let mut driver = vec![u32::MAX; n_nets];
    for (i, nd) in nodes.iter().enumerate() {
        if driver[nd.out as usize] != u32::MAX {
            return Err(format!("net {} has two drivers", names[nd.out as usize]));
        }
        driver[nd.out as usize] = i as u32;
    }
    for s in &seqs {
        for q in std::iter::once(s.q).chain(s.qn) {
            if driver[q as usize] != u32::MAX {
                return Err(format!("net {} has two drivers", names[q as usize]));
            }
        }
    }
    let (mut fan_start, fan) = readers(n_nets, &nodes, |nd| &nd.inputs);
    // Levels: Kahn's order over the combinational nodes.
    let mut pending: Vec<u32> = nodes
        .iter()
        .map(|nd| {
            nd.inputs
                .iter()
                .filter(|&&i| driver[i as usize] != u32::MAX)
                .count() as u32
        })
        .collect();
    let mut level = vec![0u32; nodes.len()];
    let mut ready: Vec<u32> = (0..nodes.len() as u32)
        .filter(|&j| pending[j as usize] == 0)
        .collect();
    let mut done = 0;
    while let Some(j) = ready.pop() {
        done += 1;
        let out = nodes[j as usize].out as usize;
        for k in fan_start[out]..fan_start[out + 1] {
            let m = fan[k as usize] as usize;
            level[m] = level[m].max(level[j as usize] + 1);
            pending[m] -= 1;
            if pending[m] == 0 {
                ready.push(m as u32);
            }
        }
    }
    if done < nodes.len() {
        let stuck = pending.iter().position(|&p| p > 0).unwrap_or(0);
        return Err(format!(
            "a combinational loop through net {}",
            names[nodes[stuck].out as usize]
        ));
    }
    let levels = level.iter().max().map_or(0, |m| *m as usize + 1);
    let mut ports = HashMap::new();
    for p in &nl.ports {
        let bits: Vec<u32> = p.bits.iter().map(|b| net(&mut names, *b)).collect();
        ports.insert(p.name.clone(), bits);
    }
    // Nets named only by ports or constants have no fanout entries yet.
    fan_start.resize(names.len() + 1, *fan_start.last().unwrap_or(&0));
    Ok(Compiled {
        names,
        nodes,
        level,
        levels,
        fan_start,
        fan,
        seqs,
        outputs,
        ports,
        one,
    })
}

impl CycleSim {
    /// Builds the simulator of `nl` with the cells of `lib`.
    pub fn new(nl: &Netlist, lib: &Library) -> Result<CycleSim, SimError> {
        let c = compile(nl, lib)?;
        let n_nets = c.names.len();
        let (seq_start, seq_fan) = readers(n_nets, &c.seqs, |sq| &sq.pins);
        let mut s = CycleSim {
            seq_dirty: vec![false; c.seqs.len()],
            seq_start,
            seq_fan,
            value: vec![0; n_nets],
            toggles: vec![0; n_nets],
            counting: false,
            dirty: vec![false; c.nodes.len()],
            buckets: vec![Vec::new(); c.levels],
            changed: Vec::new(),
            names: c.names,
            nodes: c.nodes,
            level: c.level,
            fan_start: c.fan_start,
            fan: c.fan,
            seqs: c.seqs,
            outputs: c.outputs,
            ports: c.ports,
        };
        s.value[c.one as usize] = 1;
        // The complements of the states, which start at 0.
        for i in 0..s.seqs.len() {
            if let Some(qn) = s.seqs[i].qn {
                s.value[qn as usize] = 1;
            }
        }
        // Everything evaluated once.
        for j in 0..s.nodes.len() {
            s.mark(j as u32);
        }
        s.settle();
        // A clock that is already high (a falling-edge flip-flop's, with clk low) is no edge.
        for i in 0..s.seqs.len() {
            let c = s.table(s.seqs[i].clock, &s.seqs[i].pins);
            s.seqs[i].clock_was = c;
        }
        Ok(s)
    }

    fn mark(&mut self, j: u32) {
        if !self.dirty[j as usize] {
            self.dirty[j as usize] = true;
            self.buckets[self.level[j as usize] as usize].push(j);
        }
    }

    /// Sets net `n` to `v`, scheduling its fanout.
    fn set(&mut self, n: u32, v: u8) {
        if self.value[n as usize] == v {
            return;
        }
        self.value[n as usize] = v;
        if self.counting {
            self.toggles[n as usize] += 1;
        }
        self.changed.push(n);
        for k in self.fan_start[n as usize]..self.fan_start[n as usize + 1] {
            let j = self.fan[k as usize];
            self.mark(j);
        }
    }

    /// Evaluates every scheduled node, level by level.
    fn settle(&mut self) {
        for l in 0..self.buckets.len() {
            let mut b = std::mem::take(&mut self.buckets[l]);
            for &j in &b {
                self.dirty[j as usize] = false;
                let nd = &self.nodes[j as usize];
                let idx = nd.inputs.iter().enumerate().fold(0usize, |a, (i, &n)| {
                    a | (self.value[n as usize] as usize) << i
                });
                let (out, v) = (nd.out, (nd.table >> idx & 1) as u8);
                self.set(out, v);
            }
            b.clear();
            // Nodes only schedule later levels, so this bucket stays empty; keep its capacity.
            self.buckets[l] = b;
        }
    }

    fn table(&self, t: u64, pins: &[u32]) -> bool {
        let idx = pins.iter().enumerate().fold(0usize, |a, (i, &n)| {
            a | (self.value[n as usize] as usize) << i
        });
        t >> idx & 1 == 1
    }

    /// Settles, then lets flip-flops whose clock rose capture and latches follow, until
    /// nothing changes.
    fn settle_state(&mut self) -> Result<(), SimError> {
        for _round in 0..64 {
            self.settle();
            let mut touched: Vec<u32> = Vec::new();
            for n in std::mem::take(&mut self.changed) {
                for k in self.seq_start[n as usize]..self.seq_start[n as usize + 1] {
                    let j = self.seq_fan[k as usize];
                    if !self.seq_dirty[j as usize] {
                        self.seq_dirty[j as usize] = true;
                        touched.push(j);
                    }
                }
            }
            let mut next: Vec<(u32, u8)> = Vec::new();
            for &j in &touched {
                self.seq_dirty[j as usize] = false;
                let s = &self.seqs[j as usize];
                let clock = self.table(s.clock, &s.pins);
                let q = self.value[s.q as usize];
                let mut v = q;
                if clock && (s.latch || !s.clock_was) {
                    v = self.table(s.data, &s.pins) as u8;
                }
                if s.preset.is_some_and(|t| self.table(t, &s.pins)) {
                    v = 1;
                }
                if s.clear.is_some_and(|t| self.table(t, &s.pins)) {
                    v = 0;
                }
                if v != q {
                    next.push((s.q, v));
                    if let Some(qn) = s.qn {
                        next.push((qn, 1 - v));
                    }
                }
                self.seqs[j as usize].clock_was = clock;
            }
            if next.is_empty() {
                return Ok(());
            }
            for (n, v) in next {
                self.set(n, v);
            }
        }
        Err("the state did not settle in 64 rounds (a latch loop?)".into())
    }

    fn port(&self, name: &str) -> Result<&[u32], SimError> {
        self.ports
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("the netlist has no port {name}"))
    }

    fn drive(&mut self, name: &str, bits: &[u8]) -> Result<(), SimError> {
        let nets = self.port(name)?.to_vec();
        for (i, n) in nets.into_iter().enumerate() {
            let v = bits.get(i / 8).map_or(0, |b| b >> (i % 8) & 1);
            self.set(n, v);
        }
        Ok(())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, SimError> {
        Ok(self
            .port(name)?
            .iter()
            .map(|&n| self.value[n as usize])
            .collect())
    }

    fn clock(&mut self) -> Result<(), SimError> {
        self.drive("clk", &[1])?;
        self.settle_state()?;
        self.drive("clk", &[0])?;
        self.settle_state()
    }

    /// Toggles of every cell output pin so far (after reset).
    fn activity(&self, cycles: u64) -> Activity {
        let mut toggles = BTreeMap::new();
        for (inst, pin, n) in &self.outputs {
            toggles.insert((inst.clone(), pin.clone()), self.toggles[*n as usize]);
        }
        Activity { cycles, toggles }
    }

    /// Net count, for messages.
    pub fn nets(&self) -> usize {
        self.names.len()
    }
}

/// What a run gives.
pub struct CycleRun {
    /// What the netlist did.
    pub trace: Trace,
    /// Cell output toggles after reset.
    pub activity: Activity,
}

/// Streams `stream` (the input port's bytes) into the netlist with `stim`, as the harness
/// does, until `expected` frames came out or `max_cycles` passed; `progress` hears the cycle
/// count now and then.
pub fn run(
    sim: &mut CycleSim,
    ports: &Ports,
    stream: &[u8],
    stim: Stimulus,
    max_cycles: u64,
    progress: &mut dyn FnMut(u64, usize),
) -> Result<CycleRun, SimError> {
    let bpb = (ports.input_width as usize).div_ceil(8).max(1);
    if !stream.len().is_multiple_of(bpb) {
        return Err(format!(
            "{} input bytes are not whole beats of {bpb} bytes",
            stream.len()
        ));
    }
    let beats: Vec<&[u8]> = stream.chunks(bpb).collect();
    let expected = beats.len() / ports.beats_per_frame.max(1) as usize;
    let n_stages = ports.stages.len();
    // Reset.
    sim.drive("rst", &[1])?;
    sim.drive("s_valid", &[0])?;
    sim.drive("m_ready", &[0])?;
    sim.drive("s_data", &[])?;
    sim.drive("clk", &[0])?;
    sim.settle_state()?;
    for _ in 0..RESET_CYCLES {
        sim.clock()?;
    }
    sim.drive("rst", &[0])?;
    sim.counting = true;
    let mut trace = Trace::default();
    let (mut t, mut sent, mut edges) = (0u64, 0usize, 0u64);
    let sw = ports.score_width as usize;
    while t < max_cycles && trace.outputs.len() < expected {
        let c = stim.at(t);
        let have = sent < beats.len();
        let s_valid = have && !c.bubble;
        sim.drive("s_valid", &[s_valid as u8])?;
        sim.drive("s_data", if have { beats[sent] } else { &[] })?;
        sim.drive("m_ready", &[!c.stall as u8])?;
        sim.settle_state()?;
        let bit = |v: &[u8]| v.first().copied().unwrap_or(0) == 1;
        let s_ready = bit(&sim.read("s_ready")?);
        let fire = sim
            .read("dbg_fire")?
            .iter()
            .take(n_stages)
            .enumerate()
            .fold(0u64, |a, (i, &b)| a | (b as u64) << i)
            | ((s_valid && s_ready) as u64) << n_stages;
        if fire != 0 {
            trace.fires.push((t, fire));
        }
        if bit(&sim.read("m_valid")?) && !c.stall {
            let class = sim
                .read("m_class")?
                .iter()
                .enumerate()
                .fold(0u32, |a, (i, &b)| a | (b as u32) << i);
            let raw = sim.read("m_scores")?;
            let scores = (0..ports.classes as usize)
                .map(|k| {
                    let f = &raw[k * sw..(k + 1) * sw];
                    let v = f.iter().rev().fold(0i64, |a, &b| a << 1 | b as i64);
                    // Sign-extend the score_width-bit field.
                    let shift = 64 - sw as u32;
                    (v << shift) >> shift
                })
                .collect();
            trace.outputs.push(OutputBeat {
                cycle: t,
                class,
                scores,
            });
        }
        if s_valid && s_ready {
            sent += 1;
        }
        t += 1;
        if trace.outputs.len() < expected {
            sim.clock()?;
            edges += 1;
        }
        if t % 4096 == 0 {
            progress(t, trace.outputs.len());
        }
    }
    trace.cycles = t;
    Ok(CycleRun {
        activity: sim.activity(edges),
        trace,
    })
}

/// For each of `n_nets` nets, the items that read it (by `pins`), as compressed rows: item
/// indices `fan[start[k]..start[k + 1]]` read net `k`.
fn readers<T>(n_nets: usize, items: &[T], pins: impl Fn(&T) -> &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; n_nets + 1];
    for it in items {
        for &p in pins(it) {
            start[p as usize + 1] += 1;
        }
    }
    for k in 0..n_nets {
        start[k + 1] += start[k];
    }
    let mut fill = start.clone();
    let mut fan = vec![0u32; start[n_nets] as usize];
    for (j, it) in items.iter().enumerate() {
        for &p in pins(it) {
            fan[fill[p as usize] as usize] = j as u32;
            fill[p as usize] += 1;
        }
    }
    (start, fan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liberty;

    const LIB: &str = r#"library (t) {
  cell (INVX1) {
    pin(A) {
      direction : input;
    }
    pin(Y) {
      direction : output;
      function : "(!A)";
    }
  }
  cell (XOR2X1) {
    pin(A) {
      direction : input;
    }
    pin(B) {
      direction : input;
    }
    pin(Y) {
      direction : output;
      function : "(A^B)";
    }
  }
  cell (DFFPOSX1) {
    ff (DS0000,P0002) {
      next_state : "D";
      clocked_on : "CLK";
    }
    pin(CLK) {
      direction : input;
    }
    pin(D) {
      direction : input;
    }
    pin(Q) {
      direction : output;
      function : "DS0000";
    }
  }
}
"#;

    /// A 2-bit counter that counts when `en` is high: q0 ^= en, q1 ^= q0 & en (written with
    /// xor and an inverter chain so both kinds of cell run).
    const NET: &str = "module c(clk, en, q);
  input clk;
  input en;
  output [1:0] q;
  XOR2X1 g1 (
    .A(q[0]),
    .B(en),
    .Y(d0)
  );
  DFFPOSX1 g2 (
    .CLK(clk),
    .D(d0),
    .Q(q[0])
  );
  INVX1 g3 (
    .A(q[0]),
    .Y(n0)
  );
  INVX1 g4 (
    .A(n0),
    .Y(b0)
  );
  XOR2X1 g5 (
    .A(q[1]),
    .B(t1),
    .Y(d1)
  );
  DFFPOSX1 g6 (
    .CLK(clk),
    .D(d1),
    .Q(q[1])
  );
  assign t1 = b0;
endmodule
";

    #[test]
    fn a_counter_counts_and_its_toggles_are_counted() {
        let lib = liberty::parse(LIB);
        let nl = crate::netlist::parse(NET).unwrap();
        let mut s = CycleSim::new(&nl, &lib).unwrap();
        s.drive("en", &[1]).unwrap();
        s.counting = true;
        let mut seen = Vec::new();
        for _ in 0..5 {
            s.settle_state().unwrap();
            let q = s.read("q").unwrap();
            seen.push(q[0] + 2 * q[1]);
            s.clock().unwrap();
        }
        // q1 flips when q0 was 1 (t1 = q0, not q0 & en, since en stays high).
        assert_eq!(seen, [0, 1, 2, 3, 0]);
        let a = s.activity(5);
        assert_eq!(a.toggles[&("g2".to_string(), "Q".to_string())], 5);
        assert_eq!(a.toggles[&("g6".to_string(), "Q".to_string())], 2);
        // n0 follows q0.
        assert_eq!(a.toggles[&("g3".to_string(), "Y".to_string())], 5);
    }

    #[test]
    fn unknown_cells_and_loops_are_errors() {
        let lib = liberty::parse(LIB);
        let nl = crate::netlist::parse(
            "module m(a);\n  input a;\n  NAND9 g1 (\n    .A(a)\n  );\nendmodule\n",
        )
        .unwrap();
        let e = CycleSim::new(&nl, &lib).err().unwrap();
        assert!(e.contains("g1") && e.contains("NAND9"), "{e}");
        let looped = "module m(a);\n  input a;\n  INVX1 g1 (\n    .A(x),\n    .Y(y)\n  );\n  INVX1 g2 (\n    .A(y),\n    .Y(x)\n  );\nendmodule\n";
        let e = CycleSim::new(&crate::netlist::parse(looped).unwrap(), &lib)
            .err()
            .unwrap();
        assert!(e.contains("loop"), "{e}");
    }
}
