//! The tail every GRN and gate-add-norm shares, fused for dense rows: (ELU,) one product
//! to `2·out`, GLU, the skip added, layer norm. As tensor operations that is five passes
//! over `[rows, ≤ 2·out]` tensors (the post-LSTM gate's and the enrichment's `rows` are
//! windows × 384 positions, each 32 wide); here one row at a time stays in registers from
//! its input to its normalised output.

use super::{simd_available, LANES};

/// One gate's weights as row-major `f32` slices.
pub struct GateWeights<'a> {
    /// Input width `k` and output width `out` (the product is `[2·out, k]`).
    pub input: usize,
    pub output: usize,
    /// Whether the input goes through an ELU first (a GRN's hidden layer; a gate-add-norm
    /// reads its input as it is).
    pub elu: bool,
    /// `[k][2·out]`: the product's weights, transposed; `[2·out]`: its bias. The first
    /// `out` outputs are the values, the last `out` the gates (GLU's halves).
    pub weights_t: &'a [f32],
    pub bias: &'a [f32],
    /// `[out]`: the layer norm's scale and shift, and its epsilon.
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

/// Widest input the pass takes, and widest output (in registers: ⌈out / 8⌉ of each half).
const MAX_INPUT: usize = 64;
const MAX_OUTPUT: usize = 64;

/// Whether [`gate_add_norm`] runs here for these widths: the input a multiple of 8, both
/// at most 64.
pub fn available(input: usize, output: usize) -> bool {
    input > 0
        && output > 0
        && input.is_multiple_of(LANES)
        && input <= MAX_INPUT
        && output <= MAX_OUTPUT
        && simd_available()
}

