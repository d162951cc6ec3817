// Embedding lookup: out[t, c] = table[ids[t], c]. Ids outside the table give zero rows (the host
// validates ids before they get here).
#include "common.wgsl"

struct Params {
    rows: u32,
    h: u32,
    vocab: u32,
    table_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if TABLE_F32
@group(0) @binding(1) var<storage, read> table: array<f32>;
#else
@group(0) @binding(1) var<storage, read> table: array<u32>;
#endif
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid, WG);
    if i >= p.rows * p.h {
        return;
    }
    let id = ids[i / p.h];
    if id >= p.vocab {
        out[i] = 0.0;
        return;
    }
    let at = p.table_off + id * p.h + i % p.h;
#if TABLE_F32
    out[i] = table[at];
#else
    out[i] = unpack2x16float(table[at >> 1u])[at & 1u];
#endif
}
