// A dense copy of any strided view, converting the element type. f16 and bf16 are read from
// u32 words (two values each) so this kernel needs no shader-f16; f16 output is written a word
// (two values) per invocation for the same reason.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
#if SRC_F32
@group(0) @binding(1) var<storage, read> src: array<f32>;
#else
@group(0) @binding(1) var<storage, read> src: array<u32>;
#endif
#if DST_F32
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
#else
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
#endif

fn load(i: u32) -> f32 {
    let at = p.src_off + strided_offset(i, p.dims0, p.dims1, p.strides0, p.strides1);
#if SRC_F32
    return src[at];
#elif SRC_F16
    return unpack2x16float(src[at >> 1u])[at & 1u];
#elif SRC_BF16
    let word = src[at >> 1u];
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (at & 1u) == 1u));
#else
    return 0.0;
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid, WG);
#if SRC_U32
    if i < p.numel {
        dst[p.dst_off + i] = src[p.src_off + strided_offset(i, p.dims0, p.dims1, p.strides0, p.strides1)];
    }
#elif DST_F32
    if i < p.numel {
        dst[p.dst_off + i] = load(i);
    }
#else
    // Invocation i writes values 2i and 2i+1 as one word (dst_off is even for f16).
    let first = 2u * i;
    if first < p.numel {
        var hi = 0.0;
        if first + 1u < p.numel {
            hi = load(first + 1u);
        }
        dst[p.dst_off / 2u + i] = pack2x16float(vec2<f32>(load(first), hi));
    }
#endif
}