/// For every row `r` of `x` (`[rows][k]`) and `residual` (`[rows][out]`):
/// `out[r] = LayerNorm(GLU(W·f(x[r]) + b) + residual[r])`, f the ELU or the identity.
/// False (and `out` untouched) where the pass does not run ([`available`]) or the slices
/// do not fit the widths.
pub fn gate_add_norm(g: &GateWeights, x: &[f32], residual: &[f32], out: &mut [f32]) -> bool {
    let (k, o) = (g.input, g.output);
    if !available(k, o) {
        return false;
    }
    let rows = x.len() / k;
    let fits = x.len() == rows * k
        && residual.len() == rows * o
        && out.len() == rows * o
        && g.weights_t.len() == k * 2 * o
        && g.bias.len() == 2 * o
        && g.gamma.len() == o
        && g.beta.len() == o;
    if !fits {
        return false;
    }
    let padded = Padded::new(g);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `available` checked that this CPU has AVX2 and FMA and that the widths fit
    // the kernel's arrays; the slices' lengths were checked above.
    unsafe {
        match o.div_ceil(LANES) {
            1 => avx2::rows::<1>(&padded, x, residual, out),
            2 => avx2::rows::<2>(&padded, x, residual, out),
            3 => avx2::rows::<3>(&padded, x, residual, out),
            4 => avx2::rows::<4>(&padded, x, residual, out),
            5 => avx2::rows::<5>(&padded, x, residual, out),
            6 => avx2::rows::<6>(&padded, x, residual, out),
            7 => avx2::rows::<7>(&padded, x, residual, out),
            _ => avx2::rows::<8>(&padded, x, residual, out),
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The weights with each half of the product, the bias and the norm's parameters padded
/// with zeros to whole registers (`width`, the output rounded up to a multiple of 8): the
/// padding's values come out 0 and are neither counted in the norm nor written.
struct Padded {
    input: usize,
    output: usize,
    width: usize,
    elu: bool,
    weights_t: Vec<f32>,
    bias: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Padded {
    fn new(g: &GateWeights) -> Padded {
        let (o, width) = (g.output, g.output.next_multiple_of(LANES));
        let halves = |row: &[f32]| {
            let mut padded = vec![0f32; 2 * width];
            padded[..o].copy_from_slice(&row[..o]);
            padded[width..width + o].copy_from_slice(&row[o..]);
            padded
        };
        let pad = |v: &[f32]| {
            let mut padded = v.to_vec();
            padded.resize(width, 0.0);
            padded
        };
        Padded {
            input: g.input,
            output: o,
            width,
            elu: g.elu,
            weights_t: g.weights_t.chunks_exact(2 * o).flat_map(halves).collect(),
            bias: halves(g.bias),
            gamma: pad(g.gamma),
            beta: pad(g.beta),
            eps: g.eps,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::super::simd::{exp, splat, sum_lanes};
    use super::super::LANES;
    use super::{Padded, MAX_INPUT};
    use std::arch::x86_64::*;

    /// Eight floats from `s` at `at` (bounds-checked).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load(s: &[f32], at: usize) -> __m256 {
        let lanes = &s[at..at + LANES];
        // SAFETY: `lanes` holds the eight floats one load reads.
        unsafe { _mm256_loadu_ps(lanes.as_ptr()) }
    }

    /// `len` (< 8) floats of `s` from `at` into a register, the rest of it 0.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load_part(s: &[f32], at: usize, len: usize) -> __m256 {
        let mut lanes = [0f32; LANES];
        lanes[..len].copy_from_slice(&s[at..at + len]);
        load(&lanes, 0)
    }

    /// See [`super::gate_add_norm`], for outputs `G` registers wide (the padded `width`
    /// is 8·G; the last register holds `output - 8·(G - 1)` of the row's outputs); the
    /// caller checked the widths and the slices' lengths. Safe to call only where the CPU
    /// has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub fn rows<const G: usize>(g: &Padded, x: &[f32], residual: &[f32], out: &mut [f32]) {
        let (k, o, width) = (g.input, g.output, g.width);
        debug_assert_eq!(width, G * LANES);
        let last = o - (G - 1) * LANES;
        // All ones in the last register's lanes that hold outputs.
        let mut lanes = [0i32; LANES];
        lanes[..last].iter_mut().for_each(|l| *l = -1);
        // SAFETY: `lanes` holds the eight integers one load reads.
        let in_last = unsafe { _mm256_castsi256_ps(_mm256_loadu_si256(lanes.as_ptr().cast())) };
        let zero = _mm256_setzero_ps();
        let one = splat(1.0);
        let inv_o = 1.0 / o as f32;
        let mut h = [0f32; MAX_INPUT];
        for (r, row) in x.chunks_exact(k).enumerate() {
            // The input, through the ELU where the gate has one.
            for c in (0..k).step_by(LANES) {
                let a = load(row, c);
                let a = if g.elu {
                    let below = _mm256_sub_ps(exp(a), one);
                    _mm256_blendv_ps(below, a, _mm256_cmp_ps::<_CMP_GT_OQ>(a, zero))
                } else {
                    a
                };
                // SAFETY: `h[c..c + 8]` lies within `h` (c + 8 ≤ k ≤ MAX_INPUT).
                unsafe { _mm256_storeu_ps(h[c..c + LANES].as_mut_ptr(), a) };
            }
            // The product: 2·G independent chains of FMAs, values then gates.
            let mut value = [zero; G];
            let mut gate = [zero; G];
            for q in 0..G {
                value[q] = load(&g.bias, q * LANES);
                gate[q] = load(&g.bias, width + q * LANES);
            }
            for (hj, w) in h.iter().zip(g.weights_t.chunks_exact(2 * width)) {
                let hj = splat(*hj);
                let w = w.as_ptr();
                for q in 0..G {
                    // SAFETY: `w` points at 2·width = 16·G floats; these loads read floats
                    // 8q..8q + 8 and width + 8q..width + 8q + 8 of them (q < G).
                    let (wv, wg) = unsafe {
                        (
                            _mm256_loadu_ps(w.add(q * LANES)),
                            _mm256_loadu_ps(w.add(width + q * LANES)),
                        )
                    };
                    value[q] = _mm256_fmadd_ps(hj, wv, value[q]);
                    gate[q] = _mm256_fmadd_ps(hj, wg, gate[q]);
                }
            }
            // GLU, the skip, and the layer norm (the padding's lanes: value 0 · gate, no
            // skip, so 0, and masked out of the variance).
            let skip = r * o;
            let mut sum = zero;
            for q in 0..G {
                let sigmoid =
                    _mm256_div_ps(one, _mm256_add_ps(one, exp(_mm256_sub_ps(zero, gate[q]))));
                let at = skip + q * LANES;
                let residual = if q + 1 < G || last == LANES {
                    load(residual, at)
                } else {
                    load_part(residual, at, last)
                };
                value[q] = _mm256_fmadd_ps(value[q], sigmoid, residual);
                sum = _mm256_add_ps(sum, value[q]);
            }
            let mean = splat(sum_lanes(sum) * inv_o);
            let mut squares = zero;
            for (q, v) in value.iter_mut().enumerate() {
                *v = _mm256_sub_ps(*v, mean);
                if q + 1 == G {
                    *v = _mm256_and_ps(*v, in_last);
                }
                squares = _mm256_fmadd_ps(*v, *v, squares);
            }
            let inv_std = splat(1.0 / (sum_lanes(squares) * inv_o + g.eps).sqrt());
            for (q, v) in value.iter().enumerate() {
                let norm = _mm256_mul_ps(*v, inv_std);
                let y = _mm256_fmadd_ps(load(&g.gamma, q * LANES), norm, load(&g.beta, q * LANES));
                let at = skip + q * LANES;
                let mut lanes = [0f32; LANES];
                let full = q + 1 < G || last == LANES;
                let dst = if full {
                    &mut out[at..at + LANES]
                } else {
                    &mut lanes[..]
                };
                // SAFETY: `dst` holds the eight floats one store writes.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), y) };
                if !full {
                    out[at..at + last].copy_from_slice(&lanes[..last]);
                }
            }
        }
    }
}
