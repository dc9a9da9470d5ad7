//! The popcount adder tree of one MVTU lane: its shape (levels, node widths) and its Verilog.
//!
//! Pairs are summed level by level, every node exactly as wide as its largest value needs.
//! With shallow pipeline stages (at most [`TERNARY_MAX_STAGE_LEVELS`] adder levels between two
//! registers: the ECP5 above 117 MHz, as every design the exploration costs for it, and the
//! iCE40 from 40 MHz) the first level instead sums the XNOR bits in threes: a full adder, `p = a ^ b`,
//! `{(a & b) | (p & c), p ^ c}`, three XNORs into two LUT4s and a 2-bit node where a pair
//! gives a 2-bit node from two. Measured per lane with each family's Yosys (a lane of
//! N = 97, 288 and 784 bits registered every L levels, LUT4 plus two per ECP5 carry cell):
//! at L = 2 the ternary level took 16.7-19.6% fewer LUTs on the ECP5 and 14-18% fewer on the
//! iCE40, 12% fewer flip-flops, and a 784-bit lane placed at 191 MHz against 172; at L = 3
//! 0-6% fewer on both, at L = 1 12-13% fewer; at L = 4 up to 3% more, at L = 8 0-4% more
//! (Yosys's own restructuring of deep stages does as well from pairs). Three levels keep
//! pairs: the gain there is small, and the standard-cell designs (three levels at their
//! default 150 MHz) keep the trees their area model was fitted to.

use crate::ir::bits_for;

/// Deepest pipeline stage (adder levels between two registers) that gets a ternary first
/// level.
pub const TERNARY_MAX_STAGE_LEVELS: usize = 2;

/// Whether a tree registered every `stage_levels` adder levels starts with a ternary level.
pub fn ternary_first(stage_levels: usize) -> bool {
    stage_levels <= TERNARY_MAX_STAGE_LEVELS
}

/// One node of an adder tree: a Verilog expression and the largest value it can hold.
pub type Node = (String, u64);

/// Levels of the popcount tree of `simd` inputs.
pub fn tree_levels(simd: usize, ternary: bool) -> usize {
    let binary = |mut n: usize| {
        let mut levels = 0;
        while n > 1 {
            n = n.div_ceil(2);
            levels += 1;
        }
        levels
    };
    if ternary && simd > 2 {
        1 + binary(simd.div_ceil(3))
    } else {
        binary(simd)
    }
}

/// `{{(to-from){1'b0}}, expr}`, or `expr` if no padding is needed.
pub fn zext(expr: &str, from: u32, to: u32) -> String {
    if to > from {
        format!("{{{{{}{{1'b0}}}}, {expr}}}", to - from)
    } else {
        expr.to_string()
    }
}

/// Where the levels a call builds go: Verilog lines (and the count of node bits), or only
/// the count, for estimates that must not format thousands of lines per candidate.
enum Sink<'a> {
    /// Verilog lines; full adders as gates (`true`) or as a sum of three bits.
    Verilog(&'a mut String, bool),
    Count,
}

/// The tree's levels `first..first + levels` (fewer if one node is left first) from `nodes`,
/// level `first == 0` the ternary one when `ternary`; node `j` of level `k` is `t{k}_{j}`
/// (with `p{k}_{j}` a full adder's propagate bit), the root `pc`. Returns the last level's
/// nodes and the bits of every node built.
fn levels(
    mut sink: Sink,
    mut nodes: Vec<Node>,
    first: usize,
    levels: usize,
    ternary: bool,
) -> (Vec<Node>, u64) {
    let mut level = first;
    let mut bits = 0;
    while nodes.len() > 1 && level < first.saturating_add(levels) {
        let arity = if ternary && level == 0 { 3 } else { 2 };
        level += 1;
        let root = nodes.len() <= arity;
        let mut next = Vec::with_capacity(nodes.len().div_ceil(arity));
        for (j, group) in nodes.chunks(arity).enumerate() {
            if group.len() == 1 {
                next.push(group[0].clone());
                continue;
            }
            let m: u64 = group.iter().map(|(_, m)| m).sum();
            let w = bits_for(m);
            bits += u64::from(w);
            // Only Verilog names its nodes: counting (the exploration costs every candidate's
            // trees) allocates no strings.
            let name = match &mut sink {
                Sink::Verilog(t, gates) => {
                    let name = if root {
                        "pc".to_string()
                    } else {
                        format!("t{level}_{j}")
                    };
                    match group {
                        [(a, ma), (b, mb), (c, mc)] => {
                            debug_assert_eq!((ma, mb, mc), (&1, &1, &1), "a full adder of bits");
                            if *gates {
                                let p = format!("p{level}_{j}");
                                t.push_str(&format!(
                                    "wire {p} = {a} ^ {b};\nwire [1:0] {name} = {{({a} & {b}) | ({p} & {c}), {p} ^ {c}}};\n"
                                ));
                            } else {
                                t.push_str(&format!(
                                    "wire [1:0] {name} = {{1'b0, {a}}} + {{1'b0, {b}}} + {{1'b0, {c}}};\n"
                                ));
                            }
                        }
                        [(a, ma), (b, mb)] => t.push_str(&format!(
                            "wire [{}:0] {name} = {} + {};\n",
                            w - 1,
                            zext(a, bits_for(*ma), w),
                            zext(b, bits_for(*mb), w)
                        )),
                        _ => unreachable!("groups of two or three"),
                    }
                    name
                }
                Sink::Count => String::new(),
            };
            next.push((name, m));
        }
        nodes = next;
    }
    (nodes, bits)
}

