//! Every op on every backend against `webformers::reference`, over random shapes with odd and
//! non-multiple-of-4 sizes.

#[macro_use]
mod support;

use half::f16;
use support::{F32, Rng, Tolerance, assert_close, devices, f32_sum};
use webformers::{Activation, DType, GateAct, Tensor, UnaryOp, reference};

async fn read(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().await.unwrap()
}

const ODD_SIZES: &[usize] = &[1, 3, 5, 7, 17, 31, 33, 63, 65, 100, 129];

async_test! { async fn matmul_batched_matches_reference() {
    let mut rng = Rng::new(1);
    for (name, dev) in devices().await {
        for case in 0..12 {
            let (batch, m, k, n) = (1 + rng.below(3), ODD_SIZES[rng.below(ODD_SIZES.len())], ODD_SIZES[rng.below(ODD_SIZES.len())], ODD_SIZES[rng.below(ODD_SIZES.len())]);
            let a = rng.vec(batch * m * k, 1.0);
            let b = rng.vec(batch * k * n, 1.0);
            let ta = Tensor::from_f32(&a, &[batch, m, k], &dev).unwrap();
            let tb = Tensor::from_f32(&b, &[batch, k, n], &dev).unwrap();
            let got = read(&ta.matmul(&tb).unwrap()).await;
            let want = reference::matmul(&a, &b, batch, m, k, n);
            assert_close(&format!("{name} matmul case {case} [{batch},{m},{k}]x[{k},{n}]"), &got, &want, f32_sum(k));
        }
    }
}}

async_test! { async fn linear_with_hf_weight_layout_bias_and_gelu() {
    let mut rng = Rng::new(2);
    for (name, dev) in devices().await {
        for &(rows, k, n) in &[(1, 7, 5), (2, 384, 33), (37, 100, 129), (130, 65, 64), (3, 1, 9), (40, 300, 70)] {
            let x = rng.vec(rows * k, 1.0);
            let w = rng.vec(n * k, 0.5);
            let bias = rng.vec(n, 0.5);
            let tx = Tensor::from_f32(&x, &[rows, k], &dev).unwrap();
            let tw = Tensor::from_f32(&w, &[n, k], &dev).unwrap();
            let tbias = Tensor::from_f32(&bias, &[n], &dev).unwrap();
            let got = read(&tx.linear(&tw, Some(&tbias), Activation::Unary(UnaryOp::Gelu)).unwrap()).await;
            let want: Vec<f32> = reference::linear(&x, &w, Some(&bias), k, n).into_iter().map(reference::gelu).collect();
            assert_close(&format!("{name} linear+gelu {rows}x{k}->{n}"), &got, &want, f32_sum(k));

            // f16 weights: the reference sees the same rounded weights.
            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w_rounded: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            let tw16 = Tensor::from_f16(&w16, &[n, k], &dev).unwrap();
            let got = read(&tx.linear(&tw16, None, Activation::None).unwrap()).await;
            let want = reference::linear(&x, &w_rounded, None, k, n);
            assert_close(&format!("{name} linear f16 {rows}x{k}->{n}"), &got, &want, f32_sum(k));
        }
    }
}}

async_test! { async fn matmul_reads_transposed_and_broadcast_views() {
    let mut rng = Rng::new(3);
    for (name, dev) in devices().await {
        // [2, 3, 5, 7] x [7, 6] broadcasts the weight; then a transposed left operand.
        let a = rng.vec(2 * 3 * 5 * 7, 1.0);
        let b = rng.vec(7 * 6, 1.0);
        let ta = Tensor::from_f32(&a, &[2, 3, 5, 7], &dev).unwrap();
        let tb = Tensor::from_f32(&b, &[7, 6], &dev).unwrap();
        let got = read(&ta.matmul(&tb).unwrap()).await;
        let want = reference::matmul(&a, &b.repeat(6), 6, 5, 7, 6);
        assert_close(&format!("{name} broadcast matmul"), &got, &want, f32_sum(7));

        let at = Tensor::from_f32(&a[..7 * 5], &[7, 5], &dev).unwrap().t().unwrap();
        let got = read(&at.matmul(&tb).unwrap()).await;
        let a = &a;
        let a_t: Vec<f32> = (0..5).flat_map(|i| (0..7).map(move |p| a[p * 5 + i])).collect();
        assert_close(&format!("{name} transposed lhs"), &got, &reference::matmul(&a_t, &b, 1, 5, 7, 6), f32_sum(7));
    }
}}

/// `want` + `residual`, elementwise: what a fused residual epilogue must give.
fn plus(want: Vec<f32>, residual: &[f32]) -> Vec<f32> {
    want.iter().zip(residual).map(|(w, r)| w + r).collect()
}

