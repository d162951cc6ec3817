// Row normalizations, one workgroup per row of H values:
// LAYER_NORM: (x - mean) / sqrt(var + eps) * w + b;  RMS_NORM: x / sqrt(mean(x^2) + eps) * w;
// L2: x / max(||x||, eps). With RESIDUAL the row is x + residual.
#include "common.wgsl"
#include "reduce.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if L2
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
#elif RESIDUAL && HAS_BIAS
@group(0) @binding(2) var<storage, read> residual: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
#elif RESIDUAL
@group(0) @binding(2) var<storage, read> residual: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#elif HAS_BIAS
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif

fn value(i: u32) -> f32 {
#if RESIDUAL
    return x[i] + residual[i];
#else
    return x[i];
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
    // Rows past the end still join every barrier; they only skip memory accesses.
    let live = row < p.rows;
    let base = row * p.h;
    let n = f32(p.h);

#if LAYER_NORM
    var s = 0.0;
    for (var i = lid; live && i < p.h; i += WG) {
        s += value(base + i);
    }
    let mean = workgroup_sum(s, lid, sg_size, sg_lane) / n;
    var q = 0.0;
    for (var i = lid; live && i < p.h; i += WG) {
        let d = value(base + i) - mean;
        q += d * d;
    }
    let inv = inverseSqrt(workgroup_sum(q, lid, sg_size, sg_lane) / n + p.eps);
#else
    var q = 0.0;
    for (var i = lid; live && i < p.h; i += WG) {
        let v = value(base + i);
        q += v * v;
    }
    let total = workgroup_sum(q, lid, sg_size, sg_lane);
    let mean = 0.0;
#if L2
    let inv = 1.0 / max(sqrt(total), p.eps);
#else
    let inv = inverseSqrt(total / n + p.eps);
#endif
#endif

    for (var i = lid; live && i < p.h; i += WG) {
        var v = (value(base + i) - mean) * inv;
#if !L2
        v *= weight[i];
#endif
#if HAS_BIAS
        v += bias[i];
#endif
        out[base + i] = v;
    }
}
