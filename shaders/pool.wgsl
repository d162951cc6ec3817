// Per-sequence ops on packed rows [T, H] with sequence offsets [B + 1]:
// MEAN / CLS pooling to [B, H] (one invocation per output value), and UNPACK to a zero-padded
// [B, S, H] batch.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid, WG);
    if i >= p.numel {
        return;
    }
    let col = i % p.h;
#if UNPACK
    let b = i / (p.max_len * p.h);
    let pos = (i / p.h) % p.max_len;
    let start = offsets[b];
    var v = 0.0;
    if start + pos < offsets[b + 1u] {
        v = x[(start + pos) * p.h + col];
    }
    out[i] = v;
#else
    let b = i / p.h;
    let start = offsets[b];
    let end = offsets[b + 1u];
#if CLS
    out[i] = select(0.0, x[start * p.h + col], end > start);
#else
    var s = 0.0;
    for (var r = start; r < end; r++) {
        s += x[r * p.h + col];
    }
    out[i] = select(0.0, s / f32(end - start), end > start);
#endif
#endif
}