async_test! { async fn linear_add_fuses_the_residual() {
    let mut rng = Rng::new(4);
    for (name, dev) in devices().await {
        // Decode rows (1, 2: the CPU's dot products), odd and tiled prefill shapes.
        for (case, &(rows, k, n)) in [(1, 7, 5), (2, 384, 33), (3, 65, 64), (37, 100, 129), (130, 65, 67), (40, 300, 70)].iter().enumerate() {
            let x = rng.vec(rows * k, 1.0);
            let w = rng.vec(n * k, 0.5);
            let bias = rng.vec(n, 0.5);
            let residual = rng.vec(rows * n, 2.0);
            let with_bias = case % 2 == 0;
            let tx = Tensor::from_f32(&x, &[rows, k], &dev).unwrap();
            let tr = Tensor::from_f32(&residual, &[rows, n], &dev).unwrap();
            let tbias = Tensor::from_f32(&bias, &[n], &dev).unwrap();
            let tbias = with_bias.then_some(&tbias);
            let tw = Tensor::from_f32(&w, &[n, k], &dev).unwrap();
            let got = read(&tx.linear_add(&tw, tbias, &tr).unwrap()).await;
            let want = plus(reference::linear(&x, &w, with_bias.then_some(&bias[..]), k, n), &residual);
            assert_close(&format!("{name} linear_add {rows}x{k}->{n} bias={with_bias}"), &got, &want, f32_sum(k));

            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w_rounded: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            let tw16 = Tensor::from_f16(&w16, &[n, k], &dev).unwrap();
            let got = read(&tx.linear_add(&tw16, tbias, &tr).unwrap()).await;
            let want = plus(reference::linear(&x, &w_rounded, with_bias.then_some(&bias[..]), k, n), &residual);
            assert_close(&format!("{name} linear_add f16 {rows}x{k}->{n} bias={with_bias}"), &got, &want, f32_sum(k));
        }

        // Batched operands: [2, 5, 7] x [2, 7, 6] + [2, 5, 6], and a 2-D weight under [2, 3, 7].
        let (a, b, r) = (rng.vec(2 * 5 * 7, 1.0), rng.vec(2 * 7 * 6, 1.0), rng.vec(2 * 5 * 6, 1.0));
        let ta = Tensor::from_f32(&a, &[2, 5, 7], &dev).unwrap();
        let tb = Tensor::from_f32(&b, &[2, 7, 6], &dev).unwrap();
        let tr = Tensor::from_f32(&r, &[2, 5, 6], &dev).unwrap();
        let got = read(&ta.matmul_add(&tb, None, &tr).unwrap()).await;
        assert_close(&format!("{name} batched matmul_add"), &got, &plus(reference::matmul(&a, &b, 2, 5, 7, 6), &r), f32_sum(7));
        let w = rng.vec(6 * 7, 1.0);
        let tw = Tensor::from_f32(&w, &[6, 7], &dev).unwrap();
        let ta = Tensor::from_f32(&a[..2 * 3 * 7], &[2, 3, 7], &dev).unwrap();
        let tr = Tensor::from_f32(&r[..2 * 3 * 6], &[2, 3, 6], &dev).unwrap();
        let got = read(&ta.linear_add(&tw, None, &tr).unwrap()).await;
        let want = plus(reference::linear(&a[..2 * 3 * 7], &w, None, 7, 6), &r[..2 * 3 * 6]);
        assert_close(&format!("{name} linear_add over a batch"), &got, &want, f32_sum(7));

        // The residual is an operand of the output's shape, not broadcast.
        let bad = Tensor::from_f32(&r[..6], &[1, 6], &dev).unwrap();
        assert!(ta.linear_add(&tw, None, &bad).is_err());
    }
}}

// A few rows against f32 / f16 weights whose rows are whole 32-value units: on the GPU the
// decode kernel (one pass over W) instead of a 64x64 tile per row; where a view cannot be read
// as word-aligned rows (an f16 weight starting at an odd element), the tiled kernel. Every
// epilogue (bias and activation, residual, the SwiGLU gate read in place), a weight that is a
// view of a larger one, a batched product against a transposed operand (attention's q K^T).
async_test! { async fn decode_rows_over_f32_and_f16_weights() {
    let mut rng = Rng::new(41);
    for (name, dev) in devices().await {
        for (case, &(rows, k, n)) in [(1, 32, 1), (1, 96, 129), (2, 64, 5), (3, 1024, 37), (5, 128, 1031), (8, 32, 256), (9, 64, 33)].iter().enumerate() {
            let x = rng.vec(rows * k, 1.0);
            // One more weight row than used: the weight is rows [1, n + 1) of it, a view with an
            // offset of k elements (even: f16 rows stay word-aligned).
            let w_all = rng.vec((n + 1) * k, 0.5);
            let w = &w_all[k..];
            let bias = rng.vec(n, 0.5);
            let residual = rng.vec(rows * n, 2.0);
            let tx = Tensor::from_f32(&x, &[rows, k], &dev).unwrap();
            let tbias = Tensor::from_f32(&bias, &[n], &dev).unwrap();
            let tr = Tensor::from_f32(&residual, &[rows, n], &dev).unwrap();
            for dtype in [DType::F32, DType::F16] {
                let tw = Tensor::from_f32(&w_all, &[n + 1, k], &dev).unwrap().to_dtype(dtype).unwrap().narrow(0, 1, n).unwrap();
                let seen = read(&tw.to_dtype(DType::F32).unwrap()).await;
                if dtype == DType::F32 {
                    assert_eq!(seen, w, "f32 weights as they are");
                }
                let what = format!("{name} {dtype} {rows}x{k}->{n}");
                let got = read(&tx.linear(&tw, Some(&tbias), Activation::Unary(UnaryOp::Gelu)).unwrap()).await;
                let want: Vec<f32> = reference::linear(&x, &seen, Some(&bias), k, n).into_iter().map(reference::gelu).collect();
                assert_close(&format!("{what} linear+bias+gelu"), &got, &want, f32_sum(k));
                let got = read(&tx.linear_add(&tw, (case % 2 == 0).then_some(&tbias), &tr).unwrap()).await;
                let want = plus(reference::linear(&x, &seen, (case % 2 == 0).then_some(&bias[..]), k, n), &residual);
                assert_close(&format!("{what} linear_add"), &got, &want, f32_sum(k));
                // The gate and up halves of one [rows, 2k] tensor, read in place.
                let gu = rng.vec(rows * 2 * k, 2.0);
                let tgu = Tensor::from_f32(&gu, &[rows, 2 * k], &dev).unwrap();
                let (gate, up) = (tgu.narrow(1, 0, k).unwrap(), tgu.narrow(1, k, k).unwrap());
                let got = read(&gate.silu_mul_linear(&up, &tw, None, Some(&tr)).unwrap()).await;
                let want = plus(reference::linear(&swiglu(&gu, k, true), &seen, None, k, n), &residual);
                assert_close(&format!("{what} silu_mul_linear"), &got, &want, f32_sum(k));
            }
        }

        // f16 rows at an odd element offset: not word-aligned, so the tiled kernel reads them.
        let (k, n) = (64, 9);
        let w_all: Vec<f16> = rng.vec(n * k + 1, 0.5).into_iter().map(f16::from_f32).collect();
        let tw = Tensor::from_f16(&w_all, &[n * k + 1], &dev).unwrap().narrow(0, 1, n * k).unwrap().reshape(&[n, k]).unwrap();
        let seen: Vec<f32> = w_all[1..].iter().map(|v| v.to_f32()).collect();
        let x = rng.vec(2 * k, 1.0);
        let tx = Tensor::from_f32(&x, &[2, k], &dev).unwrap();
        let got = read(&tx.linear(&tw, None, Activation::None).unwrap()).await;
        assert_close(&format!("{name} f16 weight at an odd offset"), &got, &reference::linear(&x, &seen, None, k, n), f32_sum(k));

        // Attention's scores for one query row per head: [4, 1, 64] x K^T, K [4, 19, 64].
        let (heads, keys, d) = (4, 19, 64);
        let q = rng.vec(heads * d, 1.0);
        let kv = rng.vec(heads * keys * d, 1.0);
        let tq = Tensor::from_f32(&q, &[heads, 1, d], &dev).unwrap();
        let tk = Tensor::from_f32(&kv, &[heads, keys, d], &dev).unwrap();
        let got = read(&tq.matmul(&tk.transpose(1, 2).unwrap()).unwrap()).await;
        let kt: Vec<f32> = (0..heads).flat_map(|h| { let kv = &kv; (0..d).flat_map(move |c| (0..keys).map(move |j| kv[(h * keys + j) * d + c])) }).collect();
        assert_close(&format!("{name} q K^T per head"), &got, &reference::matmul(&q, &kt, heads, 1, d, keys), f32_sum(d));
    }
}}

