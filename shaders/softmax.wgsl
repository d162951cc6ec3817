// softmax(x * scale + mask) over rows of N values, one workgroup per row. The additive mask is
// read through its own strides, so a [B, 1, 1, S] mask broadcasts over heads and queries.
#include "common.wgsl"
#include "reduce.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if MASK
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
#endif

fn logit(i: u32) -> f32 {
#if MASK
    return x[i] * p.scale + mask[p.mask_off + strided_offset(i, p.dims0, p.dims1, p.mask_strides0, p.mask_strides1)];
#else
    return x[i] * p.scale;
#endif
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
#endif
) {
#if !SUBGROUPS
    let sg_size = 0u;
    let sg_lane = 0u;
#endif
    let row = wg.y * nwg.x + wg.x;
    let live = row < p.rows;
    let base = row * p.n;

    var m = -3.0e38;
    for (var i = lid; live && i < p.n; i += WG) {
        m = max(m, logit(base + i));
    }
    m = workgroup_max(m, lid, sg_size, sg_lane);
    var s = 0.0;
    for (var i = lid; live && i < p.n; i += WG) {
        s += exp(logit(base + i) - m);
    }
    s = workgroup_sum(s, lid, sg_size, sg_lane);
    // A fully masked row (all -inf) gives zeros, as on the CPU, instead of NaN.
    let inv = select(0.0, 1.0 / s, s > 0.0 && m > -3.0e38);
    for (var i = lid; live && i < p.n; i += WG) {
        out[base + i] = exp(logit(base + i) - m) * inv;
    }
}
