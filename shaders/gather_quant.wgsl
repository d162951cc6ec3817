// Embedding lookup from a table [V, H] in ggml blocks (quant.wgsl): out[t, c] = table[ids[t], c].
// One invocation dequantizes one 32-value unit of a row. Ids outside the table give zero rows
// (the host validates ids before they get here). A table in parts of rows (too large for one
// binding) is looked up part by part, as in gather.wgsl.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

#include "quant.wgsl"

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let units = p.h / 32u;
    let i = flat_index(wg, nwg, lid, WG);
    if i >= p.rows * units {
        return;
    }
    let t = i / units;
    let u = i % units;
    let id = ids[t];
    let o = t * p.h + u * 32u;
    if id < p.first {
        return;
    }
    if id - p.first >= p.vocab {
        if p.is_last != 0u {
            for (var j = 0u; j < 32u; j++) {
                out[o + j] = 0.0;
            }
        }
        return;
    }
    for (var g = 0u; g < 4u; g++) {
        let r = load_group(p.table_off + (id - p.first) * p.row_bytes, u, g);
        let w = scaled(group_q(r), r.s);
        let x = x_offsets(g);
        out[o + x.x] = f32(w.a.x);
        out[o + x.x + 1u] = f32(w.b.x);
        out[o + x.x + 2u] = f32(w.a.y);
        out[o + x.x + 3u] = f32(w.b.y);
        out[o + x.y] = f32(w.c.x);
        out[o + x.y + 1u] = f32(w.d.x);
        out[o + x.y + 2u] = f32(w.c.y);
        out[o + x.y + 3u] = f32(w.d.y);
    }
}