/// silu(gate) * up for rows of [gate | up] (`gate_first`) or [up | gate], each half `k` wide.
fn swiglu(gu: &[f32], k: usize, gate_first: bool) -> Vec<f32> {
    gu.chunks(2 * k)
        .flat_map(|row| {
            let (g, u) = if gate_first { row.split_at(k) } else { (&row[k..], &row[..k]) };
            g.iter().zip(u).map(|(&g, &u)| reference::silu(g) * u).collect::<Vec<_>>()
        })
        .collect()
}

async_test! { async fn silu_mul_linear_reads_gate_and_up_in_place() {
    let mut rng = Rng::new(5);
    for (name, dev) in devices().await {
        for (case, &(rows, k, n)) in [(1, 7, 5), (2, 96, 33), (3, 65, 64), (37, 100, 129), (130, 33, 67)].iter().enumerate() {
            let gu = rng.vec(rows * 2 * k, 2.0);
            let w = rng.vec(n * k, 0.5);
            let residual = rng.vec(rows * n, 2.0);
            let tgu = Tensor::from_f32(&gu, &[rows, 2 * k], &dev).unwrap();
            let tr = Tensor::from_f32(&residual, &[rows, n], &dev).unwrap();
            let (lo, hi) = (tgu.narrow(1, 0, k).unwrap(), tgu.narrow(1, k, k).unwrap());
            // Gate first (as Llama's fused gate_up) and up first: the gate before or after A.
            let gate_first = case % 2 == 0;
            let (gate, up) = if gate_first { (&lo, &hi) } else { (&hi, &lo) };
            let x = swiglu(&gu, k, gate_first);
            let with_residual = case != 1;
            let tr = with_residual.then_some(&tr);
            let tw = Tensor::from_f32(&w, &[n, k], &dev).unwrap();
            let got = read(&gate.silu_mul_linear(up, &tw, None, tr).unwrap()).await;
            let mut want = reference::linear(&x, &w, None, k, n);
            if with_residual {
                want = plus(want, &residual);
            }
            let what = format!("{name} silu_mul_linear {rows}x{k}->{n} gate_first={gate_first} residual={with_residual}");
            assert_close(&what, &got, &want, f32_sum(k));

            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w_rounded: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            let tw16 = Tensor::from_f16(&w16, &[n, k], &dev).unwrap();
            let got = read(&gate.silu_mul_linear(up, &tw16, None, tr).unwrap()).await;
            let mut want = reference::linear(&x, &w_rounded, None, k, n);
            if with_residual {
                want = plus(want, &residual);
            }
            assert_close(&format!("{what} f16"), &got, &want, f32_sum(k));
        }

        // Gate and up from different tensors: a SiluMul first, the same result.
        let (g, u, w) = (rng.vec(3 * 9, 2.0), rng.vec(3 * 9, 2.0), rng.vec(4 * 9, 0.5));
        let tg = Tensor::from_f32(&g, &[3, 9], &dev).unwrap();
        let tu = Tensor::from_f32(&u, &[3, 9], &dev).unwrap();
        let tw = Tensor::from_f32(&w, &[4, 9], &dev).unwrap();
        let got = read(&tg.silu_mul_linear(&tu, &tw, None, None).unwrap()).await;
        let x: Vec<f32> = g.iter().zip(&u).map(|(&g, &u)| reference::silu(g) * u).collect();
        assert_close(&format!("{name} silu_mul_linear of two tensors"), &got, &reference::linear(&x, &w, None, 9, 4), f32_sum(9));
    }
}}

