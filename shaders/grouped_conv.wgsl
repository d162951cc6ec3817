// A grouped (depthwise) convolution computed directly: x [N, Cin, H, W] (any view), weight
// [Cout, Cin/groups, KH, KW] dense (W_F32, or f16 pairs in u32 words), optional bias [Cout]:
// out [N, Cout, Ho, Wo]. One invocation per output value sums its group's taps.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if W_F32
@group(0) @binding(2) var<storage, read> w: array<f32>;
#else
@group(0) @binding(2) var<storage, read> w: array<u32>;
#endif
#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif

fn weight(at: u32) -> f32 {
#if W_F32
    return w[at];
#else
    return unpack2x16float(w[at >> 1u])[at & 1u];
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
    let co = (i / (p.wo * p.ho)) % p.cout;
    let b = i / (p.wo * p.ho * p.cout);
    let group = co / (p.cout / p.groups);
#if HAS_BIAS
    var acc = bias[co];
#else
    var acc = 0.0;
#endif
    for (var ci = 0u; ci < p.cin_g; ci++) {
        let c = group * p.cin_g + ci;
        let x_plane = p.x_off + b * p.x_strides.x + c * p.x_strides.y;
        for (var ky = 0u; ky < p.kh; ky++) {
            let iy = i32(oy * p.stride_y + ky * p.dilation_y) - i32(p.pad_y);
            if iy < 0 || u32(iy) >= p.h {
                continue;
            }
            for (var kx = 0u; kx < p.kw; kx++) {
                let ix = i32(ox * p.stride_x + kx * p.dilation_x) - i32(p.pad_x);
                if ix < 0 || u32(ix) >= p.w {
                    continue;
                }
                let wv = weight(((co * p.cin_g + ci) * p.kh + ky) * p.kw + kx);
                acc += wv * x[x_plane + u32(iy) * p.x_strides.z + u32(ix) * p.x_strides.w];
            }
        }
    }
    out[i] = acc;
}
