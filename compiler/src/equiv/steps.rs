//! Stepping stones of a lemma: the running sum of a neuron's chunked sum after each chunk,
//! set beside the same prefix counted from the flat sum's own nodes.
//!
//! The chunked sum adds its chunks' counts one by one from the left; the flat sum counts each
//! plane by halves. SAT sweeping proves two sums equal by merging equal nodes bottom-up, but
//! few nodes of the chain equal a node of the balanced tree, so for long chains (64 chunks of
//! 4 inputs) the sweep has nothing to hold on to. The
//! stepping stones give it one node per chunk on the flat side: the prefix of the inputs the
//! chain has added so far, written as the left-to-right sum of the flat tree's own nodes that
//! cover it (and the earlier planes' counts as the flat sum adds them). From one stone to the
//! next the difference is local: one chunk's count added against a few of the tree's nodes
//! regrouped, a small SAT question. Each stone is asserted equal to its running sum; as true
//! facts they only add proof obligations, so the lemma stays sound. With them ABC decided a
//! 256-input layer in 64 chunks of 4 in about a minute; 784 inputs x 4 planes in 196 chunks
//! of 16 were still undecided after 2,400 s.

use super::spec::{popcount_split, popcount_tree, shifted, LayerSpec};

/// Declarations (inside the lemma harness, reading the vector of XNOR bits `v`) of the chunked
/// running sums and the flat stepping stones of layer `ls` added in chunks of `simd` inputs,
/// and the pairs of wires that must be equal, the running sum first. The copies of the two
/// sums' counts are written as the sum modules write them, so that a prover's structural
/// hashing merges them with the modules' own nodes.
pub fn lemma_steps(ls: &LayerSpec, simd: usize, v: &str) -> (String, Vec<(String, String)>) {
    let (n, planes, sw) = (ls.layer.inputs, ls.planes, ls.sum_width());
    let mut out = String::from(
        "    // Stepping stones: the chunked sum after each chunk, and the same prefix counted\n\
         \x20   // from the flat sum's nodes (see compiler::equiv::steps).\n",
    );
    let mut pairs = Vec::new();
    // The flat counts of every plane, as the flat sum module writes them.
    let flat: Vec<String> = (0..planes)
        .map(|k| popcount_tree(&mut out, v, k * n, n, &format!("sf{k}")).0)
        .collect();
    // The flat sum's running total over the planes before plane k: sf0 + (sf1 << 1) + ...
    let mut base: Option<String> = None;
    let mut j = 0;
    for (k, plane) in flat.iter().enumerate() {
        for c in 0..n / simd {
            let lo = k * n + c * simd;
            let (count, _) = popcount_tree(&mut out, v, lo, simd, &format!("sq{k}_{c}"));
            let term = shifted(&count, k);
            let sum = if j == 0 {
                term
            } else {
                format!("sq_{} + {term}", j - 1)
            };
            out.push_str(&format!("    wire [{}:0] sq_{j} = {sum};\n", sw - 1));
            // The plane's first (c + 1) * simd inputs, as the flat tree's nodes that cover them.
            let mut nodes = Vec::new();
            cover(v, k * n, n, plane, (c + 1) * simd + k * n, &mut nodes);
            let prefix = format!("sp_{j}");
            out.push_str(&format!(
                "    wire [{}:0] {prefix} = {};\n",
                sw - 1,
                nodes.join(" + ")
            ));
            let stone = match &base {
                None => prefix,
                Some(b) => format!("{b} + {}", shifted(&prefix, k)),
            };
            out.push_str(&format!("    wire [{}:0] ss_{j} = {stone};\n", sw - 1));
            pairs.push((format!("sq_{j}"), format!("ss_{j}")));
            j += 1;
        }
        let next = match &base {
            None => plane.clone(),
            Some(b) => format!("{b} + {}", shifted(plane, k)),
        };
        out.push_str(&format!("    wire [{}:0] sb_{k} = {next};\n", sw - 1));
        base = Some(format!("sb_{k}"));
    }
    (out, pairs)
}

/// The nodes of the count of `v[lo +: n]` named `name` (as [`popcount_tree`] names them) that
/// cover its bits below `end`, left to right.
fn cover(v: &str, lo: usize, n: usize, name: &str, end: usize, nodes: &mut Vec<String>) {
    if end <= lo {
        return;
    }
    if end >= lo + n {
        nodes.push(if n == 1 {
            format!("{v}[{lo}]")
        } else {
            name.to_string()
        });
        return;
    }
    let h = popcount_split(n);
    cover(v, lo, h, &format!("{name}l"), end, nodes);
    cover(v, lo + h, n - h, &format!("{name}h"), end, nodes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_covered_by_the_trees_own_nodes() {
        // 12 bits split 8 | 4, then 4 | 4 and 2 | 2 ...
        let mut nodes = Vec::new();
        cover("v", 0, 12, "f", 6, &mut nodes);
        assert_eq!(nodes, ["fll", "flhl"]);
        let mut nodes = Vec::new();
        cover("v", 0, 12, "f", 12, &mut nodes);
        assert_eq!(nodes, ["f"]);
        let mut nodes = Vec::new();
        cover("v", 12, 12, "f", 21, &mut nodes);
        assert_eq!(nodes, ["fl", "v[20]"]);
    }
}