async_test! { async fn gated_gelu_linear_reads_gate_and_up_in_place() {
    // T5 v1.1's DenseGatedActDense: wo(gelu_new(wi_0 x) * wi_1 x), the two halves of one
    // fused projection read in place, as silu_mul_linear reads SwiGLU's.
    let mut rng = Rng::new(15);
    for (name, dev) in devices().await {
        for (case, &(rows, k, n)) in [(1, 7, 5), (3, 65, 64), (37, 100, 129)].iter().enumerate() {
            let gu = rng.vec(rows * 2 * k, 3.0);
            let w = rng.vec(n * k, 0.5);
            let residual = rng.vec(rows * n, 2.0);
            let tgu = Tensor::from_f32(&gu, &[rows, 2 * k], &dev).unwrap();
            let (gate, up) = (tgu.narrow(1, 0, k).unwrap(), tgu.narrow(1, k, k).unwrap());
            let x: Vec<f32> = gu.chunks(2 * k).flat_map(|row| (0..k).map(move |i| reference::gelu_tanh(row[i]) * row[k + i])).collect();
            let with_residual = case != 1;
            let tr = Tensor::from_f32(&residual, &[rows, n], &dev).unwrap();
            let tr = with_residual.then_some(&tr);
            let mut want = reference::linear(&x, &w, None, k, n);
            if with_residual {
                want = plus(want, &residual);
            }
            let what = format!("{name} gated gelu linear {rows}x{k}->{n} residual={with_residual}");
            let tw = Tensor::from_f32(&w, &[n, k], &dev).unwrap();
            let got = read(&gate.gated_linear(GateAct::GeluTanh, &up, &tw, None, tr).unwrap()).await;
            assert_close(&what, &got, &want, f32_sum(k));
            // and not SwiGLU: the activation is the one asked for
            let silu = read(&gate.gated_linear(GateAct::Silu, &up, &tw, None, tr).unwrap()).await;
            assert!(silu.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-2), "{what}: silu gives the same");

            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w_rounded: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            let got = read(&gate.gated_linear(GateAct::GeluTanh, &up, &Tensor::from_f16(&w16, &[n, k], &dev).unwrap(), None, tr).unwrap()).await;
            let mut want = reference::linear(&x, &w_rounded, None, k, n);
            if with_residual {
                want = plus(want, &residual);
            }
            assert_close(&format!("{what} f16"), &got, &want, f32_sum(k));
        }

        // Gate and up from different tensors: gelu, then a product, the same result.
        let (g, u, w) = (rng.vec(3 * 9, 3.0), rng.vec(3 * 9, 2.0), rng.vec(4 * 9, 0.5));
        let tg = Tensor::from_f32(&g, &[3, 9], &dev).unwrap();
        let tu = Tensor::from_f32(&u, &[3, 9], &dev).unwrap();
        let tw = Tensor::from_f32(&w, &[4, 9], &dev).unwrap();
        let got = read(&tg.gated_linear(GateAct::GeluTanh, &tu, &tw, None, None).unwrap()).await;
        let x: Vec<f32> = g.iter().zip(&u).map(|(&g, &u)| reference::gelu_tanh(g) * u).collect();
        assert_close(&format!("{name} gated gelu linear of two tensors"), &got, &reference::linear(&x, &w, None, 9, 4), f32_sum(9));
    }
}}

async_test! { async fn unary_ops_match_reference() {
    let mut rng = Rng::new(4);
    let cases: &[(UnaryOp, fn(f32) -> f32)] = &[
        (UnaryOp::Gelu, reference::gelu),
        (UnaryOp::GeluTanh, reference::gelu_tanh),
        (UnaryOp::Silu, reference::silu),
        (UnaryOp::Relu, |x| x.max(0.0)),
        (UnaryOp::Neg, |x| -x),
        (UnaryOp::Exp, |x| (x as f64).exp() as f32),
        (UnaryOp::Tanh, |x| (x as f64).tanh() as f32),
    ];
    for (name, dev) in devices().await {
        for &n in &[1usize, 7, 1000, 70_001] {
            let x = rng.vec(n, 6.0);
            let t = Tensor::from_f32(&x, &[n], &dev).unwrap();
            for (op, f) in cases {
                let got = read(&t.unary(*op).unwrap()).await;
                let want: Vec<f32> = x.iter().map(|&v| f(v)).collect();
                let tol = Tolerance { abs: 2e-6, rel: 2e-6 };
                assert_close(&format!("{name} {op:?} n={n}"), &got, &want, tol);
            }
        }
    }
}}

async_test! { async fn binary_ops_broadcast() {
    let mut rng = Rng::new(5);
    for (name, dev) in devices().await {
        let (r, c) = (13, 35);
        let a = rng.vec(r * c, 2.0);
        let row = rng.vec(c, 2.0);
        let col: Vec<f32> = rng.vec(r, 2.0).iter().map(|v| v.abs() + 0.5).collect();
        let ta = Tensor::from_f32(&a, &[r, c], &dev).unwrap();
        let trow = Tensor::from_f32(&row, &[c], &dev).unwrap();
        let tcol = Tensor::from_f32(&col, &[r, 1], &dev).unwrap();
        let got = read(&ta.add(&trow).unwrap()).await;
        let want: Vec<f32> = (0..r * c).map(|i| a[i] + row[i % c]).collect();
        assert_close(&format!("{name} add row"), &got, &want, F32);
        let got = read(&ta.binary(&tcol, webformers::BinaryOp::Div).unwrap()).await;
        let want: Vec<f32> = (0..r * c).map(|i| a[i] / col[i / c]).collect();
        assert_close(&format!("{name} div col"), &got, &want, F32);
        let got = read(&ta.t().unwrap().mul(&ta.t().unwrap()).unwrap()).await;
        let want: Vec<f32> = (0..c).flat_map(|j| (0..r).map(move |i| (i, j))).map(|(i, j)| a[i * c + j] * a[i * c + j]).collect();
        assert_close(&format!("{name} mul transposed views"), &got, &want, F32);
    }
}}

