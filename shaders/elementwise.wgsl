// Elementwise ops. UNARY: out[i] = f(x[i]) over a contiguous input. BINARY: out[i] = a op b,
// each side read through its own strides (broadcast sides have stride 0).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
#if BINARY
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid, WG);
    if i >= p.numel {
        return;
    }
#if BINARY
    let x = a[p.a_off + strided_offset(i, p.dims0, p.dims1, p.a_strides0, p.a_strides1)];
    let y = b[p.b_off + strided_offset(i, p.dims0, p.dims1, p.b_strides0, p.b_strides1)];
    var r: f32;
    switch p.op {
        case 0u: { r = x + y; }
        case 1u: { r = x - y; }
        case 2u: { r = x * y; }
        case 3u: { r = x / y; }
        default: { r = silu(x) * y; }
    }
    out[i] = r;
#else
    out[i] = apply_unary(p.op, a[p.a_off + i]);
#endif
}
