//! A levelised, bit-parallel engine for the gate-level netlist: every net holds 64 lanes, one
//! bit each, so one pass over the cells simulates 64 copies of the design with their own
//! inputs. In a large weight-logic netlist nearly every cell changes every cycle (the weight
//! cones follow the address registers), so keeping an event queue costs more than it saves;
//! instead each settle evaluates, in level order, every node in the fan-out cone of the
//! sources that changed (a port, or the flip-flops' state), with the cone lists built once per
//! combination of sources.
//!
//! Activity: a net's toggles are counted in the lanes of a mask, bit by bit, at the same points
//! as the event-driven engine counts them ([`crate::cyclesim`]): after the inputs change and
//! after each clock edge, zero delay.

use std::collections::{BTreeMap, HashMap};

use crate::cyclesim::{Compiled, Seq, SimError};
use crate::logic::MAX_VARS;
use crate::vcd::Activity;

/// Lanes simulated at once: the bits of a word.
pub const LANES: usize = 64;

/// The group bit of the sequential cells' state nets.
const STATE: u32 = 1;

/// The netlist, 64 copies at once.
pub struct LaneSim {
    names: Vec<String>,
    value: Vec<u64>,
    toggles: Vec<u64>,
    /// Lanes whose toggles are counted.
    pub counting: u64,
    /// The combinational nodes in level order, as columns.
    table: Vec<u64>,
    arity: Vec<u8>,
    ins: Vec<[u32; MAX_VARS]>,
    /// Node `j` drives net `base + j`.
    base: usize,
    /// Source groups (bits) whose changes can reach each node.
    reach: Vec<u32>,
    seqs: Vec<Seq>,
    /// For a flip-flop that is clocked by one pin and takes one pin (no set or clear, the
    /// library's plain flip-flop): those pins' nets, read without evaluating its tables.
    plain: Vec<Option<(u32, u32)>>,
    clock_was: Vec<u64>,
    /// Source groups whose changes can make each sequential cell change: those of the pins
    /// its clock, clear and preset read (and a latch's data; a flip-flop's data matters only
    /// at an edge).
    sense: Vec<u32>,
    /// Each net's source group (0 for nets that nodes drive, or that never change).
    group: Vec<u32>,
    /// Groups changed since the last settle.
    pending: u32,
    node_lists: HashMap<u32, Vec<u32>>,
    seq_lists: HashMap<u32, Vec<u32>>,
    outputs: Vec<(String, String, u32)>,
    ports: HashMap<String, Vec<u32>>,
}

/// Every lane of `x0 ? l1 : l0`.
#[inline(always)]
fn mux(x: u64, l0: u64, l1: u64) -> u64 {
    l0 ^ ((l0 ^ l1) & x)
}

/// Bit `k` of `t` as a lane mask.
#[inline(always)]
fn leaf(t: u64, k: u32) -> u64 {
    (t >> k & 1).wrapping_neg()
}

#[inline(always)]
fn eval1(t: u64, x: &[u64; MAX_VARS]) -> u64 {
    mux(x[0], leaf(t, 0), leaf(t, 1))
}

#[inline(always)]
fn eval2(t: u64, x: &[u64; MAX_VARS]) -> u64 {
    mux(x[1], eval1(t, x), eval1(t >> 2, x))
}

#[inline(always)]
fn eval3(t: u64, x: &[u64; MAX_VARS]) -> u64 {
    mux(x[2], eval2(t, x), eval2(t >> 4, x))
}

#[inline(always)]
fn eval4(t: u64, x: &[u64; MAX_VARS]) -> u64 {
    mux(x[3], eval3(t, x), eval3(t >> 8, x))
}

/// `t` (a truth table over `n` variables) evaluated on every lane of `x`: a tree of
/// multiplexers over the table's bits, without branches up to 4 inputs (the nodes run sorted
/// by input count, so the dispatch is predicted), as a recursion above.
#[inline(always)]
fn eval(t: u64, n: usize, x: &[u64; MAX_VARS]) -> u64 {
    match n {
        0 => leaf(t, 0),
        1 => eval1(t, x),
        2 => eval2(t, x),
        3 => eval3(t, x),
        4 => eval4(t, x),
        _ => eval_wide(t, n, x),
    }
}