async_test! { async fn norms_match_reference() {
    let mut rng = Rng::new(6);
    for (name, dev) in devices().await {
        for &(rows, h) in &[(1, 1), (3, 7), (5, 384), (9, 1000), (2, 4097)] {
            let x = rng.vec(rows * h, 3.0);
            let res = rng.vec(rows * h, 1.0);
            let w = rng.vec(h, 1.0);
            let b = rng.vec(h, 1.0);
            let t = |v: &[f32], d: &[usize]| Tensor::from_f32(v, d, &dev).unwrap();
            let (tx, tres, tw, tb) = (t(&x, &[rows, h]), t(&res, &[rows, h]), t(&w, &[h]), t(&b, &[h]));
            let tol = Tolerance { abs: 2e-5, rel: 2e-5 };
            let got = read(&tx.layer_norm(Some(&tres), &tw, Some(&tb), 1e-12).unwrap()).await;
            assert_close(&format!("{name} layer norm + residual {rows}x{h}"), &got, &reference::layer_norm(&x, Some(&res), &w, Some(&b), h, 1e-12), tol);
            let got = read(&tx.layer_norm(None, &tw, None, 1e-5).unwrap()).await;
            assert_close(&format!("{name} layer norm {rows}x{h}"), &got, &reference::layer_norm(&x, None, &w, None, h, 1e-5), tol);
            let got = read(&tx.rms_norm(&tw, 1e-6).unwrap()).await;
            assert_close(&format!("{name} rms norm {rows}x{h}"), &got, &reference::rms_norm(&x, &w, h, 1e-6), tol);
            let got = read(&tx.l2_normalize(1e-12).unwrap()).await;
            assert_close(&format!("{name} l2 {rows}x{h}"), &got, &reference::l2_normalize(&x, h, 1e-12), tol);
        }
    }
}}

async_test! { async fn softmax_with_broadcast_mask() {
    let mut rng = Rng::new(7);
    for (name, dev) in devices().await {
        for &(b, heads, s) in &[(1, 1, 1), (2, 3, 5), (3, 2, 77), (1, 1, 1030)] {
            let x = rng.vec(b * heads * s * s, 4.0);
            // Key padding mask [b, 1, 1, s]: the last few keys of each batch are masked out.
            let mut mask = vec![0f32; b * s];
            for bi in 0..b {
                for j in s - bi.min(s - 1)..s {
                    mask[bi * s + j] = f32::NEG_INFINITY;
                }
            }
            let tx = Tensor::from_f32(&x, &[b, heads, s, s], &dev).unwrap();
            let tm = Tensor::from_f32(&mask, &[b, 1, 1, s], &dev).unwrap();
            let got = read(&tx.softmax(Some(&tm), 0.125).unwrap()).await;
            let full_mask: Vec<f32> = (0..x.len()).map(|i| mask[(i / (heads * s * s)) * s + i % s]).collect();
            assert_close(&format!("{name} softmax {b}x{heads}x{s}"), &got, &reference::softmax(&x, Some(&full_mask), s, 0.125), F32);
        }
    }
}}

async_test! { async fn attention_over_packed_sequences() {
    let mut rng = Rng::new(8);
    for (name, dev) in devices().await {
        // Windows that matter: shorter than the sequences, across the GPU kernel's 64-key tiles,
        // zero (a query sees itself only), with causal, and wider than every sequence.
        for &(ref lens, hq, hkv, d, causal, window) in &[
            (vec![1usize], 1usize, 1usize, 1usize, false, None),
            (vec![5, 1, 9], 3, 3, 7, false, None),
            (vec![70, 3], 12, 12, 32, false, None),
            (vec![130], 4, 2, 64, true, None),
            (vec![17, 33], 6, 1, 100, true, None),
            (vec![3], 2, 2, 256, false, None),
            (vec![40, 3, 17], 4, 4, 8, false, Some(4usize)),
            (vec![200, 9], 4, 2, 64, false, Some(50)),
            (vec![150], 2, 1, 33, false, Some(64)),
            (vec![5, 7], 1, 1, 3, false, Some(0)),
            (vec![90, 20], 3, 1, 16, true, Some(7)),
            (vec![6, 2], 2, 2, 5, false, Some(1000)),
        ] {
            let t: usize = lens.iter().sum();
            let mut offsets = vec![0u32];
            for l in lens {
                offsets.push(offsets.last().unwrap() + *l as u32);
            }
            // q, k, v as views into one fused projection [T, (hq + 2 hkv) * d], as models produce them.
            let width = (hq + 2 * hkv) * d;
            let qkv = rng.vec(t * width, 1.0);
            let tqkv = Tensor::from_f32(&qkv, &[t, width], &dev).unwrap();
            // Strided views (no copies): the kernels read them in place.
            let q = tqkv.narrow(1, 0, hq * d).unwrap().reshape(&[t, hq, d]).unwrap();
            let k = tqkv.narrow(1, hq * d, hkv * d).unwrap().reshape(&[t, hkv, d]).unwrap();
            let v = tqkv.narrow(1, (hq + hkv) * d, hkv * d).unwrap().reshape(&[t, hkv, d]).unwrap();
            let toff = Tensor::from_u32(&offsets, &[offsets.len()], &dev).unwrap();
            let scale = 1.0 / (d as f32).sqrt();
            let got = match window {
                None => read(&q.attention(&k, &v, &toff, scale, causal).unwrap()).await,
                Some(_) => read(&q.attention_window(&k, &v, &toff, scale, causal, window).unwrap()).await,
            };
            let split = |from: usize, heads: usize| -> Vec<f32> { (0..t).flat_map(|r| qkv[r * width + from..r * width + from + heads * d].to_vec()).collect() };
            let (sq, sk, sv) = (split(0, hq), split(hq * d, hkv), split((hq + hkv) * d, hkv));
            let want = reference::attention_window(&sq, &sk, &sv, (&offsets, &offsets), hq, hkv, d, scale, causal, window);
            let label = format!("{name} attention {lens:?} hq={hq} hkv={hkv} d={d} causal={causal} window={window:?}");
            assert_close(&label, &got, &want, f32_sum(d));
            if window.is_none() {
                assert_eq!(want, reference::attention(&sq, &sk, &sv, &offsets, hq, hkv, d, scale, causal), "{label}: reference");
            } else if window.is_some_and(|w| w < lens.iter().copied().max().unwrap_or(0) - 1) {
                // The window must change the result, or this case tests nothing.
                let full = reference::attention(&sq, &sk, &sv, &offsets, hq, hkv, d, scale, causal);
                assert!(want.iter().zip(&full).any(|(a, b)| (a - b).abs() > 1e-3), "{label}: the window changes nothing");
            }
        }
    }
}}

