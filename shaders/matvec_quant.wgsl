// Decoding: c[b, m, n] = act(sum_k a[b, m, k] W[n, k] + bias[n]) (+ residual) for a few rows of `a` (one per
// z slice), with W [N, K] in ggml blocks read in place (quant.wgsl), or in plain f32 / f16 rows
// (DENSE_F32, DENSE_F16: the same loop, where a 64x64 tile would compute 63 discarded rows).
// This is bound by how fast W streams from memory, so the layout serves the loads:
// - the 256 invocations form teams of p.tpr (a power of two, 32 to 256, chosen by the host from
//   K); a team computes 4 consecutive rows of W, its invocations taking the rows' 8-weight groups
//   in turn (quant.wgsl), so neighbouring invocations read neighbouring words of W and of `a`
//   (coalesced) and each has the loads of 4 rows in flight;
// - `a` is converted to f16 (F16 flag) once for the 4 rows; each group's 8 products are summed
//   in F pairs, then added to f32 accumulators;
// - a team's sums are reduced with subgroupAdd (SUBGROUPS, when a subgroup fits in a team) or
//   a tree in workgroup memory; the 4 rows travel together as a vec4.
// Nothing is kept in arrays, so no driver spills registers to memory.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> wq: array<u32>;
#include "matmul_io.wgsl"

#include "quant.wgsl"
#if NORM
#include "reduce.wgsl"
#endif

// One vec4 per invocation (the 4 rows): per-subgroup sums, or the tree's values.
var<workgroup> partial: array<vec4<f32>, 256>;

// The row's inverse RMS (NORM), set before the main loop.
var<private> row_inv: f32;

// 4 values of `a` from `at`, column `k` of its row.
fn x4(at: u32, k: u32) -> vec4<f32> {
#if NORM
    return vec4<f32>(normed(a[at], k, row_inv), normed(a[at + 1u], k + 1u, row_inv), normed(a[at + 2u], k + 2u, row_inv), normed(a[at + 3u], k + 3u, row_inv));
#else
    return vec4<f32>(load_a(at), load_a(at + 1u), load_a(at + 2u), load_a(at + 3u));
#endif
}

// A group's 8 values of `a` (its unit from `xb`, column `xk` of the row), as F pairs in the
// order of `Group`.
fn x_group(xb: u32, xk: u32, i: u32) -> Group {
    let o = x_offsets(i);
    let x0 = x4(xb + o.x, xk + o.x);
    let x1 = x4(xb + o.y, xk + o.y);
    return Group(F2(x0.xz), F2(x0.yw), F2(x1.xz), F2(x1.yw));
}

// The group's weights . x, summed in F pairs, then in f32.
fn dot_group(r: Raw, x: Group) -> f32 {
    let w = weights(r);
    let acc = fma(w.a, x.a, fma(w.b, x.b, fma(w.c, x.c, w.d * x.d)));
    return f32(acc.x) + f32(acc.y);
}

fn store(batch: u32, m: u32, row: u32, v: f32) {
    if row < p.n {
        write_c((batch * p.m + m) * p.ldc + p.col0 + row, p.col0 + row, v);
    }
}

fn store4(batch: u32, m: u32, row0: u32, v: vec4<f32>) {
    store(batch, m, row0, v.x);
    store(batch, m, row0 + 1u, v.y);
    store(batch, m, row0 + 2u, v.z);
    store(batch, m, row0 + 3u, v.w);
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
    let t = lid % tpr;
    let row0 = ((wg.y * nwg.x + wg.x) * (256u / tpr) + lid / tpr) * 4u;
    let batch = wg.z / p.m;
    let m = wg.z % p.m;
    let units = p.k / 32u;
    let w_base = p.b_off + batch * p.b_sb;
    let a_base = p.a_off + batch * p.a_sb + m * p.a_sm;
    // Rows past N read the last row (in bounds) and are not stored.
    let last = p.n - 1u;
    let r0 = w_base + min(row0, last) * p.b_sn;
    let r1 = w_base + min(row0 + 1u, last) * p.b_sn;
    let r2 = w_base + min(row0 + 2u, last) * p.b_sn;
    let r3 = w_base + min(row0 + 3u, last) * p.b_sn;

#if NORM
    // The row's inverse RMS, from the row this workgroup reads anyway: RMSNorm folded in, with no
    // dispatch of its own. Every workgroup repeats it, so it is one subgroup reduction where the
    // adapter has them (barriers are what it costs; software rasterizers pay per barrier).
#if !SUBGROUPS
    let sg_size = 0u;
    let sg_lane = 0u;
#endif
    var sum_sq = 0.0;
    for (var kk = lid; kk < p.k; kk += 256u) {
        let v = a[a_base + kk];
        sum_sq += v * v;
    }
    row_inv = inv_rms(workgroup_sum(sum_sq, lid, sg_size, sg_lane));
#endif

    // Invocation t takes groups t, t + tpr, ... of the rows (4 per unit): neighbours read
    // neighbouring words of W and of `a`. All loads of a step are issued before any math.
    var acc = vec4<f32>(0.0);
    for (var item = t; item < units * 4u; item += tpr) {
        let u = item >> 2u;
        let i = item & 3u;
        let w0 = load_group(r0, u, i);
        let w1 = load_group(r1, u, i);
        let w2 = load_group(r2, u, i);
        let w3 = load_group(r3, u, i);
        let x = x_group(a_base + u * 32u, u * 32u, i);
        acc += vec4<f32>(dot_group(w0, x), dot_group(w1, x), dot_group(w2, x), dot_group(w3, x));
    }

#if SUBGROUPS
    // Subgroups are runs of consecutive invocations, so one that fits in a team stays in it.
    if sg_size >= 4u && sg_size <= tpr {
        let v = subgroupAdd(acc);
        if sg_lane == 0u {
            partial[lid / sg_size] = v;
        }
        workgroupBarrier();
        if t == 0u {
            var total = vec4<f32>(0.0);
            for (var j = 0u; j < tpr / sg_size; j++) {
                total += partial[lid / sg_size + j];
            }
            store4(batch, m, row0, total);
        }
        return;
    }
#endif
    partial[lid] = acc;
    workgroupBarrier();
    for (var step = tpr / 2u; step > 0u; step >>= 1u) {
        if t < step {
            partial[lid] += partial[lid + step];
        }
        workgroupBarrier();
    }
    if t == 0u {
        store4(batch, m, row0, partial[lid]);
    }
}
