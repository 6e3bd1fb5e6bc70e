//! Forecast passes fused by hand for the CPU (x86-64 with AVX2 and FMA): the parts of
//! a forecast that libtorch runs as many narrow tensor operations, each too small to come
//! near the CPU's peak. Here eight rows, keys or outputs share a register through every
//! step and only the result is written:
//!
//! - [`selection`]: a variable selection network's per-variable GRNs and their mix;
//! - [`attention`]: the interpretable attention of the decoder steps;
//! - [`gate`]: the tail of every GRN and gate-add-norm on dense rows (ELU, the product to
//!   the GLU's halves, GLU, the skip, layer norm).
//!
//! Forecasts only (training needs libtorch's gradients), and the same functions up to
//! rounding: the exponential is a polynomial (relative error under 2·10⁻⁷; libtorch's is
//! vectorised too). Unit tests in `network` compare each with libtorch's path; elsewhere
//! (another CPU, a GPU, other widths) the network runs libtorch's operations.
//! Measured in docs/benchmarks.md.

pub mod attention;
pub mod gate;
pub mod selection;

/// Floats per AVX register.
const LANES: usize = 8;

#[cfg(target_arch = "x86_64")]
fn simd_available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_available() -> bool {
    false
}

/// What both passes compute with.
#[cfg(target_arch = "x86_64")]
mod simd {
    #[cfg(test)]
    use super::LANES;
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn splat(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }

    /// eˣ: 2ⁿ·e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2 (ln 2 in two parts, so r is
    /// exact), e^r by its Taylor polynomial to r⁷; x clamped to where f32 is finite.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn exp(x: __m256) -> __m256 {
        // Adding 1.5·2²³ rounds to an integer and leaves it in the low mantissa bits.
        const ROUND: f32 = 12_582_912.0;
        let x = _mm256_min_ps(_mm256_max_ps(x, splat(-87.0)), splat(88.0));
        let t = _mm256_fmadd_ps(x, splat(std::f32::consts::LOG2_E), splat(ROUND));
        let n = _mm256_sub_ps(t, splat(ROUND));
        let r = _mm256_fnmadd_ps(n, splat(0.693_145_75), x);
        let r = _mm256_fnmadd_ps(n, splat(1.428_606_8e-6), r);
        let mut p = splat(1.0 / 5040.0);
        p = _mm256_fmadd_ps(p, r, splat(1.0 / 720.0));
        p = _mm256_fmadd_ps(p, r, splat(1.0 / 120.0));
        p = _mm256_fmadd_ps(p, r, splat(1.0 / 24.0));
        p = _mm256_fmadd_ps(p, r, splat(1.0 / 6.0));
        p = _mm256_fmadd_ps(p, r, splat(0.5));
        p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), splat(1.0));
        // n + 127 in the exponent field is 2ⁿ.
        let biased = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B40_0000 - 127));
        _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased)))
    }

    /// The sum of a register's eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn sum_lanes(v: __m256) -> f32 {
        let halves = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        let one = _mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs));
        _mm_cvtss_f32(one)
    }

    /// [`exp`] of eight values, for tests.
    #[cfg(test)]
    pub fn exp_lanes(x: [f32; LANES]) -> [f32; LANES] {
        let mut out = [0f32; LANES];
        // SAFETY: only called where the CPU has AVX2 and FMA (the test checks); the arrays
        // hold the eight floats a load reads and a store writes.
        unsafe {
            let v = exp(_mm256_loadu_ps(x.as_ptr()));
            _mm256_storeu_ps(out.as_mut_ptr(), v);
        }
        out
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::simd::exp_lanes;

    #[test]
    fn the_exponential_is_within_two_ten_millionths() {
        if !super::simd_available() {
            eprintln!("this CPU has no AVX2 and FMA: the fused pass does not run here");
            return;
        }
        let mut worst = 0f64;
        for i in 0..16_000 {
            let x = -80.0 + i as f32 * 0.01;
            let approx = exp_lanes([x; 8])[3] as f64;
            let exact = (x as f64).exp();
            worst = worst.max(((approx - exact) / exact).abs());
        }
        assert!(worst < 2e-7, "relative error {worst:e}");
        // Beyond f32's range it saturates instead of overflowing to infinity or NaN.
        assert!(exp_lanes([200.0; 8])[0].is_finite());
        assert!(exp_lanes([-200.0; 8])[0] >= 0.0);
    }
}