async_test! { async fn attention_over_a_cache_with_a_sliding_window() {
    // A decoder's sliding-window layers (Gemma 3): causal queries that are the last rows of
    // longer key sequences (a KV cache), each seeing the `window` keys before it and itself;
    // single decode steps, a chunk after a cache, a prefill across the GPU's 64-key tiles,
    // window 0, and a window wider than the sequence.
    let mut rng = Rng::new(17);
    for (name, dev) in devices().await {
        for &(ref q_lens, ref k_lens, hq, hkv, d, window) in &[
            (vec![1usize], vec![90usize], 4usize, 2usize, 32usize, 3usize),
            (vec![5, 1], vec![12, 66], 2, 1, 16, 4),
            (vec![70], vec![70], 4, 4, 8, 10),
            (vec![1, 2], vec![130, 9], 2, 2, 64, 64),
            (vec![3], vec![20], 1, 1, 5, 0),
            (vec![4], vec![6], 2, 1, 7, 100),
        ] {
            let offsets = |lens: &[usize]| -> Vec<u32> {
                let mut o = vec![0u32];
                for l in lens {
                    o.push(o.last().unwrap() + *l as u32);
                }
                o
            };
            let (qo, ko) = (offsets(q_lens), offsets(k_lens));
            let (tq, tk) = (*qo.last().unwrap() as usize, *ko.last().unwrap() as usize);
            let (q, k, v) = (rng.vec(tq * hq * d, 1.0), rng.vec(tk * hkv * d, 1.0), rng.vec(tk * hkv * d, 1.0));
            let t = |x: &[f32], dims: &[usize]| Tensor::from_f32(x, dims, &dev).unwrap();
            let (tqo, tko) = (Tensor::from_u32(&qo, &[qo.len()], &dev).unwrap(), Tensor::from_u32(&ko, &[ko.len()], &dev).unwrap());
            let scale = 1.0 / (d as f32).sqrt();
            let got = read(
                &t(&q, &[tq, hq, d])
                    .attention_kv_window(&t(&k, &[tk, hkv, d]), &t(&v, &[tk, hkv, d]), &tqo, &tko, scale, true, Some(window))
                    .unwrap(),
            )
            .await;
            let want = reference::attention_window(&q, &k, &v, (&qo, &ko), hq, hkv, d, scale, true, Some(window));
            let label = format!("{name} windowed attention q {q_lens:?} k {k_lens:?} hq={hq} hkv={hkv} d={d} window={window}");
            assert_close(&label, &got, &want, f32_sum(d));
            let full = reference::attention_kv(&q, &k, &v, (&qo, &ko), hq, hkv, d, scale, true);
            let longest = k_lens.iter().copied().max().unwrap_or(0);
            if window + 1 < longest {
                assert!(want.iter().zip(&full).any(|(a, b)| (a - b).abs() > 1e-3), "{label}: the window changes nothing");
            } else {
                assert_eq!(want, full, "{label}: a window past the sequence is full attention");
            }
        }
    }
}}

async_test! { async fn attention_with_a_distance_bias() {
    // T5's relative position bias: a table [hq, 2c + 1] read at c + clamp(key - query position),
    // over packed sequences (bidirectional, as T5's encoder), causal over a cache (queries the
    // last rows of longer key sequences, as its decoder's steps), across the GPU's 64-key tiles,
    // with distances past the table's ends (clamped) and a table wider than every sequence.
    let mut rng = Rng::new(16);
    for (name, dev) in devices().await {
        for &(ref q_lens, ref k_lens, hq, hkv, d, causal, c) in &[
            (vec![1usize], vec![1usize], 1usize, 1usize, 1usize, false, 0usize),
            (vec![5, 1, 9], vec![5, 1, 9], 3, 3, 7, false, 3),
            (vec![130], vec![130], 4, 2, 16, false, 20),
            (vec![70, 3], vec![70, 3], 2, 2, 32, true, 200),
            (vec![1], vec![90], 4, 4, 8, true, 20),
            (vec![3, 1], vec![17, 66], 2, 1, 24, true, 10),
        ] {
            let offsets = |lens: &[usize]| -> Vec<u32> {
                let mut o = vec![0u32];
                for l in lens {
                    o.push(o.last().unwrap() + *l as u32);
                }
                o
            };
            let (qo, ko) = (offsets(q_lens), offsets(k_lens));
            let (tq, tk) = (*qo.last().unwrap() as usize, *ko.last().unwrap() as usize);
            let (q, k, v) = (rng.vec(tq * hq * d, 1.0), rng.vec(tk * hkv * d, 1.0), rng.vec(tk * hkv * d, 1.0));
            let bias = rng.vec(hq * (2 * c + 1), 2.0);
            let t = |x: &[f32], dims: &[usize]| Tensor::from_f32(x, dims, &dev).unwrap();
            let (tqo, tko) = (Tensor::from_u32(&qo, &[qo.len()], &dev).unwrap(), Tensor::from_u32(&ko, &[ko.len()], &dev).unwrap());
            let scale = 1.0;
            let got = read(
                &t(&q, &[tq, hq, d])
                    .attention_kv_bias(&t(&k, &[tk, hkv, d]), &t(&v, &[tk, hkv, d]), &tqo, &tko, &t(&bias, &[hq, 2 * c + 1]), scale, causal)
                    .unwrap(),
            )
            .await;
            let want = reference::attention_distance_bias(&q, &k, &v, (&qo, &ko), hq, hkv, d, scale, causal, &bias);
            let label = format!("{name} attention with bias q {q_lens:?} k {k_lens:?} hq={hq} hkv={hkv} d={d} causal={causal} c={c}");
            assert_close(&label, &got, &want, f32_sum(d));
            // The bias must change the result, or this case tests nothing.
            let plain = reference::attention_kv(&q, &k, &v, (&qo, &ko), hq, hkv, d, scale, causal);
            if k_lens.iter().any(|&l| l > 1) {
                assert!(want.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 1e-3), "{label}: the bias changes nothing");
            }
        }
        // A bias whose width is even, or whose heads are not q's, is refused.
        let x = Tensor::from_f32(&[0.0; 8], &[2, 2, 2], &dev).unwrap();
        let off = Tensor::from_u32(&[0, 2], &[2], &dev).unwrap();
        for dims in [[2usize, 4], [3, 5]] {
            let bias = Tensor::from_f32(&vec![0.0; dims[0] * dims[1]], &dims, &dev).unwrap();
            assert!(x.attention_kv_bias(&x, &x, &off, &off, &bias, 1.0, false).is_err(), "{name} bias {dims:?}");
        }
    }
}}

