// out[row, j] = x[row, min(index[row % r, j], n - 1)]: x [rows, n] (any leading batch folded into
// rows), index [r, m] shared by every batch entry, out [rows, m]; one invocation per output value.
// The clamp keeps every read inside x whatever the index holds.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid, WG);
    if i >= p.numel {
        return;
    }
    let row = i / p.m;
    let j = i % p.m;
    let col = min(index[(row % p.r) * p.m + j], p.n - 1u);
    out[i] = x[row * p.n + col];
}
