//! The arithmetic of an MVTU's cycle model: a whole frame's XNOR-popcounts and thresholds (or
//! scores) at once, on packed words.
//!
//! The result of a frame depends on nothing but its input vector (the weights are constants),
//! so the cycle model evaluates it in one go when the frame's last step issues. A neuron's
//! count is the same whatever order its synapses are summed in, so the weights are not kept in
//! the Verilog's folded order (ROM word by ROM word, a lane per PE) but by columns: word `k` of
//! every neuron's weight vector side by side. One input word is then XORed against all the
//! neurons at once, a loop the compiler turns into vector popcounts whatever the folding (a
//! single PE, a SIMD that is not a multiple of 64). Feature maps
//! repeat windows (an image's plain background gives the same window at every position, and
//! the layers after it the same again), so recent input vectors and their results are kept in
//! a small memo, compared word for word before a result is reused.

use flip::bits::words_for;

use super::Beat;

/// Entries of the memo (a power of two): on Fashion-MNIST's first conv layers 1,024 catch
/// nearly all the repeats 4,096 do.
const MEMO: usize = 1024;

/// Lookups after which a memo that hits less than one time in [`MEMO_MIN_RATE`] is switched
/// off: a miss costs a hash, a compare and a copy into an entry that deep layers (whose
/// windows rarely repeat) never read again, and the cold entries push the other layers' data
/// out of the cache.
const MEMO_PROBE: u64 = 2048;
const MEMO_MIN_RATE: u64 = 8;

/// Largest table of lane counts (bytes) a narrow layer gets: it must sit in the L1 cache
/// beside the rest, else a table row costs more than the popcounts it replaces.
const TABLE_BYTES: usize = 32 * 1024;

/// One layer's weights, thresholds or scores, and scratch space.
pub(super) struct Datapath {
    pub pe: usize,
    pub simd: usize,
    pub nf_n: usize,
    pub sf_n: usize,
    pub p_n: usize,
    /// Words of one plane of the input vector.
    pub plane_words: usize,
    pub threshold: Vec<u32>,
    pub invert: Vec<bool>,
    pub bias: Vec<i32>,
    /// Per-class score multipliers (empty: 1).
    pub scale: Vec<u32>,
    /// Inputs per plane.
    inputs: usize,
    /// The weights by columns: `[k][n]` is word `k` of neuron `n`'s weight vector (packed as
    /// a plane of the input); bits past `inputs` are clear.
    cols: Vec<u64>,
    /// Scratch: per-neuron accumulators, then XNOR counts.
    acc: Vec<u64>,
    /// For a layer of one step per plane whose SIMD takes a few bits: per ROM word and chunk
    /// value, each lane's XNOR-popcount (`simd - popcount(lane ^ x)`), `[addr][x][lane]`;
    /// empty otherwise. One row replaces `pe` popcounts, as the first layer of a conv net
    /// (SIMD 9) needs per plane.
    table: Vec<u8>,
    memo: Memo,
}

/// Recent input vectors and their results, direct-mapped by a hash of the input.
struct Memo {
    /// Entries (a power of two).
    entries: usize,
    in_words: usize,
    out_words: usize,
    /// Per entry: the input's hash, `None` while empty.
    tags: Vec<Option<u64>>,
    inputs: Vec<u64>,
    bits: Vec<u64>,
    scores: Vec<i64>,
    /// Lookups and hits so far, and whether the memo is still consulted.
    lookups: u64,
    hits: u64,
    on: bool,
}

