// C[b, m, n] = act(sum_k A[b, m, k] * B[b, k, n] + bias[n]) (+ residual), A f32, B f32 or f16,
// any strides.
// Tiled: a workgroup of 16x16 invocations computes a 64x64 tile of C, 4x4 values each, staging
// 64x16 slices of A and B in workgroup memory (8 KiB, within WebGPU's 16 KiB default).
#include "common.wgsl"

const TK: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
#if B_F32
@group(0) @binding(2) var<storage, read> b: array<f32>;
#elif B_F16_NATIVE
@group(0) @binding(2) var<storage, read> b: array<f16>;
#else
@group(0) @binding(2) var<storage, read> b: array<u32>;
#endif
#include "matmul_io.wgsl"

fn load_b(i: u32) -> f32 {
#if B_F32
    return b[i];
#elif B_F16_NATIVE
    return f32(b[i]);
#else
    return unpack2x16float(b[i >> 1u])[i & 1u];
#endif
}

var<workgroup> a_tile: array<f32, 1024>; // [TK][TM]
var<workgroup> b_tile: array<f32, 1024>; // [TK][TN]
#if NORM
// The inverse RMS of each of the tile's rows.
var<workgroup> row_inv: array<f32, TM>;
#endif

#include "tile.wgsl"

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let batch = wg.z;
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let tr = lid / 16u;
    let tc = lid % 16u;
    var acc: array<vec4<f32>, 4>;
    let a_base = p.a_off + batch * p.a_sb;
    let b_base = p.b_off + batch * p.b_sb;

#if NORM
    // The RMS of each of the tile's rows, 4 invocations a row (a_tile as scratch): RMSNorm folded
    // in, with no dispatch of its own. Used for a few rows (decoding), where A is small.
    {
        let r = lid / 4u;
        var sum_sq = 0.0;
        if row0 + r < p.m {
            for (var kk = lid % 4u; kk < p.k; kk += 4u) {
                let v = a[a_base + (row0 + r) * p.a_sm + kk * p.a_sk];
                sum_sq += v * v;
            }
        }
        a_tile[lid] = sum_sq;
        workgroupBarrier();
        if lid % 4u == 0u {
            row_inv[r] = inv_rms((a_tile[lid] + a_tile[lid + 1u]) + (a_tile[lid + 2u] + a_tile[lid + 3u]));
        }
        workgroupBarrier();
    }
#endif

    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // Each invocation stages 4 values of each slice; neighbours read neighbouring k.
        for (var s = 0u; s < 4u; s++) {
            let e = lid + s * 256u;
            let r = e / TK;
            let kk = e % TK;
            let gk = k0 + kk;
            var av = 0.0;
            if row0 + r < p.m && gk < p.k {
                av = load_a(a_base + (row0 + r) * p.a_sm + gk * p.a_sk);
#if NORM
                av = normed(av, gk, row_inv[r]);
#endif
            }
            a_tile[kk * TM + r] = av;
            var bv = 0.0;
            if col0 + r < p.n && gk < p.k {
                bv = load_b(b_base + gk * p.b_sk + (col0 + r) * p.b_sn);
            }
            b_tile[kk * TN + r] = bv;
        }
        workgroupBarrier();
        multiply_tiles(tr, tc, &acc);
        workgroupBarrier();
    }

    store_tile(batch, row0, col0, tr, tc, acc);
}