async_test! { async fn pooling_unpack_and_gather() {
    let mut rng = Rng::new(9);
    for (name, dev) in devices().await {
        let (h, lens) = (37usize, [3usize, 1, 8]);
        let t: usize = lens.iter().sum();
        let offsets = [0u32, 3, 4, 12];
        let x = rng.vec(t * h, 1.0);
        let tx = Tensor::from_f32(&x, &[t, h], &dev).unwrap();
        let toff = Tensor::from_u32(&offsets, &[4], &dev).unwrap();
        let got = read(&tx.segment_pool(&toff, webformers::PoolMode::Mean).unwrap()).await;
        assert_close(&format!("{name} mean pool"), &got, &reference::segment_pool(&x, &offsets, h, false), F32);
        let got = read(&tx.segment_pool(&toff, webformers::PoolMode::Cls).unwrap()).await;
        assert_close(&format!("{name} cls pool"), &got, &reference::segment_pool(&x, &offsets, h, true), F32);
        let got = read(&tx.unpack(&toff, 8).unwrap()).await;
        let mut want = vec![0f32; 3 * 8 * h];
        for s in 0..3 {
            for r in offsets[s] as usize..offsets[s + 1] as usize {
                let pos = r - offsets[s] as usize;
                want[(s * 8 + pos) * h..][..h].copy_from_slice(&x[r * h..][..h]);
            }
        }
        assert_close(&format!("{name} unpack"), &got, &want, F32);

        let (vocab, dim) = (50, 13);
        let table = rng.vec(vocab * dim, 1.0);
        let ids = [0u32, 49, 7, 7, 3];
        let tt = Tensor::from_f32(&table, &[vocab, dim], &dev).unwrap();
        let tids = Tensor::from_u32(&ids, &[5], &dev).unwrap();
        let got = read(&tt.gather_rows(&tids).unwrap()).await;
        let want: Vec<f32> = ids.iter().flat_map(|&i| table[i as usize * dim..][..dim].to_vec()).collect();
        assert_close(&format!("{name} gather"), &got, &want, Tolerance { abs: 0.0, rel: 0.0 });
        let t16: Vec<f16> = table.iter().map(|&v| f16::from_f32(v)).collect();
        let tt16 = Tensor::from_f16(&t16, &[vocab, dim], &dev).unwrap();
        let got = read(&tt16.gather_rows(&tids).unwrap()).await;
        let want: Vec<f32> = ids.iter().flat_map(|&i| t16[i as usize * dim..][..dim].iter().map(|v| v.to_f32()).collect::<Vec<_>>()).collect();
        assert_close(&format!("{name} gather f16"), &got, &want, Tolerance { abs: 0.0, rel: 0.0 });
    }
}}

async_test! { async fn copies_convert_dtypes_and_strides() {
    let mut rng = Rng::new(10);
    for (name, dev) in devices().await {
        let x = rng.vec(3 * 5 * 7, 10.0);
        let t = Tensor::from_f32(&x, &[3, 5, 7], &dev).unwrap();
        let p = t.permute(&[2, 0, 1]).unwrap();
        let want: Vec<f32> = (0..7).flat_map(|k| (0..3).flat_map(move |i| (0..5).map(move |j| (i, j, k)))).map(|(i, j, k)| x[(i * 5 + j) * 7 + k]).collect();
        assert_close(&format!("{name} permute copy"), &read(&p.contiguous().unwrap()).await, &want, Tolerance { abs: 0.0, rel: 0.0 });
        let h = p.to_dtype(DType::F16).unwrap();
        let want16: Vec<f32> = want.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        assert_close(&format!("{name} f16 round trip"), &read(&h).await, &want16, Tolerance { abs: 0.0, rel: 0.0 });
        let bf: Vec<half::bf16> = x.iter().map(|&v| half::bf16::from_f32(v)).collect();
        let tb = Tensor::from_bytes(bytemuck::cast_slice(&bf), DType::BF16, &[3, 5, 7], &dev).unwrap();
        let want_bf: Vec<f32> = bf.iter().map(|v| v.to_f32()).collect();
        assert_close(&format!("{name} bf16 to f32"), &read(&tb).await, &want_bf, Tolerance { abs: 0.0, rel: 0.0 });
    }
}}

