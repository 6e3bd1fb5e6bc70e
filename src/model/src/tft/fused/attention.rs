//! The interpretable attention of the decoder steps, fused: scores, softmax and the
//! weighted sum of the shared values for one query and head in registers, eight keys at a
//! time, without the `[windows, heads, queries, positions]` weights.

use super::{simd_available, LANES};

/// Widest attention head the fused attention takes (a multiple of 8).
const MAX_HEAD: usize = 32;

/// Whether [`attend`] runs here for heads this wide.
pub fn available(head: usize) -> bool {
    head > 0 && head.is_multiple_of(LANES) && head <= MAX_HEAD && simd_available()
}

/// Interpretable attention of the decoder steps (see `network::InterpretableAttention`),
/// for `windows` windows of `len` positions whose last `queries` are the decoder's:
/// query `i` sees positions `0 ..= len - queries + i`. `q`: `[windows][heads][queries][head]`;
/// `k_t`: the keys transposed, `[windows][heads][head][len]`; `v_t`: the values
/// transposed, `[windows][head][len]`, shared by the heads. `out`
/// (`[windows][queries][head]`) gets each query's attention output averaged over the
/// heads, with scores scaled by 1/√head. False (and `out` untouched) where it does not run
/// or the slices do not fit.
pub fn attend(shape: AttentionShape, q: &[f32], k_t: &[f32], v_t: &[f32], out: &mut [f32]) -> bool {
    let s = shape;
    let fits = s.heads > 0
        && s.queries <= s.len
        && q.len() == s.windows * s.heads * s.queries * s.head
        && k_t.len() == s.windows * s.heads * s.head * s.len
        && v_t.len() == s.windows * s.head * s.len
        && out.len() == s.windows * s.queries * s.head;
    if !fits || !available(s.head) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `available` checked that this CPU has AVX2 and FMA, and the
    // slices' lengths were checked against the shape above.
    unsafe {
        match shape.head / LANES {
            1 => avx2::attend::<1>(shape, q, k_t, v_t, out),
            2 => avx2::attend::<2>(shape, q, k_t, v_t, out),
            3 => avx2::attend::<3>(shape, q, k_t, v_t, out),
            _ => avx2::attend::<4>(shape, q, k_t, v_t, out),
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The sizes [`attend`] works on.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    pub windows: usize,
    pub heads: usize,
    pub queries: usize,
    pub len: usize,
    pub head: usize,
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::super::simd::{exp, splat, sum_lanes};
    use super::super::LANES;
    use super::{AttentionShape, MAX_HEAD};
    use std::arch::x86_64::*;

    /// The scores of `N` blocks of eight positions from `block` on, against one query
    /// (`query`: each of its 8·V values times the scale, in every lane) and one head's
    /// keys (`keys`: `[8·V][len]`, transposed); the blocks lie inside `len`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn score_blocks<const V: usize, const N: usize>(
        query: &[__m256; MAX_HEAD],
        keys: &[f32],
        len: usize,
        block: usize,
    ) -> [__m256; N] {
        let from = block * LANES;
        let mut s = [_mm256_setzero_ps(); N];
        for (c, qc) in query.iter().enumerate().take(V * LANES) {
            let row = &keys[c * len + from..c * len + from + N * LANES];
            for (n, s) in s.iter_mut().enumerate() {
                // SAFETY: `row` holds 8·N floats; this load reads eight from 8·n.
                let k = unsafe { _mm256_loadu_ps(row.as_ptr().add(n * LANES)) };
                *s = _mm256_fmadd_ps(*qc, k, *s);
            }
        }
        s
    }

    /// See [`super::attend`]; the caller checked the slices' lengths. Safe to call only
    /// where the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub fn attend<const V: usize>(
        shape: AttentionShape,
        q: &[f32],
        k_t: &[f32],
        v_t: &[f32],
        out: &mut [f32],
    ) {
        let AttentionShape {
            windows,
            heads,
            queries,
            len,
            head,
        } = shape;
        let blocks = len.div_ceil(LANES);
        debug_assert_eq!(head, V * LANES);
        let scale = 1.0 / (head as f32).sqrt();
        let zero = _mm256_setzero_ps();
        // Scores of one query and head, in blocks of eight positions; positions a query
        // may not see score -inf, and only its visible blocks are scored.
        let mut all_scores = vec![zero; blocks];
        let mut lanes = [0f32; LANES];
        for b in 0..windows {
            let values = &v_t[b * head * len..(b + 1) * head * len];
            for i in 0..queries {
                let visible = len - queries + i + 1;
                let scores = &mut all_scores[..visible.div_ceil(LANES)];
                let mut mixed = [0f32; MAX_HEAD];
                for h in 0..heads {
                    let query = &q[((b * heads + h) * queries + i) * head..][..head];
                    let keys = &k_t[(b * heads + h) * head * len..][..head * len];
                    let mut query_lanes = [zero; MAX_HEAD];
                    for (qc, c) in query_lanes.iter_mut().zip(query) {
                        *qc = splat(c * scale);
                    }
                    // Blocks wholly inside the window four at a time (four independent
                    // chains of FMAs), then one at a time, then the part-block at its end.
                    let whole = (len / LANES).min(scores.len());
                    let mut block = 0;
                    while block + 4 <= whole {
                        scores[block..block + 4].copy_from_slice(&score_blocks::<V, 4>(
                            &query_lanes,
                            keys,
                            len,
                            block,
                        ));
                        block += 4;
                    }
                    while block < whole {
                        scores[block] = score_blocks::<V, 1>(&query_lanes, keys, len, block)[0];
                        block += 1;
                    }
                    if block < scores.len() {
                        let from = block * LANES;
                        let mut s = zero;
                        for (c, qc) in query_lanes.iter().enumerate().take(head) {
                            let row = &keys[c * len..(c + 1) * len];
                            lanes = [0.0; LANES];
                            lanes[..len - from].copy_from_slice(&row[from..]);
                            // SAFETY: `lanes` holds the eight floats a load reads.
                            let k = unsafe { _mm256_loadu_ps(lanes.as_ptr()) };
                            s = _mm256_fmadd_ps(*qc, k, s);
                        }
                        scores[block] = s;
                    }
                    // Positions after the query's own score -inf (only in the last block).
                    let last = scores.len() - 1;
                    let from = last * LANES;
                    if from + LANES > visible {
                        for (lane, value) in lanes.iter_mut().enumerate() {
                            *value = if from + lane < visible {
                                0.0
                            } else {
                                f32::NEG_INFINITY
                            };
                        }
                        // SAFETY: `lanes` holds the eight floats a load reads.
                        let hidden = unsafe { _mm256_loadu_ps(lanes.as_ptr()) };
                        scores[last] = _mm256_add_ps(scores[last], hidden);
                    }
                    let mut top = splat(f32::NEG_INFINITY);
                    for score in scores.iter() {
                        top = _mm256_max_ps(top, *score);
                    }
                    // SAFETY: as above.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), top) };
                    let top = splat(lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max));
                    // Softmax and Σ_j p_j · v_j, a head's output, in one pass over the
                    // blocks: for each of the head's 8·V outputs, eight positions per FMA
                    // against its row of the transposed values (p is 0 past the visible
                    // positions); the sum of the p's divides at the end.
                    let mut total = zero;
                    let mut sums = [zero; MAX_HEAD];
                    for (block, score) in scores.iter().enumerate() {
                        let p = exp(_mm256_sub_ps(*score, top));
                        total = _mm256_add_ps(total, p);
                        let from = block * LANES;
                        if from + LANES <= len {
                            let at = values.as_ptr();
                            for (x, sum) in sums.iter_mut().enumerate().take(V * LANES) {
                                // SAFETY: `values` holds 8·V rows of `len` floats, x < 8·V
                                // and from + 8 ≤ len: the eight floats lie in row x.
                                let value = unsafe { _mm256_loadu_ps(at.add(x * len + from)) };
                                *sum = _mm256_fmadd_ps(p, value, *sum);
                            }
                        } else {
                            for (x, sum) in sums.iter_mut().enumerate().take(V * LANES) {
                                lanes = [0.0; LANES];
                                lanes[..len - from]
                                    .copy_from_slice(&values[x * len + from..][..len - from]);
                                // SAFETY: `lanes` holds the eight floats a load reads.
                                let value = unsafe { _mm256_loadu_ps(lanes.as_ptr()) };
                                *sum = _mm256_fmadd_ps(p, value, *sum);
                            }
                        }
                    }
                    let norm = 1.0 / sum_lanes(total);
                    for (m, sum) in mixed.iter_mut().zip(&sums) {
                        *m += norm * sum_lanes(*sum);
                    }
                }
                let target = &mut out[(b * queries + i) * head..][..head];
                for (t, m) in target.iter_mut().zip(&mixed) {
                    *t = m / heads as f32;
                }
            }
        }
    }
}
