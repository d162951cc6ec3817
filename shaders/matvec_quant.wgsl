// Decoding: c[b, m, n] = act(sum_k a[b, m, k] W[n, k] + bias[n]) for up to MAX_M rows of `a` per
// dispatch slice, with W [N, K] in ggml blocks read in place (quant.wgsl). This is bound by how
// fast W streams from memory, so the layout serves the loads:
// - the 256 invocations form groups of p.tpr (a power of two, 32 to 256, chosen by the host from
//   K); a group computes ROWS consecutive rows of W, its invocations taking the row's 32-value
//   units in turn, so neighbouring invocations read neighbouring blocks (coalesced) and each
//   issues the loads of ROWS rows at once;
// - one unit of `a` is loaded (and converted to f16 with the F16 flag) once for the ROWS rows;
// - each unit's 32 products are summed as f16 or f32 pairs, then added into f32 accumulators;
// - a group's partial sums are reduced with subgroupAdd (SUBGROUPS, when a subgroup fits in a
//   group) or a tree in workgroup memory.
#include "common.wgsl"

struct Params {
    m: u32,
    n: u32,
    k: u32,
    act: u32,
    a_off: u32,
    a_sb: u32,
    a_sm: u32,
    tpr: u32,
    // Byte offsets and strides of W's rows.
    b_off: u32,
    b_sb: u32,
    b_sn: u32,
    m_slices: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> wq: array<u32>;
#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
#endif

#include "quant.wgsl"

const ROWS: u32 = 4u;
const MAX_M: u32 = 4u;
const SLOTS: u32 = 16u; // ROWS * MAX_M accumulators per invocation

// Per-subgroup partial sums (subgroups of 4 or more invocations), or the tree's values.
var<workgroup> partial: array<f32, 1024>;

fn store(batch: u32, m: u32, row: u32, v: f32) {
#if HAS_BIAS
    let x = v + bias[row];
#else
    let x = v;
#endif
    c[(batch * p.m + m) * p.n + row] = apply_unary(p.act, x);
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
#endif
) {
    let tpr = p.tpr;
    let g = lid / tpr;
    let t = lid % tpr;
    let row0 = ((wg.y * nwg.x + wg.x) * (256u / tpr) + g) * ROWS;
    let batch = wg.z / p.m_slices;
    let m0 = (wg.z % p.m_slices) * MAX_M;
    let mcount = min(MAX_M, p.m - m0);
    let units = p.k / 32u;
    let w_base = p.b_off + batch * p.b_sb;
    let a_base = p.a_off + batch * p.a_sb + m0 * p.a_sm;

    var acc: array<f32, SLOTS>;
    for (var u = t; u < units; u += tpr) {
        for (var mi = 0u; mi < MAX_M; mi++) {
            if mi >= mcount {
                break;
            }
            let xb = a_base + mi * p.a_sm + u * 32u;
            var xp: array<F2, 16>;
            for (var i = 0u; i < 8u; i++) {
                let v = vec4<f32>(a[xb + 4u * i], a[xb + 4u * i + 1u], a[xb + 4u * i + 2u], a[xb + 4u * i + 3u]);
                xp[2u * i] = F2(v.xz);
                xp[2u * i + 1u] = F2(v.yw);
            }
            for (var r = 0u; r < ROWS; r++) {
                let row = row0 + r;
                if row < p.n {
                    let un = decode_unit(w_base + row * p.b_sn, u);
                    var s = F2(0.0);
                    for (var i = 0u; i < 16u; i++) {
                        s = fma(un.w[i], xp[i], s);
                    }
                    acc[r * MAX_M + mi] += f32(s.x) + f32(s.y);
                }
            }
        }
    }

#if SUBGROUPS
    // Subgroups are runs of consecutive invocations, so one that fits in a group stays in it.
    if sg_size >= 4u && sg_size <= tpr {
        for (var s = 0u; s < SLOTS; s++) {
            if s % MAX_M >= mcount {
                continue;
            }
            let v = subgroupAdd(acc[s]);
            if sg_lane == 0u {
                partial[(lid / sg_size) * SLOTS + s] = v;
            }
        }
        workgroupBarrier();
        if t == 0u {
            let first = lid / sg_size;
            for (var s = 0u; s < SLOTS; s++) {
                let row = row0 + s / MAX_M;
                let mi = s % MAX_M;
                if mi < mcount && row < p.n {
                    var total = 0.0;
                    for (var j = 0u; j < tpr / sg_size; j++) {
                        total += partial[(first + j) * SLOTS + s];
                    }
                    store(batch, m0 + mi, row, total);
                }
            }
        }
        return;
    }
#endif
    for (var s = 0u; s < SLOTS; s++) {
        if s % MAX_M >= mcount {
            continue;
        }
        partial[lid] = acc[s];
        workgroupBarrier();
        for (var step = tpr / 2u; step > 0u; step >>= 1u) {
            if t < step {
                partial[lid] += partial[lid + step];
            }
            workgroupBarrier();
        }
        if t == 0u {
            acc[s] = partial[lid];
        }
        workgroupBarrier();
    }
    if t == 0u {
        for (var s = 0u; s < SLOTS; s++) {
            let row = row0 + s / MAX_M;
            let mi = s % MAX_M;
            if mi < mcount && row < p.n {
                store(batch, m0 + mi, row, acc[s]);
            }
        }
    }
}
