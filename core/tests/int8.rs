//! The int8 CPU path for Q8_0 / Q4_0 / Q4_1 weights (activations quantized per 32 values, integer
//! block dot products) against `reference::linear_int8`, over odd shapes, batches and views, on
//! whichever instruction set this process picked (run it also with WEBFORMERS_ISA=avx2 and
//! =scalar), and against the f32 path at the error that 8-bit activations allow. In Chromium too
//! (scripts/test-wasm.sh): the simd128 kernels, and the relaxed-simd ones with `--features
//! relaxed-simd`.

#[macro_use]
mod support;

use support::{Rng, Tolerance, assert_close};
use webformers::quant::{dequantize, quantize};
use webformers::{Activation, DType, Device, Tensor, UnaryOp, reference};

const TYPES: [DType; 3] = [DType::Q8_0, DType::Q4_0, DType::Q4_1];

/// The switch is process-wide: tests that flip it take this lock.
static SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn int8_on() -> std::sync::MutexGuard<'static, ()> {
    let guard = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    webformers::cpu::set_int8_matmul(true);
    guard
}

/// A weight [n, k] quantized from uniform values, and its bytes.
fn weight(rng: &mut Rng, dtype: DType, n: usize, k: usize) -> Vec<u8> {
    quantize(dtype, &rng.vec(n * k, 1.0)).unwrap()
}

/// Same integers as the reference, sums in another order and in f32: the error is f32 rounding
/// of about K / 32 block terms, relative to the terms' magnitudes (at most sum |w x| <= K here).
fn tol(k: usize) -> Tolerance {
    Tolerance { abs: 2e-6 * k as f32, rel: 1e-5 }
}

async_test! { async fn int8_linear_matches_the_reference_over_odd_shapes() {
    let _on = int8_on();
    test_log!("int8 kernels: {}", webformers::cpu::int8_isa_name());
    let mut rng = Rng::new(81);
    for dtype in TYPES {
        for k in [32, 288] {
            for n in [1, 7, 33] {
                let bytes = weight(&mut rng, dtype, n, k);
                let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], &Device::Cpu).unwrap();
                let bias = rng.vec(n, 1.0);
                let tb = Tensor::from_f32(&bias, &[n], &Device::Cpu).unwrap();
                for m in [1, 3, 4, 5, 17, 64] {
                    let x = rng.vec(m * k, 1.0);
                    let tx = Tensor::from_f32(&x, &[m, k], &Device::Cpu).unwrap();
                    for with_bias in [false, true] {
                        let got = tx.linear(&tw, with_bias.then_some(&tb), Activation::None).unwrap().to_vec_f32().await.unwrap();
                        let want = reference::linear_int8(&x, &bytes, dtype, with_bias.then_some(&bias[..]), k, n).unwrap();
                        assert_close(&format!("{dtype} int8 [{m}, {k}] x [{n}, {k}]^T bias={with_bias}"), &got, &want, tol(k));
                    }
                }
            }
        }
    }
}}

async_test! { async fn int8_linear_over_batches_views_and_activations() {
    let _on = int8_on();
    let mut rng = Rng::new(82);
    for dtype in TYPES {
        let (k, n) = (96, 23);
        let bytes = weight(&mut rng, dtype, n, k);
        let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], &Device::Cpu).unwrap();
        // Three batches of 5 rows against one weight.
        let x = rng.vec(3 * 5 * k, 1.0);
        let got = Tensor::from_f32(&x, &[3, 5, k], &Device::Cpu).unwrap().linear(&tw, None, Activation::None).unwrap();
        let want = reference::linear_int8(&x, &bytes, dtype, None, k, n).unwrap();
        assert_close(&format!("{dtype} int8 batched"), &got.to_vec_f32().await.unwrap(), &want, tol(k));
        // A transposed (non-contiguous) input.
        let xt = rng.vec(k * 6, 1.0);
        let x_rows: Vec<f32> = (0..6).flat_map(|i| (0..k).map(move |p| (i, p))).map(|(i, p)| xt[p * 6 + i]).collect();
        let t = Tensor::from_f32(&xt, &[k, 6], &Device::Cpu).unwrap().transpose(0, 1).unwrap();
        let got = t.linear(&tw, None, Activation::None).unwrap().to_vec_f32().await.unwrap();
        let want = reference::linear_int8(&x_rows, &bytes, dtype, None, k, n).unwrap();
        assert_close(&format!("{dtype} int8 transposed input"), &got, &want, tol(k));
        // Rows 2..7 of a [9, K] input (an offset into A: the last position before an LM head).
        let x9 = rng.vec(9 * k, 1.0);
        let got = Tensor::from_f32(&x9, &[9, k], &Device::Cpu)
            .unwrap()
            .narrow(0, 2, 5)
            .unwrap()
            .linear(&tw, None, Activation::None)
            .unwrap()
            .to_vec_f32().await
            .unwrap();
        let want = reference::linear_int8(&x9[2 * k..7 * k], &bytes, dtype, None, k, n).unwrap();
        assert_close(&format!("{dtype} int8 input rows 2..7"), &got, &want, tol(k));
        let got = Tensor::from_f32(&x9, &[9, k], &Device::Cpu)
            .unwrap()
            .narrow(0, 8, 1)
            .unwrap()
            .linear(&tw, None, Activation::None)
            .unwrap()
            .to_vec_f32().await
            .unwrap();
        let want = reference::linear_int8(&x9[8 * k..], &bytes, dtype, None, k, n).unwrap();
        assert_close(&format!("{dtype} int8 input row 8"), &got, &want, tol(k));
        // Weight rows 5..16 (a block offset into the tensor) and a fused GELU, on the decode
        // kernel (2 rows) and the panel GEMM (6): the whole weight's panels were packed and kept
        // above, so the slice must get its own, and the whole weight its own back after.
        let part = tw.narrow(0, 5, 11).unwrap();
        for m in [2, 6] {
            let x1 = rng.vec(m * k, 1.0);
            let tx1 = Tensor::from_f32(&x1, &[m, k], &Device::Cpu).unwrap();
            let got = tx1.linear(&part, None, Activation::Unary(UnaryOp::Gelu)).unwrap().to_vec_f32().await.unwrap();
            let rows = dtype.bytes_for(k).unwrap();
            let want: Vec<f32> = reference::linear_int8(&x1, &bytes[5 * rows..16 * rows], dtype, None, k, 11)
                .unwrap()
                .into_iter()
                .map(reference::gelu)
                .collect();
            assert_close(&format!("{dtype} int8 [{m}, {k}] x row slice + gelu"), &got, &want, Tolerance { abs: 1e-4, rel: 1e-4 });
            let got = tx1.linear(&tw, None, Activation::None).unwrap().to_vec_f32().await.unwrap();
            let want = reference::linear_int8(&x1, &bytes, dtype, None, k, n).unwrap();
            assert_close(&format!("{dtype} int8 [{m}, {k}] x the whole weight after a slice"), &got, &want, tol(k));
        }
    }
}}

