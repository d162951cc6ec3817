// The register tile of the tiled matmuls (matmul.wgsl, matmul_quant.wgsl): a workgroup of 16x16
// invocations computes a TM x TN = 64 x 64 tile of C, 4x4 values each, from slices staged in
// `a_tile` [TK][TM] and `b_tile` [TK][TN]. The including shader declares TK, the two tiles, `p`
// (with m, n, act, ldc and col0) and includes matmul_io.wgsl (`write_c`).

const TM: u32 = 64u;
const TN: u32 = 64u;

// acc[i] += a_tile rows (4 of them) x b_tile columns (4 of them), over the TK staged values.
fn multiply_tiles(tr: u32, tc: u32, acc: ptr<function, array<vec4<f32>, 4>>) {
    for (var kk = 0u; kk < TK; kk++) {
        let av = vec4<f32>(a_tile[kk * TM + tr * 4u], a_tile[kk * TM + tr * 4u + 1u], a_tile[kk * TM + tr * 4u + 2u], a_tile[kk * TM + tr * 4u + 3u]);
        let bv = vec4<f32>(b_tile[kk * TN + tc * 4u], b_tile[kk * TN + tc * 4u + 1u], b_tile[kk * TN + tc * 4u + 2u], b_tile[kk * TN + tc * 4u + 3u]);
        (*acc)[0] += av.x * bv;
        (*acc)[1] += av.y * bv;
        (*acc)[2] += av.z * bv;
        (*acc)[3] += av.w * bv;
    }
}

// Writes an invocation's 4x4 values through the epilogue, skipping the tile's overhang.
fn store_tile(batch: u32, row0: u32, col0: u32, tr: u32, tc: u32, acc: array<vec4<f32>, 4>) {
    let c_base = batch * p.m * p.ldc;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + tr * 4u + i;
        if row >= p.m {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + tc * 4u + j;
            if col < p.n {
                write_c(c_base + row * p.ldc + p.col0 + col, p.col0 + col, acc[i][j]);
            }
        }
    }
}
