// Bicubic resampling of x [N, C, H, W] (any view) to [N, C, Ho, Wo] as PyTorch's
// interpolate(mode="bicubic"). Without ANTIALIAS: four taps per axis with a = -0.75, indices
// clamped to the border. With it: PIL's a = -0.5 filter stretched by the scale when
// downsampling, taps cut at the border and weights normalized to sum to 1. One invocation per
// output value; the weights of both axes are computed on the fly.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn cubic(t: f32, a: f32) -> f32 {
    let x = abs(t);
    if x < 1.0 {
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    }
    if x < 2.0 {
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    }
    return 0.0;
}

// The taps of output index `o` along an axis of `size` inputs: the first index, how many, and
// what the weight function needs (the source position, and 1/stretch for antialiasing).
struct Axis {
    lo: i32,
    count: i32,
    center: f32,
    inv: f32,
}

fn axis(o: u32, size: u32, scale: f32) -> Axis {
#if ANTIALIAS
    let stretch = max(scale, 1.0);
    let center = scale * (f32(o) + 0.5);
    let support = 2.0 * stretch;
    // PyTorch truncates toward zero, then clamps at 0.
    let lo = max(i32(center - support + 0.5), 0);
    let hi = min(i32(center + support + 0.5), i32(size));
    return Axis(lo, max(hi - lo, 0), center, 1.0 / stretch);
#else
    var real = scale * (f32(o) + 0.5) - 0.5;
    if p.align_corners != 0u {
        real = scale * f32(o);
    }
    let base = floor(real);
    return Axis(i32(base) - 1, 4, real, 1.0);
#endif
}

fn tap_weight(ax: Axis, j: i32) -> f32 {
#if ANTIALIAS
    return cubic((f32(j) - ax.center + 0.5) * ax.inv, -0.5);
#else
    return cubic(ax.center - f32(j), -0.75);
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid, WG);
    if i >= p.numel {
        return;
    }
    let ox = i % p.wo;
    let oy = (i / p.wo) % p.ho;
    let c = (i / (p.wo * p.ho)) % p.c;
    let b = i / (p.wo * p.ho * p.c);
    let plane = p.x_off + b * p.x_strides.x + c * p.x_strides.y;
    let ay = axis(oy, p.h, p.scale_y);
    let ax = axis(ox, p.w, p.scale_x);
    var acc = 0.0;
    var wy_sum = 0.0;
    var wx_sum = 0.0;
    for (var ty = 0; ty < ay.count; ty++) {
        let jy = ay.lo + ty;
        let wy = tap_weight(ay, jy);
        wy_sum += wy;
        let y = u32(clamp(jy, 0, i32(p.h) - 1));
        var row = 0.0;
        for (var tx = 0; tx < ax.count; tx++) {
            let jx = ax.lo + tx;
            let x_ = u32(clamp(jx, 0, i32(p.w) - 1));
            row += tap_weight(ax, jx) * x[plane + y * p.x_strides.z + x_ * p.x_strides.w];
        }
        acc += wy * row;
    }
#if ANTIALIAS
    for (var tx = 0; tx < ax.count; tx++) {
        wx_sum += tap_weight(ax, ax.lo + tx);
    }
    let total = wy_sum * wx_sum;
    out[i] = select(0.0, acc / total, total != 0.0);
#else
    out[i] = acc;
#endif
}
