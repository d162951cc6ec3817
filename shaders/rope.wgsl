// Rotary position embedding of x [T, H, D] (unit stride on D), one invocation per rotated pair.
// Pair i of a head is (2i, 2i+1) when INTERLEAVED (GGUF's Llama layout), else (i, i + R/2)
// (Hugging Face's rotate_half); dims past R = 2 * len(inv_freq), and heads from p.rotated on,
// are copied unchanged. Written from element p.dst_off of `out` (a KV cache's rows: keys rotated
// and values copied into the cache by one dispatch, `write_rows_rope`), as f16 with DST_F16 (an
// f16 cache).
#include "common.wgsl"
#include "rotary.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
#if DST_F16
alias out_elem = f16;
#else
alias out_elem = f32;
#endif
@group(0) @binding(4) var<storage, read_write> out: array<out_elem>;

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
    let dst = p.dst_off + (t * p.heads + h) * p.d;
    if slot < p.half {
#if INTERLEAVED
        let a = 2u * slot;
        let b = a + 1u;
#else
        let a = slot;
        let b = slot + p.half;
#endif
        let sc = rotary_sin_cos(positions[t], inv_freq[slot]);
        let s = sc.x;
        let c = sc.y;
        let xa = x[src + a];
        let xb = x[src + b];
        if h < p.rotated {
            out[dst + a] = out_elem(xa * c - xb * s);
            out[dst + b] = out_elem(xb * c + xa * s);
        } else {
            out[dst + a] = out_elem(xa);
            out[dst + b] = out_elem(xb);
        }
    } else {
        // Dims past the rotary part (partial rotary), 2 * half .. d.
        let k = 2u * p.half + (slot - p.half);
        if k < p.d {
            out[dst + k] = out_elem(x[src + k]);
        }
    }
}