async_test! { async fn int8_path_is_within_8_bit_rounding_of_the_f32_path_and_the_switch_works() {
    let _on = int8_on();
    let mut rng = Rng::new(83);
    for dtype in TYPES {
        let (m, k, n) = (9, 384, 40);
        let bytes = weight(&mut rng, dtype, n, k);
        let dense = dequantize(dtype, &bytes).unwrap();
        let x = rng.vec(m * k, 1.0);
        let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], &Device::Cpu).unwrap();
        let tx = Tensor::from_f32(&x, &[m, k], &Device::Cpu).unwrap();
        let exact = reference::linear(&x, &dense, None, k, n);
        let int8 = tx.linear(&tw, None, Activation::None).unwrap().to_vec_f32().await.unwrap();
        webformers::cpu::set_int8_matmul(false);
        let f32_path = tx.linear(&tw, None, Activation::None).unwrap().to_vec_f32().await.unwrap();
        webformers::cpu::set_int8_matmul(true);
        assert_close(&format!("{dtype} f32 path"), &f32_path, &exact, Tolerance { abs: 1e-4, rel: 1e-5 });
        // Activations rounded to 8 bits: each value off by at most half a step (amax / 254), so
        // an output by about sqrt(K) * |w| * amax / 254 / sqrt(3): 0.03 here; the worst of 360
        // outputs stays under 0.15.
        assert_close(&format!("{dtype} int8 vs exact"), &int8, &exact, Tolerance { abs: 0.15, rel: 0.0 });
        let rms = (int8.iter().zip(&exact).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / int8.len() as f32).sqrt();
        assert!(rms < 0.05, "{dtype}: int8 rms error {rms}");
        assert!(int8 != f32_path, "{dtype}: the switch did not change the path");
    }
}}

async_test! { async fn int8_rejects_weights_that_are_not_whole_blocks() {
    let _on = int8_on();
    let mut rng = Rng::new(84);
    let bytes = weight(&mut rng, DType::Q8_0, 4, 64);
    let w = Tensor::from_bytes(&bytes, DType::Q8_0, &[4, 64], &Device::Cpu).unwrap();
    let x = Tensor::from_f32(&rng.vec(2 * 16, 1.0), &[2, 16], &Device::Cpu).unwrap();
    let e = x.linear(&w.narrow(1, 8, 16).unwrap(), None, Activation::None).unwrap_err().to_string();
    assert!(e.contains("block"), "{e}");
}}

async_test! { async fn int8_linear_applies_the_activation_and_adds_the_residual_in_every_kernel() {
    let _on = int8_on();
    let mut rng = Rng::new(83);
    let k = 96;
    for dtype in TYPES {
        for n in [7, 33] {
            let bytes = weight(&mut rng, dtype, n, k);
            let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], &Device::Cpu).unwrap();
            let bias = rng.vec(n, 1.0);
            let tb = Tensor::from_f32(&bias, &[n], &Device::Cpu).unwrap();
            // 3 rows: the row kernel; 17 and 40: the panel GEMMs, whose tasks apply both to their
            // own columns (33 columns end in a partial panel).
            for m in [3, 17, 40] {
                let x = rng.vec(m * k, 1.0);
                let tx = Tensor::from_f32(&x, &[m, k], &Device::Cpu).unwrap();
                let exact = reference::linear_int8(&x, &bytes, dtype, Some(&bias), k, n).unwrap();
                let got = tx.linear(&tw, Some(&tb), Activation::Unary(UnaryOp::Gelu)).unwrap().to_vec_f32().await.unwrap();
                let want: Vec<f32> = exact.iter().map(|&v| reference::gelu(v)).collect();
                assert_close(&format!("{dtype} int8 [{m}, {k}] x [{n}, {k}]^T + gelu"), &got, &want, Tolerance { abs: 1e-4, rel: 1e-4 });
                let residual = rng.vec(m * n, 2.0);
                let tr = Tensor::from_f32(&residual, &[m, n], &Device::Cpu).unwrap();
                let got = tx.linear_add(&tw, Some(&tb), &tr).unwrap().to_vec_f32().await.unwrap();
                let want: Vec<f32> = exact.iter().zip(&residual).map(|(v, r)| v + r).collect();
                assert_close(&format!("{dtype} int8 [{m}, {k}] x [{n}, {k}]^T + residual"), &got, &want, tol(k));
            }
        }
    }
}}
