// Max pooling of x [N, C, H, W] (any view) to [N, C, Ho, Wo]: the max over each window's taps
// inside the input (padding never wins). One invocation per output value.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

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
    // The lowest finite f32 (its exact bits), not -inf: browsers' WGSL compilers evaluate constant
    // expressions and refuse an infinite one, or a decimal literal just past f32's range. Every
    // window holds at least one input tap (the op checks padding).
    var m = bitcast<f32>(0xff7fffffu);
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.stride_y + ky) - i32(p.pad_y);
        if iy < 0 || u32(iy) >= p.h {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.stride_x + kx) - i32(p.pad_x);
            if ix >= 0 && u32(ix) < p.w {
                m = max(m, x[plane + u32(iy) * p.x_strides.z + u32(ix) * p.x_strides.w]);
            }
        }
    }
    out[i] = m;
}
