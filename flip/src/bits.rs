//! Packed bit storage shared by the reference, the trainers and the model file.
//!
//! A bit set to 1 stands for +1 and a bit set to 0 for -1. Rows are padded to whole `u64`
//! words and the padding is always zero, so XOR-based counts never see it.

/// Number of bits in one storage word.
pub const WORD_BITS: usize = 64;

/// Words needed to hold `bits` bits.
pub fn words_for(bits: usize) -> usize {
    bits.div_ceil(WORD_BITS)
}

/// Number of positions among the first `n` bits where `a` and `w` agree, i.e.
/// `popcount(xnor(a, w))` restricted to real bits. Counting disagreements with XOR keeps the
/// zero padding out of the result without a mask.
#[inline]
pub fn agreements(a: &[u64], w: &[u64], n: usize) -> u32 {
    let mut diff = 0u32;
    for (x, y) in a.iter().zip(w) {
        diff += (x ^ y).count_ones();
    }
    n as u32 - diff
}

/// A row-major matrix of bits; row `r` holds the weights of neuron `r`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BitMatrix {
    rows: usize,
    cols: usize,
    words_per_row: usize,
    data: Vec<u64>,
}

impl BitMatrix {
    /// An all-zero (all -1) matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        let words_per_row = words_for(cols);
        BitMatrix {
            rows,
            cols,
            words_per_row,
            data: vec![0; rows * words_per_row],
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of real bits per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Storage words per row.
    pub fn words_per_row(&self) -> usize {
        self.words_per_row
    }

    /// All rows' words back to back, `words_per_row` each.
    pub fn words(&self) -> &[u64] {
        &self.data
    }

    /// The packed words of row `r`.
    #[inline]
    pub fn row(&self, r: usize) -> &[u64] {
        &self.data[r * self.words_per_row..(r + 1) * self.words_per_row]
    }

    /// The packed words of row `r`, mutable. Callers must keep padding bits zero.
    #[inline]
    pub fn row_mut(&mut self, r: usize) -> &mut [u64] {
        &mut self.data[r * self.words_per_row..(r + 1) * self.words_per_row]
    }

    /// All rows, mutable, for splitting across threads.
    pub fn rows_mut(&mut self) -> std::slice::ChunksExactMut<'_, u64> {
        self.data.chunks_exact_mut(self.words_per_row.max(1))
    }

    /// Bit at (`r`, `c`).
    #[inline]
    pub fn get(&self, r: usize, c: usize) -> bool {
        get_bit(self.row(r), c)
    }

    /// Sets bit (`r`, `c`).
    #[inline]
    pub fn set(&mut self, r: usize, c: usize, v: bool) {
        set_bit(self.row_mut(r), c, v)
    }

    /// Replaces row `r` from a word slice; bits past `cols` are cleared.
    pub fn set_row(&mut self, r: usize, words: &[u64]) {
        let cols = self.cols;
        let row = self.row_mut(r);
        row.copy_from_slice(words);
        clear_padding(row, cols);
    }
}

/// Bit `i` of a packed slice.
#[inline]
pub fn get_bit(words: &[u64], i: usize) -> bool {
    (words[i / WORD_BITS] >> (i % WORD_BITS)) & 1 == 1
}

/// Sets bit `i` of a packed slice.
#[inline]
pub fn set_bit(words: &mut [u64], i: usize, v: bool) {
    let m = 1u64 << (i % WORD_BITS);
    if v {
        words[i / WORD_BITS] |= m;
    } else {
        words[i / WORD_BITS] &= !m;
    }
}

/// Clears the bits at positions `bits..` of a packed slice.
pub fn clear_padding(words: &mut [u64], bits: usize) {
    let full = bits / WORD_BITS;
    let rem = bits % WORD_BITS;
    if rem != 0 {
        words[full] &= (1u64 << rem) - 1;
    }
    let start = full + usize::from(rem != 0);
    for w in words.iter_mut().skip(start) {
        *w = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::train::rng::splitmix as next;

    #[test]
    fn xnor_popcount_matches_signed_dot_product() {
        let mut s = 7u64;
        for n in [1usize, 3, 63, 64, 65, 127, 129, 191, 784, 1001] {
            for _ in 0..20 {
                let a: Vec<i32> = (0..n)
                    .map(|_| if next(&mut s) & 1 == 1 { 1 } else { -1 })
                    .collect();
                let w: Vec<i32> = (0..n)
                    .map(|_| if next(&mut s) & 1 == 1 { 1 } else { -1 })
                    .collect();
                let naive: i32 = a.iter().zip(&w).map(|(x, y)| x * y).sum();
                let mut pa = vec![0u64; words_for(n)];
                let mut pw = vec![0u64; words_for(n)];
                for i in 0..n {
                    set_bit(&mut pa, i, a[i] == 1);
                    set_bit(&mut pw, i, w[i] == 1);
                }
                let p = agreements(&pa, &pw, n) as i32;
                assert_eq!(2 * p - n as i32, naive, "n = {n}");
            }
        }
    }

    #[test]
    fn set_row_clears_padding() {
        let mut m = BitMatrix::zeros(2, 70);
        m.set_row(1, &[u64::MAX, u64::MAX]);
        assert_eq!(m.row(1)[1], (1 << 6) - 1);
        assert!(m.get(1, 69));
        assert!(!m.get(0, 69));
    }
}