/// Appends the tree's levels `first..first + levels` (see [`levels`]) as Verilog to `t` and
/// returns the last level's nodes. `gates`: full adders as gates, the form the LUT counts
/// were measured on; else as sums of three bits. Verilator 5.006 (Debian's) computes the
/// gate form wrongly where the XNORs' weights are constants (a fully unrolled layer: the
/// trained CNN's first layer, `32x9`, gave other scores than Icarus and the simulator on 923
/// of 1,000 frames), so such layers take the sums.
pub fn adder_levels(
    t: &mut String,
    nodes: Vec<Node>,
    first: usize,
    count: usize,
    ternary: bool,
    gates: bool,
) -> Vec<Node> {
    levels(Sink::Verilog(t, gates), nodes, first, count, ternary).0
}

/// Largest values of the nodes after levels `first..first + count` of a tree whose level
/// `first` starts from nodes of largest values `maxes`.
pub fn level_maxes(maxes: &[u64], first: usize, count: usize, ternary: bool) -> Vec<u64> {
    let nodes = maxes.iter().map(|&m| (String::new(), m)).collect();
    levels(Sink::Count, nodes, first, count, ternary)
        .0
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

/// Bits of every adder output in the popcount tree of `simd` inputs as the MVTU emits it.
pub fn adder_tree_bits(simd: u64, ternary: bool) -> u64 {
    adder_bits(&vec![1; simd as usize], ternary)
}

/// Bits of every adder output in the tree that sums leaves of largest values `maxes`.
pub fn adder_bits(maxes: &[u64], ternary: bool) -> u64 {
    let nodes = maxes.iter().map(|&m| (String::new(), m)).collect();
    levels(Sink::Count, nodes, 0, usize::MAX, ternary).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_bits_count_every_adder_output() {
        for t in [false, true] {
            assert_eq!(adder_tree_bits(1, t), 0);
            assert_eq!(adder_tree_bits(2, t), 2);
        }
        // 4 bits: two 2-bit sums and a 3-bit root; ternary: a full adder's 2 bits, a single
        // bit, and the 3-bit root.
        assert_eq!(adder_tree_bits(4, false), 7);
        assert_eq!(adder_tree_bits(4, true), 5);
        assert_eq!(adder_tree_bits(3, false), 2 + 2);
        assert_eq!(adder_tree_bits(3, true), 2);
        // 9 bits, ternary: three full adders (6 bits), then 3+3 -> 3 bits, then 6+3 -> 4 bits.
        assert_eq!(adder_tree_bits(9, true), 6 + 3 + 4);
    }

    #[test]
    fn levels_shrink_by_three_then_by_two() {
        assert_eq!(tree_levels(1, true), 0);
        assert_eq!(tree_levels(2, true), 1);
        assert_eq!(tree_levels(3, true), 1);
        assert_eq!(tree_levels(3, false), 2);
        assert_eq!(tree_levels(784, false), 10);
        // 784 -> 262 -> 131 -> ... -> 1: 1 + 9.
        assert_eq!(tree_levels(784, true), 10);
        assert_eq!(tree_levels(64, true), 1 + 5);
        assert_eq!(tree_levels(96, true), 1 + 5);
        assert_eq!(tree_levels(96, false), 7);
        for simd in 1..300 {
            for t in [false, true] {
                let roots = level_maxes(&vec![1; simd], 0, usize::MAX, t);
                assert_eq!(roots, vec![simd as u64], "{simd} {t}");
                // Exactly tree_levels levels: one fewer leaves more than one node.
                let levels = tree_levels(simd, t);
                if levels > 0 {
                    assert!(level_maxes(&vec![1; simd], 0, levels - 1, t).len() > 1);
                }
            }
        }
    }

    #[test]
    fn a_full_adder_level_names_its_nodes_and_the_root() {
        let mut v = String::new();
        let xn: Vec<Node> = (0..4).map(|i| (format!("xn[{i}]"), 1)).collect();
        let first = adder_levels(&mut v, xn, 0, 1, true, true);
        assert_eq!(
            v,
            "wire p1_0 = xn[0] ^ xn[1];\n\
             wire [1:0] t1_0 = {(xn[0] & xn[1]) | (p1_0 & xn[2]), p1_0 ^ xn[2]};\n"
        );
        assert_eq!(first, vec![("t1_0".into(), 3), ("xn[3]".into(), 1)]);
        let root = adder_levels(&mut v, first, 1, 1, true, true);
        assert_eq!(root, vec![("pc".into(), 4)]);
        assert!(
            v.ends_with("wire [2:0] pc = {{1{1'b0}}, t1_0} + {{2{1'b0}}, xn[3]};\n"),
            "{v}"
        );
        // Later levels are pairs even when the tree is ternary.
        let mut w = String::new();
        let four: Vec<Node> = (0..4).map(|i| (format!("a{i}"), 1)).collect();
        assert_eq!(adder_levels(&mut w, four, 1, 1, true, true).len(), 2);
    }
}
