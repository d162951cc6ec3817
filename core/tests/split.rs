//! Weights larger than one GPU binding are split by rows and still give the same results: a
//! matmul weight (f32, f16, quantized; decode and prefill shapes; with a fused residual and a
//! gated operand too) and embedding tables, on a GPU context told its bindings hold only 96 KiB.
//! Compared with the CPU backend's results.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use support::{Rng, Tolerance, assert_close};
use webformers::{Activation, DType, Device, GpuContext, GpuOptions, Tensor};

fn small_bindings() -> Option<Device> {
    let options = GpuOptions { max_binding_bytes: Some(96 * 1024), ..GpuOptions::default() };
    match pollster::block_on(GpuContext::new(options)) {
        Ok(g) => Some(Device::Gpu(g)),
        Err(e) => {
            assert!(!support::gpu_required(), "WEBFORMERS_REQUIRE_GPU=1 but no GPU adapter: {e}");
            eprintln!("SKIPPING: no GPU adapter ({e})");
            None
        }
    }
}

fn read(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32_blocking().unwrap()
}

/// `values` as a weight of `dtype` stores them.
fn stored_as(dtype: DType, values: &[f32]) -> Vec<u8> {
    match dtype {
        DType::F32 => bytemuck::cast_slice(values).to_vec(),
        DType::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        q => webformers::quant::quantize(q, values).unwrap(),
    }
}

#[test]
fn split_weights_and_tables_match_the_cpu() {
    let Some(gpu) = small_bindings() else { return };
    let mut rng = Rng::new(31);
    // 1000 rows x 256 are 1 MB in f32 (11 parts), 512 KB in f16, 272 KB in Q8_0, 144 KB in Q4_0
    // (2 parts); outputs of up to 16 rows stay under the limit.
    let (n, k) = (1000, 256);
    let w = rng.vec(n * k, 0.5);
    let bias = rng.vec(n, 0.5);
    for m in [1, 3, 16] {
        let x = rng.vec(m * k, 1.0);
        let residual = rng.vec(m * n, 1.0);
        let gate_up = rng.vec(m * 2 * k, 1.0);
        for dtype in [DType::F32, DType::F16, DType::Q8_0, DType::Q4_0] {
            let bytes = stored_as(dtype, &w);
            let run = |dev: &Device| {
                let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], dev).unwrap();
                let tx = Tensor::from_f32(&x, &[m, k], dev).unwrap();
                let tb = Tensor::from_f32(&bias, &[n], dev).unwrap();
                read(&tx.linear(&tw, Some(&tb), Activation::None).unwrap())
            };
            let what = format!("split {dtype} linear m={m}");
            assert_close(&what, &run(&gpu), &run(&Device::Cpu), Tolerance { abs: 1e-4, rel: 1e-4 });
            // Each part adds the residual of its own columns.
            let run_add = |dev: &Device| {
                let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], dev).unwrap();
                let tx = Tensor::from_f32(&x, &[m, k], dev).unwrap();
                let tr = Tensor::from_f32(&residual, &[m, n], dev).unwrap();
                read(&tx.linear_add(&tw, None, &tr).unwrap())
            };
            let what = format!("split {dtype} linear_add m={m}");
            assert_close(&what, &run_add(&gpu), &run_add(&Device::Cpu), Tolerance { abs: 1e-4, rel: 1e-4 });
            // And each part reads the gated operand in place.
            let run_gated = |dev: &Device| {
                let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], dev).unwrap();
                let tgu = Tensor::from_f32(&gate_up, &[m, 2 * k], dev).unwrap();
                let (gate, up) = (tgu.narrow(1, 0, k).unwrap(), tgu.narrow(1, k, k).unwrap());
                read(&gate.silu_mul_linear(&up, &tw, None, None).unwrap())
            };
            let what = format!("split {dtype} silu_mul_linear m={m}");
            assert_close(&what, &run_gated(&gpu), &run_gated(&Device::Cpu), Tolerance { abs: 1e-4, rel: 1e-4 });
        }
    }
    // Embedding tables: ids in both parts, and repeated.
    let ids = [0u32, 999, 682, 681, 5, 999, 340];
    for dtype in [DType::F32, DType::F16, DType::Q8_0, DType::Q4_0] {
        let bytes = stored_as(dtype, &w);
        let run = |dev: &Device| {
            let table = Tensor::from_bytes(&bytes, dtype, &[n, k], dev).unwrap();
            read(&table.gather_rows(&Tensor::from_u32(&ids, &[ids.len()], dev).unwrap()).unwrap())
        };
        assert_close(&format!("split {dtype} gather"), &run(&gpu), &run(&Device::Cpu), Tolerance { abs: 0.0, rel: 0.0 });
    }
    // Anything else reading a split tensor is a clear error, not a wrong result.
    let tw = Tensor::from_f32(&w, &[n, k], &gpu).unwrap();
    let err = tw.unary(webformers::UnaryOp::Exp).unwrap().to_vec_f32_blocking().unwrap_err().to_string();
    assert!(err.contains("split by rows"), "{err}");
}
