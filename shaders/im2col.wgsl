// The patches of x [N, C, H, W] (any view) that a band of output rows of a convolution reads:
// out [N, rows*Wo, C*KH*KW], one row of taps (c, ky, kx) per output position; taps in the
// padding are 0. One invocation per output value.
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
    let tap = i % p.k;
    let pos = (i / p.k) % p.positions;
    let b = i / (p.k * p.positions);
    let c = tap / (p.kh * p.kw);
    let ky = (tap / p.kw) % p.kh;
    let kx = tap % p.kw;
    let oy = p.row0 + pos / p.wo;
    let ox = pos % p.wo;
    let iy = i32(oy * p.stride_y + ky * p.dilation_y) - i32(p.pad_y);
    let ix = i32(ox * p.stride_x + kx * p.dilation_x) - i32(p.pad_x);
    var v = 0.0;
    if iy >= 0 && ix >= 0 && u32(iy) < p.h && u32(ix) < p.w {
        v = x[p.x_off + b * p.x_strides.x + c * p.x_strides.y + u32(iy) * p.x_strides.z + u32(ix) * p.x_strides.w];
    }
    out[i] = v;
}
