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
/// `k_t`: the keys transposed, `[windows][heads][head][len]`; `v`: `[windows][len][head]`,
/// shared by the heads. `out` (`[windows][queries][head]`) gets each query's attention
/// output averaged over the heads, with scores scaled by 1/√head. False (and `out`
/// untouched) where it does not run or the slices do not fit.
pub fn attend(shape: AttentionShape, q: &[f32], k_t: &[f32], v: &[f32], out: &mut [f32]) -> bool {
    let s = shape;
    let fits = s.heads > 0
        && s.queries <= s.len
        && q.len() == s.windows * s.heads * s.queries * s.head
        && k_t.len() == s.windows * s.heads * s.head * s.len
        && v.len() == s.windows * s.len * s.head
        && out.len() == s.windows * s.queries * s.head;
    if !fits || !available(s.head) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `available` checked that this CPU has AVX2 and FMA, and the
    // slices' lengths were checked against the shape above.
    unsafe {
        avx2::attend(shape, q, k_t, v, out);
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
    use super::super::simd::{exp, splat};
    use super::super::LANES;
    use super::{AttentionShape, MAX_HEAD};
    use std::arch::x86_64::*;

    /// See [`super::attend`]; the caller checked the slices' lengths. Safe to call only
    /// where the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub fn attend(shape: AttentionShape, q: &[f32], k_t: &[f32], v: &[f32], out: &mut [f32]) {
        let AttentionShape {
            windows,
            heads,
            queries,
            len,
            head,
        } = shape;
        let blocks = len.div_ceil(LANES);
        let vectors = head / LANES;
        let scale = 1.0 / (head as f32).sqrt();
        let zero = _mm256_setzero_ps();
        // Scores of one query and head, in blocks of eight positions; positions a query
        // may not see score -inf, and only its visible blocks are scored.
        let mut all_scores = vec![zero; blocks];
        let mut lanes = [0f32; LANES];
        for b in 0..windows {
            let values = &v[b * len * head..(b + 1) * len * head];
            for i in 0..queries {
                let visible = len - queries + i + 1;
                let scores = &mut all_scores[..visible.div_ceil(LANES)];
                let mut mixed = [zero; MAX_HEAD / LANES];
                for h in 0..heads {
                    let query = &q[((b * heads + h) * queries + i) * head..][..head];
                    let keys = &k_t[(b * heads + h) * head * len..][..head * len];
                    let mut top = splat(f32::NEG_INFINITY);
                    for (block, score) in scores.iter_mut().enumerate() {
                        let from = block * LANES;
                        let mut s = zero;
                        for (c, qc) in query.iter().enumerate() {
                            let row = &keys[c * len..(c + 1) * len];
                            let k = if from + LANES <= len {
                                // SAFETY: eight floats from `from` lie inside `row`.
                                unsafe { _mm256_loadu_ps(row[from..].as_ptr()) }
                            } else {
                                lanes = [0.0; LANES];
                                lanes[..len - from].copy_from_slice(&row[from..]);
                                // SAFETY: `lanes` holds the eight floats a load reads.
                                unsafe { _mm256_loadu_ps(lanes.as_ptr()) }
                            };
                            s = _mm256_fmadd_ps(splat(qc * scale), k, s);
                        }
                        if from + LANES > visible {
                            for (lane, value) in lanes.iter_mut().enumerate() {
                                *value = if from + lane < visible {
                                    0.0
                                } else {
                                    f32::NEG_INFINITY
                                };
                            }
                            // SAFETY: as above.
                            s = _mm256_add_ps(s, unsafe { _mm256_loadu_ps(lanes.as_ptr()) });
                        }
                        *score = s;
                        top = _mm256_max_ps(top, s);
                    }
                    // SAFETY: as above.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), top) };
                    let top = splat(lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max));
                    let mut total = zero;
                    for score in scores.iter_mut() {
                        *score = exp(_mm256_sub_ps(*score, top));
                        total = _mm256_add_ps(total, *score);
                    }
                    // SAFETY: as above.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
                    let norm = 1.0 / lanes.iter().sum::<f32>();
                    // Σ_j p_j · v_j, a head's output, added to the mix.
                    let mut acc = [zero; MAX_HEAD / LANES];
                    for (block, score) in scores.iter().enumerate() {
                        let from = block * LANES;
                        // SAFETY: as above.
                        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *score) };
                        for (lane, p) in lanes.iter().enumerate().take(visible - from) {
                            let row = &values[(from + lane) * head..][..head];
                            for (x, acc) in acc.iter_mut().enumerate().take(vectors) {
                                // SAFETY: `row` holds `head` = 8 · `vectors` floats.
                                let value = unsafe { _mm256_loadu_ps(row[x * LANES..].as_ptr()) };
                                *acc = _mm256_fmadd_ps(splat(*p), value, *acc);
                            }
                        }
                    }
                    for (m, acc) in mixed.iter_mut().zip(&acc).take(vectors) {
                        *m = _mm256_fmadd_ps(splat(norm), *acc, *m);
                    }
                }
                let target = &mut out[(b * queries + i) * head..][..head];
                for (x, m) in mixed.iter().enumerate().take(vectors) {
                    let averaged = _mm256_mul_ps(*m, splat(1.0 / heads as f32));
                    // SAFETY: `target` holds `head` = 8 · `vectors` floats.
                    unsafe { _mm256_storeu_ps(target[x * LANES..].as_mut_ptr(), averaged) };
                }
            }
        }
    }
}
