//! A variable selection network's per-variable GRNs and their mix, fused.
//!
//! Every variable has its own small GRN of one scalar (folded: `first = x·u + u0`, ELU,
//! one product to `2d`, GLU, plus the skip `x·σ + τ`, layer norm), whose output is
//! weighted by the variable's selection weight and summed. As tensor operations that is
//! eight passes over `[rows, ≤ 2d]` tensors per variable (the encoder's `rows` is windows ×
//! 288 steps); here eight rows share a register at every step.

use super::simd_available;

/// One selection network's per-variable weights, folded (see `network::Selection`), as
/// row-major `f32` slices.
pub struct VariableGrns<'a> {
    /// Variables, embedding width `e`, output width `d`.
    pub vars: usize,
    pub e: usize,
    pub d: usize,
    /// `[V][e]`: the first layer of a variable's GRN, `x·u + u0`.
    pub u: &'a [f32],
    pub u0: &'a [f32],
    /// `[V][2d][e]` and `[V][2d]`: fc2 and the gate as one product (no dropout in forecasts).
    pub w: &'a [f32],
    pub bias: &'a [f32],
    /// `[V][d]`: the skip, `x·sigma + tau`.
    pub sigma: &'a [f32],
    pub tau: &'a [f32],
    /// `[V][d]`: the layer norm's scale and shift, and its epsilon.
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

/// Widest embedding and output the fused pass keeps in registers and on the stack.
const MAX_E: usize = 16;
const MAX_D: usize = 64;

/// Whether [`mix`] runs here for these widths.
pub fn available(e: usize, d: usize) -> bool {
    e <= MAX_E && d <= MAX_D && simd_available()
}

