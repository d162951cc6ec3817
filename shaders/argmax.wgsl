// Index of the largest value of each row of x [R, N] (the first on ties), one workgroup per
// row: greedy decoding picks the next token on the device and reads back 4 bytes.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> best_value: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.y * nwg.x + wg.x;
    let live = row < p.rows;
    var value = -3.4e38;
    var index = 0xffffffffu;
    for (var i = lid; live && i < p.n; i += WG) {
        let v = x[row * p.n + i];
        // Strictly greater keeps the first index among equals in this invocation's stride.
        if v > value || index == 0xffffffffu {
            value = v;
            index = i;
        }
    }
    best_value[lid] = value;
    best_index[lid] = index;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            let ov = best_value[lid + s];
            let oi = best_index[lid + s];
            if ov > best_value[lid] || (ov == best_value[lid] && oi < best_index[lid]) {
                best_value[lid] = ov;
                best_index[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    if live && lid == 0u {
        out[row] = best_index[0];
    }
}
