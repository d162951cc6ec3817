// Prefill: c[b, m, n] = act(sum_k a[b, m, k] W[n, k] + bias[n]) (+ residual) for many rows of
// `a`, with W [N, K] in ggml blocks read in place (quant.wgsl). The tiling of matmul.wgsl: a workgroup of 16x16
// invocations computes a 64x64 tile of C, 4x4 values each, over K in steps of one 32-value unit:
// the invocations dequantize the unit of each of the tile's 64 rows of W, 8 weights each, and
// stage the 64x32 slice of `a` (16 KiB of workgroup memory in all, WebGPU's default limit).
// Dequantization is amortized over the 64 rows of the tile, so arithmetic is f32 throughout.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> wq: array<u32>;
#include "matmul_io.wgsl"

#include "quant.wgsl"

const TK: u32 = 32u;

var<workgroup> a_tile: array<f32, 2048>; // [TK][TM]
var<workgroup> b_tile: array<f32, 2048>; // [TK][TN]

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
    let w_base = p.b_off + batch * p.b_sb;

    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var s = 0u; s < 8u; s++) {
            let e = lid + s * 256u;
            let r = e / TK;
            let kk = e % TK;
            var av = 0.0;
            if row0 + r < p.m {
                av = load_a(a_base + (row0 + r) * p.a_sm + k0 + kk);
            }
            a_tile[kk * TM + r] = av;
        }
        // Invocation (column lid % 64, group lid / 64) dequantizes 8 weights of the unit.
        let col = col0 + lid % TN;
        let i = lid / TN;
        let o = x_offsets(i);
        var w = Group(F2(0.0), F2(0.0), F2(0.0), F2(0.0));
        if col < p.n {
            let r = load_group(w_base + col * p.b_sn, k0 / TK, i);
            w = scaled(group_q(r), r.s);
        }
        let bc = lid % TN;
        b_tile[o.x * TN + bc] = w.a.x;
        b_tile[(o.x + 1u) * TN + bc] = w.b.x;
        b_tile[(o.x + 2u) * TN + bc] = w.a.y;
        b_tile[(o.x + 3u) * TN + bc] = w.b.y;
        b_tile[o.y * TN + bc] = w.c.x;
        b_tile[(o.y + 1u) * TN + bc] = w.d.x;
        b_tile[(o.y + 2u) * TN + bc] = w.c.y;
        b_tile[(o.y + 3u) * TN + bc] = w.d.y;
        workgroupBarrier();
        multiply_tiles(tr, tc, &acc);
        workgroupBarrier();
    }

    store_tile(batch, row0, col0, tr, tc, acc);
}