fn hash(words: &[u64]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64;
    for &w in words {
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    h.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

impl Memo {
    fn slot(&self, h: u64) -> usize {
        (h >> 32) as usize & (self.entries - 1)
    }

    /// Copies the result of `input` (hash `h`) into `r` if the memo holds it.
    fn get(&self, h: u64, input: &[u64], r: &mut Beat) -> bool {
        let e = self.slot(h);
        if self.tags[e] != Some(h) || &self.inputs[e * self.in_words..][..self.in_words] != input {
            return false;
        }
        match r {
            Beat::Bits(r) => r.copy_from_slice(&self.bits[e * self.out_words..][..self.out_words]),
            Beat::Scores(r) => {
                r.copy_from_slice(&self.scores[e * self.out_words..][..self.out_words])
            }
            _ => unreachable!("an MVTU result is bits or scores"),
        }
        true
    }

    fn put(&mut self, h: u64, input: &[u64], r: &Beat) {
        let e = self.slot(h);
        self.tags[e] = Some(h);
        self.inputs[e * self.in_words..][..self.in_words].copy_from_slice(input);
        match r {
            Beat::Bits(r) => self.bits[e * self.out_words..][..self.out_words].copy_from_slice(r),
            Beat::Scores(r) => {
                self.scores[e * self.out_words..][..self.out_words].copy_from_slice(r)
            }
            _ => unreachable!("an MVTU result is bits or scores"),
        }
    }
}

impl Datapath {
    /// A datapath of the given shape; `outputs` neurons, `scores` for a layer that hands on
    /// scores rather than bits.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        (pe, simd, nf_n, sf_n, p_n): (usize, usize, usize, usize, usize),
        plane_words: usize,
        lanes: Vec<u64>,
        threshold: Vec<u32>,
        invert: Vec<bool>,
        bias: Vec<i32>,
        scale: Vec<u32>,
        scores: bool,
    ) -> Datapath {
        let outputs = pe * nf_n;
        let in_words = plane_words * p_n;
        let out_words = if scores { outputs } else { words_for(outputs) };
        let table = if sf_n == 1 {
            lane_table(&lanes, simd, pe, nf_n)
        } else {
            Vec::new()
        };
        let inputs = simd * sf_n;
        let cols = columns(&lanes, (pe, simd, nf_n, sf_n), plane_words);
        Datapath {
            pe,
            simd,
            nf_n,
            sf_n,
            p_n,
            plane_words,
            threshold,
            invert,
            bias,
            scale,
            inputs,
            cols,
            acc: vec![0; outputs],
            table,
            memo: Memo {
                entries: MEMO,
                in_words,
                out_words,
                tags: vec![None; MEMO],
                inputs: vec![0; MEMO * in_words],
                bits: if scores {
                    Vec::new()
                } else {
                    vec![0; MEMO * out_words]
                },
                scores: if scores {
                    vec![0; MEMO * out_words]
                } else {
                    Vec::new()
                },
                lookups: 0,
                hits: 0,
                on: true,
            },
        }
    }

    /// The result of the frame `input` (`p_n` planes of `plane_words` words) into `r`.
    pub fn evaluate(&mut self, input: &[u64], r: &mut Beat) {
        if !self.memo.on {
            self.compute(input, r);
            return;
        }
        let h = hash(input);
        self.memo.lookups += 1;
        if self.memo.get(h, input, r) {
            self.memo.hits += 1;
            return;
        }
        self.compute(input, r);
        self.memo.put(h, input, r);
        if self.memo.lookups == MEMO_PROBE && self.memo.hits * MEMO_MIN_RATE < MEMO_PROBE {
            self.memo.on = false;
        }
    }

    /// The frame's XNOR counts into `acc`, then its bits or scores into `r`.
    fn compute(&mut self, input: &[u64], r: &mut Beat) {
        if self.table.is_empty() {
            self.count_by_columns(input);
        } else {
            self.count_by_table(input);
        }
        match r {
            Beat::Bits(r) => {
                // 64 neurons' bits at a time, gathered in a register.
                for (c, (acc, w)) in self.acc.chunks(64).zip(r.iter_mut()).enumerate() {
                    let at = c * 64;
                    let (t, inv) = (&self.threshold[at..], &self.invert[at..]);
                    let mut bits = 0u64;
                    for (g, ((&a, &t), &inv)) in acc.iter().zip(t).zip(inv).enumerate() {
                        bits |= u64::from((a >= u64::from(t)) ^ inv) << g;
                    }
                    *w = bits;
                }
            }
            Beat::Scores(r) => {
                for (n, (r, &a)) in r.iter_mut().zip(&self.acc).enumerate() {
                    let m = self.scale.get(n).map_or(1, |&m| i64::from(m));
                    *r = a as i64 * m + i64::from(self.bias[n]);
                }
            }
            _ => unreachable!("an MVTU result is bits or scores"),
        }
    }

    /// Every neuron's count over the whole input vector, a word of it at a time against the
    /// word's column. The planes' differences are summed shifted by their place, so the count
    /// is `inputs * (2^planes - 1)` less that sum.
    fn count_by_columns(&mut self, input: &[u64]) {
        let (pw, outputs) = (self.plane_words, self.acc.len());
        let tail = self.inputs % 64;
        self.acc.fill(0);
        for plane in 0..self.p_n {
            let x = &input[plane * pw..][..pw];
            for (k, col) in self.cols.chunks_exact(outputs).enumerate() {
                // Nothing upstream promises the bits past the inputs are clear.
                let x = if k + 1 == pw && tail != 0 {
                    x[k] & ((1u64 << tail) - 1)
                } else {
                    x[k]
                };
                for (a, &w) in self.acc.iter_mut().zip(col) {
                    *a += u64::from((w ^ x).count_ones()) << plane;
                }
            }
        }
        let full = self.inputs as u64 * ((1u64 << self.p_n) - 1);
        for a in self.acc.iter_mut() {
            *a = full - *a;
        }
    }

    /// Every neuron's count from the table: one step per plane, the chunk's value picks a row.
    fn count_by_table(&mut self, input: &[u64]) {
        let simd = self.simd;
        let mask = u64::MAX >> (64 - simd);
        let rows = self.table.len() / self.nf_n;
        self.acc.fill(0);
        for nf in 0..self.nf_n {
            let acc = &mut self.acc[nf * self.pe..][..self.pe];
            for plane in 0..self.p_n {
                let x = (input[plane * self.plane_words] & mask) as usize;
                let at = nf * rows + x * self.pe;
                for (a, &c) in acc.iter_mut().zip(&self.table[at..][..self.pe]) {
                    *a += u64::from(c) << plane;
                }
            }
        }
    }
}

/// `lanes` (`[addr][lane][wps]`, ROM word `nf * sf_n + sf`, lane `g` of neuron `nf * pe + g`,
/// synapses `sf * simd ..`) rearranged by columns: `[k][n]` holds bits `64k..64k + 64` of
/// neuron `n`'s weight vector.
fn columns(
    lanes: &[u64],
    (pe, simd, nf_n, sf_n): (usize, usize, usize, usize),
    plane_words: usize,
) -> Vec<u64> {
    let (wps, outputs) = (words_for(simd), pe * nf_n);
    let mut cols = vec![0u64; plane_words * outputs];
    for nf in 0..nf_n {
        for sf in 0..sf_n {
            for g in 0..pe {
                let lane = &lanes[((nf * sf_n + sf) * pe + g) * wps..][..wps];
                let n = nf * pe + g;
                for (i, &w) in lane.iter().enumerate() {
                    let mut w = w;
                    while w != 0 {
                        let j = sf * simd + i * 64 + w.trailing_zeros() as usize;
                        cols[(j / 64) * outputs + n] |= 1u64 << (j % 64);
                        w &= w - 1;
                    }
                }
            }
        }
    }
    cols
}

/// The lane counts of a layer whose SIMD is narrow enough for [`Datapath::table`] to fit
/// [`TABLE_BYTES`] (empty otherwise): `lanes` holds `addrs` ROM words of `pe` one-word lanes.
fn lane_table(lanes: &[u64], simd: usize, pe: usize, addrs: usize) -> Vec<u8> {
    if simd > 16 || (addrs * pe) << simd > TABLE_BYTES {
        return Vec::new();
    }
    let values = 1usize << simd;
    let mut t = Vec::with_capacity(addrs * values * pe);
    for a in 0..addrs {
        let word = &lanes[a * pe..][..pe];
        for x in 0..values as u64 {
            t.extend(
                word.iter()
                    .map(|&l| (simd as u32 - (l ^ x).count_ones()) as u8),
            );
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use flip::bits::set_bit;
    use flip::train::rng::splitmix;

    fn bit(words: &[u64], i: usize) -> bool {
        words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Neuron by neuron, plane by plane, bit by bit: the layer's arithmetic with no words,
    /// no unrolling and no memo.
    // The neuron index picks from several arrays at once, as in the Verilog.
    #[allow(clippy::needless_range_loop)]
    fn straightforward(d: &Datapath, lanes: &[u64], input: &[u64], scores: bool) -> Beat {
        let wps = words_for(d.simd);
        let inputs = d.simd * d.sf_n;
        let outputs = d.pe * d.nf_n;
        let mut bits = vec![0u64; words_for(outputs)];
        let mut out = vec![0i64; outputs];
        for n in 0..outputs {
            let (nf, g) = (n / d.pe, n % d.pe);
            let mut acc = 0u64;
            for plane in 0..d.p_n {
                for j in 0..inputs {
                    let (sf, k) = (j / d.simd, j % d.simd);
                    let lane = &lanes[((nf * d.sf_n + sf) * d.pe + g) * wps..][..wps];
                    let x = bit(&input[plane * d.plane_words..], j);
                    acc += u64::from(bit(lane, k) == x) << plane;
                }
            }
            if scores {
                let m = d.scale.get(n).map_or(1, |&m| i64::from(m));
                out[n] = acc as i64 * m + i64::from(d.bias[n]);
            } else {
                set_bit(
                    &mut bits,
                    n,
                    (acc >= u64::from(d.threshold[n])) ^ d.invert[n],
                );
            }
        }
        if scores {
            Beat::Scores(out)
        } else {
            Beat::Bits(bits)
        }
    }

    /// A layer fed more distinct inputs than the memo probes, then repeats: the memo turns
    /// itself off, and every result stays the straightforward one before and after.
    #[test]
    fn memo_switches_off_without_losing_results() {
        let mut r = 0x0FF;
        let mut rand = |n: u64| splitmix(&mut r) % n;
        // SIMD 9 in one step: the counts come from the table (and 200 bits: from popcounts).
        for (pe, simd, sf_n, p_n) in [(32, 9, 1, 4), (8, 200, 2, 1)] {
            let (wps, inputs) = (words_for(simd), simd * sf_n);
            let plane_words = words_for(inputs);
            let mut lanes = vec![0u64; sf_n * pe * wps];
            for l in lanes.chunks_mut(wps) {
                for k in 0..simd {
                    set_bit(l, k, rand(2) == 1);
                }
            }
            let most = (inputs as u64) << p_n;
            let mut d = Datapath::new(
                (pe, simd, 1, sf_n, p_n),
                plane_words,
                lanes.clone(),
                (0..pe).map(|_| rand(most) as u32).collect(),
                (0..pe).map(|_| rand(2) == 1).collect(),
                Vec::new(),
                Vec::new(),
                false,
            );
            assert_eq!(d.table.is_empty(), simd > 16, "pe {pe} simd {simd}");
            let mut got = Beat::Bits(vec![0; words_for(pe)]);
            let mut v = vec![0u64; plane_words * p_n];
            for f in 0..MEMO_PROBE + 300 {
                // Distinct inputs up to the probe, then a handful over and over; bits past
                // the layer's inputs set, as nothing upstream promises they are clear.
                let seed = if f < MEMO_PROBE { f } else { f % 3 };
                let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for w in v.iter_mut() {
                    *w = splitmix(&mut s);
                }
                d.evaluate(&v, &mut got);
                assert_eq!(
                    got,
                    straightforward(&d, &lanes, &v, false),
                    "pe {pe} simd {simd} frame {f}"
                );
            }
            assert!(!d.memo.on, "distinct inputs switch the memo off");
        }
    }

    /// Random layers of every lane width the unrolled loops take and beyond, fed inputs drawn
    /// from a small pool (so the memo is hit, and overwritten by colliding inputs): every
    /// result equals the straightforward one.
    #[test]
    fn fast_datapath_matches_straightforward_evaluation() {
        let mut r = 0x5EED;
        let mut rand = |n: u64| splitmix(&mut r) % n;
        for case in 0..300 {
            let simd = [1, 3, 9, 64, 65, 96, 130, 200, 288, 330, 600][case % 11];
            let (pe, nf_n, sf_n, p_n) = (
                1 + rand(70) as usize,
                1 + rand(3) as usize,
                1 + rand(3) as usize,
                1 + rand(4) as usize,
            );
            let scores = rand(4) == 0;
            let wps = words_for(simd);
            let outputs = pe * nf_n;
            let inputs = simd * sf_n;
            let plane_words = words_for(inputs);
            let mut lanes = vec![0u64; nf_n * sf_n * pe * wps];
            for l in lanes.chunks_mut(wps) {
                for k in 0..simd {
                    set_bit(l, k, rand(2) == 1);
                }
            }
            let most = (inputs as u64) << p_n;
            let threshold = (0..outputs).map(|_| rand(most + 2) as u32).collect();
            let invert = (0..outputs).map(|_| rand(2) == 1).collect();
            let bias = (0..outputs).map(|_| rand(200) as i32 - 100).collect();
            let scale = if rand(2) == 0 {
                Vec::new()
            } else {
                (0..outputs).map(|_| 1 + rand(5) as u32).collect()
            };
            let mut d = Datapath::new(
                (pe, simd, nf_n, sf_n, p_n),
                plane_words,
                lanes.clone(),
                threshold,
                invert,
                bias,
                scale,
                scores,
            );
            if case % 2 == 0 {
                // One entry: every other input collides with the one held.
                d.memo.entries = 1;
            }
            let pool: Vec<Vec<u64>> = (0..1 + rand(6))
                .map(|_| {
                    let mut v = vec![0u64; plane_words * p_n];
                    for p in 0..p_n {
                        for j in 0..inputs {
                            set_bit(&mut v[p * plane_words..], j, rand(3) == 0);
                        }
                    }
                    v
                })
                .collect();
            let mut got = if scores {
                Beat::Scores(vec![0; outputs])
            } else {
                Beat::Bits(vec![0; words_for(outputs)])
            };
            for f in 0..8 {
                let input = &pool[rand(pool.len() as u64) as usize];
                d.evaluate(input, &mut got);
                assert_eq!(
                    got,
                    straightforward(&d, &lanes, input, scores),
                    "case {case} frame {f}: pe {pe} simd {simd} nf {nf_n} sf {sf_n} planes {p_n}"
                );
            }
        }
    }
}
