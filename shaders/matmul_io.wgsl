// What the matmul kernels (matmul.wgsl, matmul_quant.wgsl, matvec_quant.wgsl) share around their
// product: reading A (GATED: silu(gate) * A, or with GATE_GELU gelu_tanh(gate) * A (T5's
// gated-GELU), the gate being A's view p.g_delta elements away in the same buffer), and the output side: bindings from 3 on hold bias (HAS_BIAS), residual
// (HAS_RESIDUAL, dense in C's layout), the weight [K] of an RMSNorm of A's rows (NORM: the decode
// kernels scale A's values by the row's inverse RMS, which they compute, and by the weight:
// `normed`; never with HAS_RESIDUAL or GATED), then C. The including shader declares `p` (with
// `act`, `g_delta` and `eps`) and `a`.

#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
#if NORM && HAS_BIAS
@group(0) @binding(4) var<storage, read> norm_w: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;
#elif NORM
@group(0) @binding(3) var<storage, read> norm_w: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
#elif HAS_BIAS && HAS_RESIDUAL
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;
#elif HAS_RESIDUAL
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
#elif HAS_BIAS
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
#endif

// A's value at element `at`. The gate may lie before A: g_delta wraps around like the u32 it is.
fn load_a(at: u32) -> f32 {
#if GATED && GATE_GELU
    return gelu_tanh(a[at + p.g_delta]) * a[at];
#elif GATED
    return silu(a[at + p.g_delta]) * a[at];
#else
    return a[at];
#endif
}

#if NORM
// RMSNorm's output for A's value `v` at column `k` of a row whose inverse RMS is `inv`, in
// norm.wgsl's order of operations.
fn normed(v: f32, k: u32, inv: f32) -> f32 {
    return v * inv * norm_w[k];
}

// The inverse RMS from a row's sum of squares.
fn inv_rms(sum_sq: f32) -> f32 {
    return inverseSqrt(sum_sq / f32(p.k) + p.eps);
}
#endif

// c[at] = act(v + bias[col]) + residual[at]; `col` counts columns of the whole output (a split
// weight's part writes from its first column on).
fn write_c(at: u32, col: u32, v: f32) {
#if HAS_BIAS
    var x = v + bias[col];
#else
    var x = v;
#endif
    x = apply_unary(p.act, x);
#if HAS_RESIDUAL
    x += residual[at];
#endif
    c[at] = x;
}