/// `out[r] = Σ_v selection[r][v] · GRN_v(x[r][v])` for every row `r` of `x` (`[rows][V]`,
/// like `selection`); `out` is `[rows][d]`. False (and `out` untouched) where the fused
/// pass does not run ([`available`]) or the slices do not fit the shape.
pub fn mix(grns: &VariableGrns, x: &[f32], selection: &[f32], out: &mut [f32]) -> bool {
    let (v, e, d) = (grns.vars, grns.e, grns.d);
    let rows = x.len().checked_div(v).unwrap_or(0);
    let fits = v > 0
        && x.len() == rows * v
        && selection.len() == x.len()
        && out.len() == rows * d
        && grns.u.len() == v * e
        && grns.u0.len() == v * e
        && grns.w.len() == v * 2 * d * e
        && grns.bias.len() == v * 2 * d
        && [grns.sigma, grns.tau, grns.gamma, grns.beta]
            .iter()
            .all(|s| s.len() == v * d);
    if !fits || !available(e, d) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `available` checked that this CPU has AVX2 and FMA, and the slices' lengths
    // were checked against the shape above; the kernel indexes them with bounds checks.
    unsafe {
        avx2::mix(grns, x, selection, out);
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::super::simd::{exp, splat};
    use super::super::LANES;
    use super::{VariableGrns, MAX_D, MAX_E};
    use std::arch::x86_64::*;

    /// Row groups per block: a block's mixed outputs (`GROUPS × d` registers' worth) stay
    /// in the first-level cache while every variable passes over them, and one variable's
    /// weights stay there while it does.
    const GROUPS: usize = 8;

    /// See [`super::mix`]; the caller checked the slices' lengths. Safe to call only where
    /// the CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub fn mix(k: &VariableGrns, x: &[f32], selection: &[f32], out: &mut [f32]) {
        let (v, e, d) = (k.vars, k.e, k.d);
        let rows = x.len() / v;
        let zero = _mm256_setzero_ps();
        let one = splat(1.0);
        let inv_d = splat(1.0 / d as f32);
        let mut mixed = vec![zero; GROUPS * d];
        let mut h = [zero; MAX_E];
        let mut z = [zero; 2 * MAX_D];
        for start in (0..rows).step_by(GROUPS * LANES) {
            let end = (start + GROUPS * LANES).min(rows);
            let groups = (end - start).div_ceil(LANES);
            mixed.iter_mut().for_each(|m| *m = zero);
            for i in 0..v {
                let u = &k.u[i * e..(i + 1) * e];
                let u0 = &k.u0[i * e..(i + 1) * e];
                let w = &k.w[i * 2 * d * e..(i + 1) * 2 * d * e];
                let bias = &k.bias[i * 2 * d..(i + 1) * 2 * d];
                let sigma = &k.sigma[i * d..(i + 1) * d];
                let tau = &k.tau[i * d..(i + 1) * d];
                let gamma = &k.gamma[i * d..(i + 1) * d];
                let beta = &k.beta[i * d..(i + 1) * d];
                for group in 0..groups {
                    let first_row = start + group * LANES;
                    let (mut xs, mut weights) = ([0f32; LANES], [0f32; LANES]);
                    for lane in 0..LANES.min(end - first_row) {
                        xs[lane] = x[(first_row + lane) * v + i];
                        weights[lane] = selection[(first_row + lane) * v + i];
                    }
                    // SAFETY: both arrays hold LANES = 8 floats, what one load reads.
                    let (xi, weight) = unsafe {
                        (
                            _mm256_loadu_ps(xs.as_ptr()),
                            _mm256_loadu_ps(weights.as_ptr()),
                        )
                    };
                    // The first layer and its ELU.
                    for j in 0..e {
                        let a = _mm256_fmadd_ps(xi, splat(u[j]), splat(u0[j]));
                        let below = _mm256_sub_ps(exp(a), one);
                        let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(a, zero);
                        h[j] = _mm256_blendv_ps(below, a, positive);
                    }
                    // fc2 and the gate: eight outputs at a time, eight independent chains of
                    // FMAs (each waits on its own previous result).
                    let mut c = 0;
                    while c + 8 <= 2 * d {
                        let rows = &w[c * e..(c + 8) * e];
                        let mut s = [zero; 8];
                        for (q, s) in s.iter_mut().enumerate() {
                            *s = splat(bias[c + q]);
                        }
                        for (j, hj) in h.iter().enumerate().take(e) {
                            s[0] = _mm256_fmadd_ps(*hj, splat(rows[j]), s[0]);
                            s[1] = _mm256_fmadd_ps(*hj, splat(rows[e + j]), s[1]);
                            s[2] = _mm256_fmadd_ps(*hj, splat(rows[2 * e + j]), s[2]);
                            s[3] = _mm256_fmadd_ps(*hj, splat(rows[3 * e + j]), s[3]);
                            s[4] = _mm256_fmadd_ps(*hj, splat(rows[4 * e + j]), s[4]);
                            s[5] = _mm256_fmadd_ps(*hj, splat(rows[5 * e + j]), s[5]);
                            s[6] = _mm256_fmadd_ps(*hj, splat(rows[6 * e + j]), s[6]);
                            s[7] = _mm256_fmadd_ps(*hj, splat(rows[7 * e + j]), s[7]);
                        }
                        z[c..c + 8].copy_from_slice(&s);
                        c += 8;
                    }
                    for (c, zc) in z.iter_mut().enumerate().take(2 * d).skip(c) {
                        let mut s = splat(bias[c]);
                        for (j, hj) in h.iter().enumerate().take(e) {
                            s = _mm256_fmadd_ps(*hj, splat(w[c * e + j]), s);
                        }
                        *zc = s;
                    }
                    // GLU, the skip, and the layer norm's mean and variance.
                    let mut mean = zero;
                    for j in 0..d {
                        let gate = _mm256_div_ps(
                            one,
                            _mm256_add_ps(one, exp(_mm256_sub_ps(zero, z[d + j]))),
                        );
                        let skip = _mm256_fmadd_ps(xi, splat(sigma[j]), splat(tau[j]));
                        z[j] = _mm256_fmadd_ps(z[j], gate, skip);
                        mean = _mm256_add_ps(mean, z[j]);
                    }
                    mean = _mm256_mul_ps(mean, inv_d);
                    let mut var = zero;
                    for zj in &z[..d] {
                        let centred = _mm256_sub_ps(*zj, mean);
                        var = _mm256_fmadd_ps(centred, centred, var);
                    }
                    let inv_std = _mm256_div_ps(
                        one,
                        _mm256_sqrt_ps(_mm256_fmadd_ps(var, inv_d, splat(k.eps))),
                    );
                    let acc = &mut mixed[group * d..(group + 1) * d];
                    for j in 0..d {
                        let norm = _mm256_mul_ps(_mm256_sub_ps(z[j], mean), inv_std);
                        let grn = _mm256_fmadd_ps(splat(gamma[j]), norm, splat(beta[j]));
                        acc[j] = _mm256_fmadd_ps(weight, grn, acc[j]);
                    }
                }
            }
            let mut lanes = [0f32; LANES];
            for group in 0..groups {
                let first_row = start + group * LANES;
                for j in 0..d {
                    // SAFETY: `lanes` holds LANES = 8 floats, what one store writes.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mixed[group * d + j]) };
                    for (lane, value) in lanes.iter().enumerate().take(end - first_row) {
                        out[(first_row + lane) * d + j] = *value;
                    }
                }
            }
        }
    }
}
