// What the matmul kernels (matmul.wgsl, matmul_quant.wgsl, matvec_quant.wgsl) share around their
// product: reading A (GATED: silu(gate) * A, or with GATE_GELU gelu_tanh(gate) * A (T5's
// gated-GELU), the gate being A's view p.g_delta elements away in the same buffer), and the output side: bindings from 3 on hold bias (HAS_BIAS), residual
// (HAS_RESIDUAL, dense in C's layout), then C. The including shader declares `p` (with `act` and
// `g_delta`) and `a`.

#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
#if HAS_BIAS && HAS_RESIDUAL
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
