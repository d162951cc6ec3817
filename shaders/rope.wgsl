// Rotary position embedding of x [T, H, D] (unit stride on D), one invocation per rotated pair.
// Pair i of a head is (2i, 2i+1) when INTERLEAVED (GGUF's Llama layout), else (i, i + R/2)
// (Hugging Face's rotate_half); dims past R = 2 * len(inv_freq), and heads from p.rotated on,
// are copied unchanged.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // One invocation per (token, head, dim slot) where slot < D/2 rotates a pair and the rest copy.
    let per_head = p.d - p.half;
    let i = flat_index(wg, nwg, lid, WG);
    if i >= p.tokens * p.heads * per_head {
        return;
    }
    let slot = i % per_head;
    let h = (i / per_head) % p.heads;
    let t = i / (per_head * p.heads);
    let src = p.x_off + t * p.x_st + h * p.x_sh;
    let dst = (t * p.heads + h) * p.d;
    if slot < p.half {
#if INTERLEAVED
        let a = 2u * slot;
        let b = a + 1u;
#else
        let a = slot;
        let b = slot + p.half;
#endif
        // The angle as PyTorch forms it in f32, then brought into [-pi, pi]: positions times
        // frequencies reach far beyond it.
        let angle = f32(positions[t]) * inv_freq[slot];
        // 2 pi in two parts (Cody-Waite): k * 6.28125 is exact in f32, so large angles lose
        // nothing to the reduction itself.
        let k = round(angle * 0.15915494);
        let reduced = (angle - k * 6.28125) - k * 0.0019353072;
        let sc = sin_cos(reduced);
        let s = sc.x;
        let c = sc.y;
        let xa = x[src + a];
        let xb = x[src + b];
        if h < p.rotated {
            out[dst + a] = xa * c - xb * s;
            out[dst + b] = xb * c + xa * s;
        } else {
            out[dst + a] = xa;
            out[dst + b] = xb;
        }
    } else {
        // Dims past the rotary part (partial rotary), 2 * half .. d.
        let k = 2u * p.half + (slot - p.half);
        if k < p.d {
            out[dst + k] = x[src + k];
        }
    }
}

// sin and cos of a in [-pi, pi] to about f32 rounding. WGSL's builtins need only be within 2^-11
// there, and some are (SwiftShader's: 2e-4 on rotated q and k, 2e-3 on a tiny decoder's logits).
// a = q pi/2 + r with |r| <= pi/4, where short Taylor series are exact to f32 (next terms < 2e-9).
fn sin_cos(a: f32) -> vec2<f32> {
    let q = round(a * 0.63661977);
    // pi/2 in two parts, as above; q is at most 2, so the products are exact enough.
    let r = (a - q * 1.5703125) - q * 4.8382679e-4;
    let r2 = r * r;
    let s = r * (1.0 + r2 * (-1.6666667e-1 + r2 * (8.3333333e-3 + r2 * (-1.9841270e-4 + r2 * 2.7557319e-6))));
    let c = 1.0 + r2 * (-0.5 + r2 * (4.1666667e-2 + r2 * (-1.3888889e-3 + r2 * (2.4801587e-5 - r2 * 2.7557319e-7))));
    switch (i32(q) & 3) {
        case 1: { return vec2<f32>(c, -s); }
        case 2: { return vec2<f32>(-s, -c); }
        case 3: { return vec2<f32>(-c, s); }
        default: { return vec2<f32>(s, c); }
    }
}