async_test! { async fn one_graph_with_many_ops_and_reuse_of_intermediates() {
    // A small encoder-like chain realized once: exercises liveness and the GPU buffer pool.
    let mut rng = Rng::new(11);
    for (name, dev) in devices().await {
        let (t, h) = (9, 24);
        let x = rng.vec(t * h, 1.0);
        let w = rng.vec(h * h, 0.3);
        let g = vec![1.0f32; h];
        let tx = Tensor::from_f32(&x, &[t, h], &dev).unwrap();
        let tw = Tensor::from_f32(&w, &[h, h], &dev).unwrap();
        let tg = Tensor::from_f32(&g, &[h], &dev).unwrap();
        let mut y = tx.clone();
        let mut want = x.clone();
        for _ in 0..5 {
            let z = y.linear(&tw, None, Activation::Unary(UnaryOp::Gelu)).unwrap();
            y = z.layer_norm(Some(&y), &tg, None, 1e-5).unwrap();
            let zr: Vec<f32> = reference::linear(&want, &w, None, h, h).into_iter().map(reference::gelu).collect();
            want = reference::layer_norm(&zr, Some(&want), &g, None, h, 1e-5);
        }
        assert_close(&format!("{name} chain"), &read(&y).await, &want, Tolerance { abs: 1e-4, rel: 1e-4 });
        // Reading twice gives the same values (the graph was replaced by its result).
        assert_close(&format!("{name} chain reread"), &read(&y).await, &want, Tolerance { abs: 1e-4, rel: 1e-4 });
    }
}}

async_test! { async fn devices_report_their_backends() {
    // Logs what every other test runs on (`--nocapture` shows it), and fails where a required GPU
    // is missing or the wasm CPU backend does not use the simd128 (or relaxed-simd) kernels it
    // was built with.
    let devs = devices().await;
    for (name, dev) in &devs {
        test_log!("{name}: {}", dev.describe());
    }
    if support::gpu_required() {
        assert!(devs.iter().any(|(_, d)| d.is_gpu()), "WEBFORMERS_REQUIRE_GPU=1 but no GPU device: {devs:?}");
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(feature = "relaxed-simd")))]
    assert!(webformers::Device::Cpu.describe().contains("(simd128"), "{}", webformers::Device::Cpu.describe());
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
    assert!(webformers::Device::Cpu.describe().contains("(relaxed-simd"), "{}", webformers::Device::Cpu.describe());
}}

async_test! { async fn take_along_last_matches_reference() {
    let mut rng = Rng::new(12);
    for (name, dev) in devices().await {
        // (leading batch dims, R, N, M): no batch, one and two batch dims, odd sizes, M > N and M < N.
        let cases: &[(&[usize], usize, usize, usize)] = &[
            (&[], 1, 1, 1),
            (&[], 5, 7, 3),
            (&[3], 17, 33, 17),
            (&[2, 3], 31, 64, 31),
            (&[5], 65, 17, 100),
            (&[1, 2], 129, 256, 129),
            (&[7], 3, 1, 5),
        ];
        for &(lead, r, n, m) in cases {
            let batch: usize = lead.iter().product();
            let x = rng.vec(batch * r * n, 1.0);
            // Mostly valid indices, and some past the end, which read the last column.
            let index: Vec<u32> = (0..r * m).map(|_| if rng.below(10) == 0 { (n + rng.below(5)) as u32 } else { rng.below(n) as u32 }).collect();
            let mut dims = lead.to_vec();
            dims.extend([r, n]);
            let tx = Tensor::from_f32(&x, &dims, &dev).unwrap();
            let ti = Tensor::from_u32(&index, &[r, m], &dev).unwrap();
            let got = tx.take_along_last(&ti).unwrap();
            let mut want_dims = lead.to_vec();
            want_dims.extend([r, m]);
            assert_eq!(got.dims(), &want_dims[..], "{name} take_along_last dims");
            let want = reference::take_along_last(&x, &index, r, n, m);
            assert_close(&format!("{name} take_along_last {lead:?} R={r} N={n} M={m}"), &read(&got).await, &want, Tolerance { abs: 0.0, rel: 0.0 });
        }

        // A strided view (a transposed input) is read as its values, not its storage order.
        let (r, n) = (9, 13);
        let x = rng.vec(2 * n * r, 1.0);
        let tx = Tensor::from_f32(&x, &[2, n, r], &dev).unwrap().transpose(1, 2).unwrap();
        let index: Vec<u32> = (0..r * 4).map(|_| rng.below(n) as u32).collect();
        let ti = Tensor::from_u32(&index, &[r, 4], &dev).unwrap();
        let dense: Vec<f32> = (0..2).flat_map(|b| (0..r).flat_map(move |i| (0..n).map(move |j| (b, i, j)))).map(|(b, i, j)| x[(b * n + j) * r + i]).collect();
        let got = read(&tx.take_along_last(&ti).unwrap()).await;
        assert_close(&format!("{name} take_along_last of a transposed view"), &got, &reference::take_along_last(&dense, &index, r, n, 4), Tolerance { abs: 0.0, rel: 0.0 });

        // Shapes that do not fit are errors, not panics.
        let ti = Tensor::from_u32(&index, &[r, 4], &dev).unwrap();
        assert!(Tensor::from_f32(&x[..r + 1], &[r + 1], &dev).unwrap().take_along_last(&ti).is_err());
        assert!(Tensor::from_f32(&x[..(r + 1) * 2], &[r + 1, 2], &dev).unwrap().take_along_last(&ti).is_err());
        assert!(Tensor::from_f32(&[], &[r, 0], &dev).unwrap().take_along_last(&ti).is_err());
        assert!(tx.take_along_last(&Tensor::from_f32(&x[..r * 4], &[r, 4], &dev).unwrap()).is_err());
    }
}}
