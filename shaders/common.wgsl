// Helpers shared by the kernels. Included with `#include "common.wgsl"`.

// The storage offset of element `i` (row-major) of a view of rank <= 8. Dims and strides are
// packed as two vec4s each, padded on the left with dim 1 (the innermost dim is d1.w).
fn strided_offset(i: u32, d0: vec4<u32>, d1: vec4<u32>, s0: vec4<u32>, s1: vec4<u32>) -> u32 {
    var rem = i;
    var off = 0u;
    for (var j = 0u; j < 4u; j++) {
        let dim = d1[3u - j];
        off += (rem % dim) * s1[3u - j];
        rem = rem / dim;
    }
    for (var j = 0u; j < 4u; j++) {
        let dim = d0[3u - j];
        off += (rem % dim) * s0[3u - j];
        rem = rem / dim;
    }
    return off;
}

// erf: its Taylor series near 0 (where the tail formula loses digits to cancellation), else
// Abramowitz & Stegun 7.1.28. |error| < 1e-6. The CPU backend uses the same formula.
fn erf_approx(x: f32) -> f32 {
    let a = abs(x);
    let x2 = x * x;
    let series = 1.1283791671 * x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (0.1 + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0 - x2 / 1320.0)))));
    let p = 1.0 + a * (0.07052308 + a * (0.042282012 + a * (0.0092705272 + a * (0.0001520143 + a * (0.0002765672 + a * 0.0000430638)))));
    let p2 = p * p;
    let p4 = p2 * p2;
    let p8 = p4 * p4;
    let p16 = p8 * p8;
    return select(sign(x) * (1.0 - 1.0 / p16), series, a < 0.5);
}

fn gelu_erf(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}

fn tanh_stable(x: f32) -> f32 {
    // WGSL's tanh overflows to NaN for large |x| on some drivers; this form saturates cleanly.
    return 1.0 - 2.0 / (exp(min(2.0 * x, 80.0)) + 1.0);
}

fn gelu_tanh(x: f32) -> f32 {
    return 0.5 * x * (1.0 + tanh_stable(0.7978845608 * (x + 0.044715 * x * x * x)));
}

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(min(-x, 80.0)));
}

// Unary op codes, shared by elementwise.wgsl and matmul epilogues.
const OP_GELU: u32 = 0u;
const OP_GELU_TANH: u32 = 1u;
const OP_SILU: u32 = 2u;
const OP_RELU: u32 = 3u;
const OP_NEG: u32 = 4u;
const OP_EXP: u32 = 5u;
const OP_TANH: u32 = 6u;
const OP_SIGMOID: u32 = 7u;
const OP_QUICK_GELU: u32 = 8u;
const OP_RSQRT: u32 = 9u;
const OP_NONE: u32 = 10u;

fn apply_unary(code: u32, x: f32) -> f32 {
    switch code {
        case 0u: { return gelu_erf(x); }
        case 1u: { return gelu_tanh(x); }
        case 2u: { return silu(x); }
        case 3u: { return max(x, 0.0); }
        case 4u: { return -x; }
        case 5u: { return exp(x); }
        case 6u: { return tanh_stable(x); }
        case 7u: { return sigmoid(x); }
        case 8u: { return x * sigmoid(1.702 * x); }
        case 9u: { return inverseSqrt(x); }
        default: { return x; }
    }
}

// A 1-D index from a dispatch folded into (x, y) when it exceeds 65535 workgroups per dim.
fn flat_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, wg_size: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * wg_size + lid;
}
