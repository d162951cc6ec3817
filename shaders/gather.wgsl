// Embedding lookup: out[t, c] = table[ids[t], c]. Ids outside the table give zero rows (the host
// validates ids before they get here). A table too large for one binding comes in parts of
// rows; each part's dispatch writes only the rows whose ids it holds (the last part also the
// zero rows of ids past the table).
#include "common.wgsl"

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
    if id < p.first {
        return;
    }
    if id - p.first >= p.vocab {
        if p.is_last != 0u {
            out[i] = 0.0;
        }
        return;
    }
    let at = p.table_off + (id - p.first) * p.h + i % p.h;
#if TABLE_F32
    out[i] = table[at];
#else
    out[i] = unpack2x16float(table[at >> 1u])[at & 1u];
#endif
}
