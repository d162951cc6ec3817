// One part of a concatenation: the part (any view of 4-byte values, copied as bits) lands in
// the row-major output at its place along the joined dim. Per part: `block` values (its size
// along the dim times the inner dims) out of every `out_block` of the output, from `at`.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid, WG);
    if i >= p.numel {
        return;
    }
    let dst = (i / p.block) * p.out_block + p.at + i % p.block;
    out[dst] = src[p.src_off + strided_offset(i, p.dims0, p.dims1, p.strides0, p.strides1)];
}
