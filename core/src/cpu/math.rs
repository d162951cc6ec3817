//! Branch-free f32 math that the compiler vectorizes in the kernels' loops (libm calls would not).
//! The WGSL kernels use the same formulas, so both backends round alike.

/// e^x with a relative error near 2e-7: x = n ln2 + r, |r| <= ln2/2, e^r by its degree-7 Taylor
/// polynomial, 2^n assembled in the exponent bits.
#[inline(always)]
// The high part of ln 2 below is deliberately not LN_2: it is exact in f32 (Cody-Waite split).
#[allow(clippy::approx_constant)]
pub(crate) fn exp(x: f32) -> f32 {
    // 1.5 * 2^23: adding it leaves round(x log2 e) (ties to even) in the low mantissa bits. No
    // float-to-int cast: Rust's saturating `as i32` kept this loop scalar (softmax's exps were
    // a third of attention).
    const ROUNDER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUNDER;
    let n = t - ROUNDER;
    // ln 2 split in a high part exact in f32 and a low correction.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // t's bits are ROUNDER's plus n, whose low 9 bits shifted into place give the exponent
    // n + 127 (1..=254 for n in -126..=127).
    let scale = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
    p * scale
}

/// erf, branch-free: its Taylor series near 0 (where the tail formula loses digits to
/// cancellation in f32), else Abramowitz & Stegun 7.1.28, 1 - (1 + a1 x + ... + a6 x^6)^-16.
/// |error| < 1e-6 everywhere.
#[inline(always)]
// 1.1283792 is 2/sqrt(pi) written where the series is, to read against its formula.
#[allow(clippy::approx_constant)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let x2 = x * x;
    // 2/sqrt(pi) (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320)
    let series = 1.128_379_2 * x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (0.1 + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0 - x2 / 1320.0)))));
    let p = 1.0
        + a * (0.070_523_08
            + a * (0.042_282_012 + a * (0.009_270_527_2 + a * (0.000_152_014_3 + a * (0.000_276_567_2 + a * 0.000_043_063_8)))));
    let p2 = p * p;
    let p4 = p2 * p2;
    let p8 = p4 * p4;
    let p16 = p8 * p8;
    let tail = (1.0 - 1.0 / p16).copysign(x);
    if a < 0.5 { series } else { tail }
}

/// BERT's exact GELU: x/2 (1 + erf(x / sqrt 2)).
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GPT-2's GELU: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#[inline(always)]
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + tanh(0.797_884_6 * (x + 0.044_715 * x * x * x)))
}

#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    // tanh x = 1 - 2 / (e^{2x} + 1): exact at both tails, no cancellation problem for f32 output.
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

#[inline(always)]
pub(crate) fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// CLIP's quick GELU: x * sigmoid(1.702 x).
#[inline(always)]
pub(crate) fn quick_gelu(x: f32) -> f32 {
    x / (1.0 + exp(-1.702 * x))
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_and_erf_match_libm() {
        let mut worst_exp = 0f32;
        let mut worst_erf = 0f32;
        for i in -4000..4000 {
            let x = i as f32 * 0.02;
            let e = libm::expf(x);
            worst_exp = worst_exp.max(((super::exp(x) - e) / e).abs());
            worst_erf = worst_erf.max((super::erf(x) - libm::erff(x)).abs());
        }
        assert!(worst_exp < 5e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 1e-6, "erf absolute error {worst_erf}");
        assert!((super::tanh(0.5) - libm::tanhf(0.5)).abs() < 1e-6);
    }
}