#[inline(never)]
fn eval_wide(t: u64, n: usize, x: &[u64; MAX_VARS]) -> u64 {
    let half = 1u32 << (n - 1);
    let mask = (1u64 << half) - 1;
    mux(
        x[n - 1],
        eval(t & mask, n - 1, x),
        eval(t >> half & mask, n - 1, x),
    )
}

/// The pin a table over `n` pins merely passes on, if it does.
fn single_pin(t: u64, n: usize) -> Option<usize> {
    (0..n).find(|&i| (0..1usize << n).all(|k| (t >> k & 1) as usize == k >> i & 1))
}

/// Whether table `t` over `n` variables reads variable `i`.
fn reads(t: u64, n: usize, i: usize) -> bool {
    (0..1usize << n).any(|k| (t >> k & 1) != (t >> (k ^ 1 << i) & 1))
}

impl LaneSim {
    /// The engine over the compiled netlist `c`, every lane at the state the event-driven
    /// engine starts from (state 0, every node evaluated once).
    pub(crate) fn new(c: &Compiled) -> LaneSim {
        let n_nets = c.names.len();
        // Nodes by level, and within a level by input count and table, so that the dispatch
        // on the input count is predicted.
        let mut order: Vec<u32> = (0..c.nodes.len() as u32).collect();
        order.sort_by_key(|&j| {
            let nd = &c.nodes[j as usize];
            (c.level[j as usize], nd.inputs.n, nd.table, j)
        });
        // Nets renumbered: the sources first, then the nodes' outputs in evaluation order, so
        // that a pass writes its values and toggles front to back.
        let mut driven = vec![false; n_nets];
        for nd in &c.nodes {
            driven[nd.out as usize] = true;
        }
        let mut id = vec![0u32; n_nets];
        let mut names = Vec::with_capacity(n_nets);
        for i in (0..n_nets).filter(|&i| !driven[i]) {
            id[i] = names.len() as u32;
            names.push(c.names[i].clone());
        }
        let base = names.len();
        for &j in &order {
            let o = c.nodes[j as usize].out as usize;
            id[o] = names.len() as u32;
            names.push(c.names[o].clone());
        }
        let re = |n: u32| id[n as usize];
        let seqs: Vec<Seq> = c
            .seqs
            .iter()
            .map(|s| Seq {
                pins: s.pins.iter().map(|&p| re(p)).collect(),
                q: re(s.q),
                qn: s.qn.map(re),
                ..s.clone()
            })
            .collect();
        let ports: HashMap<String, Vec<u32>> = c
            .ports
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|&n| re(n)).collect()))
            .collect();
        let outputs = c
            .outputs
            .iter()
            .map(|(i, p, n)| (i.clone(), p.clone(), re(*n)))
            .collect();
        let mut group = vec![0u32; n_nets];
        for s in &seqs {
            for q in std::iter::once(s.q).chain(s.qn) {
                group[q as usize] = STATE;
            }
        }
        // One bit per port, in name order; ports past the 31st share the last bit.
        let mut port_names: Vec<&String> = ports.keys().collect();
        port_names.sort();
        for (i, p) in port_names.into_iter().enumerate() {
            let bit = 1u32 << (i + 1).min(31);
            for &n in &ports[p] {
                group[n as usize] |= bit;
            }
        }
        let mut table = Vec::with_capacity(order.len());
        let mut arity = Vec::with_capacity(order.len());
        let mut ins = Vec::with_capacity(order.len());
        let mut reach: Vec<u32> = Vec::with_capacity(order.len());
        let net_reach = |reach: &[u32], i: u32| match (i as usize).checked_sub(base) {
            Some(j) => reach[j],
            None => group[i as usize],
        };
        for &j in &order {
            let nd = &c.nodes[j as usize];
            let mut nets = [0u32; MAX_VARS];
            let mut r = 0;
            for (k, &i) in nd.inputs.iter().enumerate() {
                nets[k] = re(i);
                r |= net_reach(&reach, nets[k]);
            }
            table.push(nd.table);
            arity.push(nd.inputs.n);
            ins.push(nets);
            reach.push(r);
        }
        let sense = seqs
            .iter()
            .map(|s| {
                let n = s.pins.len();
                let mut sens = 0;
                for (i, &p) in s.pins.iter().enumerate() {
                    let by = |t: Option<u64>| t.is_some_and(|t| reads(t, n, i));
                    if by(Some(s.clock))
                        || by(s.clear)
                        || by(s.preset)
                        || (s.latch && by(Some(s.data)))
                    {
                        sens |= net_reach(&reach, p);
                    }
                }
                sens
            })
            .collect();
        let plain = seqs
            .iter()
            .map(|s| {
                let n = s.pins.len();
                match (single_pin(s.clock, n), single_pin(s.data, n)) {
                    (Some(c), Some(d)) if !s.latch && s.clear.is_none() && s.preset.is_none() => {
                        Some((s.pins[c], s.pins[d]))
                    }
                    _ => None,
                }
            })
            .collect();
        let mut s = LaneSim {
            plain,
            names,
            value: vec![0; n_nets],
            toggles: vec![0; n_nets],
            counting: 0,
            table,
            arity,
            ins,
            base,
            reach,
            clock_was: vec![0; seqs.len()],
            seqs,
            sense,
            group,
            pending: 0,
            node_lists: HashMap::new(),
            seq_lists: HashMap::new(),
            outputs,
            ports,
        };
        s.value[re(c.one) as usize] = !0;
        for sq in &s.seqs {
            if let Some(qn) = sq.qn {
                s.value[qn as usize] = !0;
            }
        }
        for j in 0..s.table.len() {
            s.eval_node(j);
        }
        for (i, sq) in s.seqs.iter().enumerate() {
            s.clock_was[i] = s.pins_eval(sq.clock, &sq.pins);
        }
        s
    }

    #[inline]
    fn eval_node(&mut self, j: usize) -> u64 {
        let n = self.arity[j] as usize;
        let mut x = [0u64; MAX_VARS];
        for (k, &i) in self.ins[j][..n].iter().enumerate() {
            x[k] = self.value[i as usize];
        }
        let v = eval(self.table[j], n, &x);
        let o = self.base + j;
        let d = self.value[o] ^ v;
        if d != 0 {
            self.value[o] = v;
            self.toggles[o] += u64::from((d & self.counting).count_ones());
        }
        d
    }

    fn pins_eval(&self, t: u64, pins: &[u32]) -> u64 {
        let mut x = [0u64; MAX_VARS];
        for (k, &i) in pins.iter().enumerate() {
            x[k] = self.value[i as usize];
        }
        eval(t, pins.len(), &x)
    }

    /// Sets source net `n` to `v` in every lane.
    fn set(&mut self, n: u32, v: u64) {
        let d = self.value[n as usize] ^ v;
        if d != 0 {
            self.value[n as usize] = v;
            self.toggles[n as usize] += u64::from((d & self.counting).count_ones());
            self.pending |= self.group[n as usize];
        }
    }

    /// Evaluates the cone of the changed sources, level by level.
    fn settle(&mut self) {
        let g = std::mem::take(&mut self.pending);
        if g == 0 {
            return;
        }
        let list = match self.node_lists.remove(&g) {
            Some(l) => l,
            None => (0..self.table.len() as u32)
                .filter(|&j| self.reach[j as usize] & g != 0)
                .collect(),
        };
        if list.len() == self.table.len() {
            for j in 0..self.table.len() {
                self.eval_node(j);
            }
        } else {
            for &j in &list {
                self.eval_node(j as usize);
            }
        }
        self.node_lists.insert(g, list);
    }

    /// Settles, then lets flip-flops whose clock rose capture and latches follow, until
    /// nothing changes.
    pub(crate) fn settle_state(&mut self) -> Result<(), SimError> {
        for _round in 0..64 {
            let g = self.pending;
            self.settle();
            let list = match self.seq_lists.remove(&g) {
                Some(l) => l,
                None => (0..self.seqs.len() as u32)
                    .filter(|&j| self.sense[j as usize] & g != 0)
                    .collect(),
            };
            let mut next: Vec<(u32, u64)> = Vec::new();
            for &j in &list {
                if let Some((c, d)) = self.plain[j as usize] {
                    let clock = self.value[c as usize];
                    let edge = clock & !self.clock_was[j as usize];
                    self.clock_was[j as usize] = clock;
                    if edge != 0 {
                        let s = &self.seqs[j as usize];
                        let q = self.value[s.q as usize];
                        let v = (self.value[d as usize] & edge) | (q & !edge);
                        if v != q {
                            next.push((s.q, v));
                            if let Some(qn) = s.qn {
                                next.push((qn, !v));
                            }
                        }
                    }
                    continue;
                }
                let s = &self.seqs[j as usize];
                let clock = self.pins_eval(s.clock, &s.pins);
                let q = self.value[s.q as usize];
                let edge = if s.latch {
                    clock
                } else {
                    clock & !self.clock_was[j as usize]
                };
                let mut v = q;
                if edge != 0 {
                    let d = self.pins_eval(s.data, &s.pins);
                    v = (d & edge) | (q & !edge);
                }
                if let Some(t) = s.preset {
                    v |= self.pins_eval(t, &s.pins);
                }
                if let Some(t) = s.clear {
                    v &= !self.pins_eval(t, &s.pins);
                }
                if v != q {
                    next.push((s.q, v));
                    if let Some(qn) = s.qn {
                        next.push((qn, !v));
                    }
                }
                self.clock_was[j as usize] = clock;
            }
            self.seq_lists.insert(g, list);
            if next.is_empty() && self.pending == 0 {
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

    /// Drives port `name`: bit `i` of the port takes `words[i]` (every lane's value), 0 past
    /// the end of `words`.
    pub(crate) fn drive(&mut self, name: &str, words: &[u64]) -> Result<(), SimError> {
        let nets = self.port(name)?.to_vec();
        for (i, n) in nets.into_iter().enumerate() {
            self.set(n, words.get(i).copied().unwrap_or(0));
        }
        Ok(())
    }

    /// Every lane's value of each bit of port `name`.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u64>, SimError> {
        Ok(self
            .port(name)?
            .iter()
            .map(|&n| self.value[n as usize])
            .collect())
    }

    /// One clock cycle: `clk` rises, everything settles, `clk` falls.
    pub(crate) fn clock(&mut self) -> Result<(), SimError> {
        self.drive("clk", &[!0])?;
        self.settle_state()?;
        self.drive("clk", &[0])?;
        self.settle_state()
    }

    /// Lane `lane` of every net, as a bit set.
    pub(crate) fn lane(&self, lane: usize) -> Vec<u64> {
        let mut bits = vec![0u64; self.value.len().div_ceil(64)];
        for (i, v) in self.value.iter().enumerate() {
            bits[i / 64] |= (v >> lane & 1) << (i % 64);
        }
        bits
    }

    /// The name of net `i`, for messages.
    pub(crate) fn net_name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Toggles of every cell output pin counted so far, over `cycles` clock cycles.
    pub(crate) fn activity(&self, cycles: u64) -> Activity {
        let mut toggles = BTreeMap::new();
        for (inst, pin, n) in &self.outputs {
            toggles.insert((inst.clone(), pin.clone()), self.toggles[*n as usize]);
        }
        Activity { cycles, toggles }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_evaluate_lane_by_lane() {
        // Every table over 3 variables, on the 8 input combinations in 8 lanes.
        let x = [0b1010_1010, 0b1100_1100, 0b1111_0000, 0, 0, 0];
        for t in 0..256u64 {
            assert_eq!(eval(t, 3, &x) & 0xff, t, "table {t:#b}");
        }
        // Random tables of every size on random lanes, against a lookup per lane.
        let mut r = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            r = sim::stimulus::splitmix64(r);
            r
        };
        for n in 0..=MAX_VARS {
            for _ in 0..20 {
                let t = next() & (!0u64 >> (64 - (1 << n)));
                let x = [next(), next(), next(), next(), next(), next()];
                let v = eval(t, n, &x);
                for lane in 0..64 {
                    let idx = (0..n).fold(0, |a, i| a | (x[i] >> lane & 1) << i);
                    assert_eq!(v >> lane & 1, t >> idx & 1, "{n} inputs, lane {lane}");
                }
            }
        }
        assert!(reads(0b0110, 2, 0) && reads(0b0110, 2, 1));
        assert_eq!(single_pin(0b1100, 2), Some(1));
        assert_eq!(single_pin(0b1010, 2), Some(0));
        assert_eq!(single_pin(0b0110, 2), None);
        assert!(reads(0b1100, 2, 1) && !reads(0b1100, 2, 0));
    }
}
