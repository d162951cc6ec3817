//! Quantized weights: ggml block dequantization against the `gguf` Python package
//! (tests/fixtures/quant-reference.json, made by tests/reference/make_quant_reference.py), and
//! quantized matmul and embedding lookup on every backend against dequantize + the f32 reference.
// Native only: these read the model files and fixtures from disk.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::path::PathBuf;

use support::{Rng, Tolerance, assert_close, devices};
use webformers::quant::{dequantize, quantize, quantize_at_load};
use webformers::weights::gguf::GgufFile;
use webformers::weights::{WeightDType, Weights};
use webformers::{Activation, DType, Device, GateAct, Tensor, UnaryOp, reference};

const QUANT_TYPES: [DType; 6] = [DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4K, DType::Q5K, DType::Q6K];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture() -> serde_json::Value {
    let path = repo_root().join("tests/fixtures/quant-reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn smollm2() -> GgufFile {
    let p = repo_root().join(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "{} is missing: run scripts/fetch-models.sh smollm2", p.display());
    GgufFile::open(p).unwrap()
}

#[test]
fn dequantization_matches_gguf_py_exactly() {
    let fx = fixture();
    for dtype in QUANT_TYPES {
        let case = &fx["dequantize"][dtype.name()];
        let bytes = hex(case["bytes"].as_str().unwrap());
        let want = floats(&case["values"]);
        let got = dequantize(dtype, &bytes).unwrap();
        // Same operations in the same order as ggml's reference: bit-exact.
        assert_close(&format!("{dtype} dequantize"), &got, &want, Tolerance { abs: 0.0, rel: 0.0 });
    }
}

#[test]
fn quantization_matches_gguf_py_bytes() {
    let fx = fixture();
    for dtype in [DType::Q8_0, DType::Q4_0, DType::Q4_1] {
        let case = &fx["quantize"][dtype.name()];
        let input = floats(&case["input"]);
        assert_eq!(quantize(dtype, &input).unwrap(), hex(case["bytes"].as_str().unwrap()), "{dtype}");
    }
}

#[test]
fn real_smollm2_tensors_dequantize_like_gguf_py() {
    let fx = fixture();
    let file = smollm2();
    for (name, want) in fx["smollm2"].as_object().unwrap() {
        let info = file.tensor(name).unwrap();
        assert_eq!(info.dtype.name(), want["type"].as_str().unwrap(), "{name}");
        let dims: Vec<usize> = want["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(info.dims, dims, "{name}");
        assert_eq!(info.range.start as u64, want["data_offset"].as_u64().unwrap(), "{name}");
        assert_eq!(info.range.len() as u64, want["n_bytes"].as_u64().unwrap(), "{name}");
        let values = dequantize(info.dtype, file.tensor_bytes(name).unwrap()).unwrap();
        let cols = dims[1];
        for (row, first) in want["rows"].as_object().unwrap() {
            let row: usize = row.parse().unwrap();
            assert_close(&format!("{name} row {row}"), &values[row * cols..][..16], &floats(first), Tolerance { abs: 0.0, rel: 0.0 });
        }
        let sum: f64 = values.iter().map(|&v| v as f64).sum();
        let abs_sum: f64 = values.iter().map(|&v| (v as f64).abs()).sum();
        let (want_sum, want_abs) = (want["sum"].as_f64().unwrap(), want["abs_sum"].as_f64().unwrap());
        assert!((sum - want_sum).abs() <= 1e-9 * want_abs, "{name}: sum {sum} vs {want_sum}");
        assert!((abs_sum - want_abs).abs() <= 1e-9 * want_abs, "{name}: abs sum {abs_sum} vs {want_abs}");
    }
}

/// Random blocks of `dtype` with realistic f16 scales at ggml's offsets (random bits there would
/// be NaN or huge), and their dequantized values.
fn random_weight(rng: &mut Rng, dtype: DType, rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
    let (len, size) = (dtype.block_len(), dtype.block_bytes());
    let n_blocks = rows * cols / len;
    let mut bytes: Vec<u8> = (0..n_blocks * size).map(|_| rng.next_u64() as u8).collect();
    let mut f16_at = |b: &mut [u8], at: usize, lo: f32, hi: f32| {
        b[at..at + 2].copy_from_slice(&half::f16::from_f32(rng.uniform(lo, hi)).to_le_bytes());
    };
    for b in bytes.chunks_mut(size) {
        match dtype {
            DType::Q8_0 => f16_at(b, 0, -0.01, 0.01),
            DType::Q4_0 => f16_at(b, 0, -0.1, 0.1),
            DType::Q4_1 => {
                f16_at(b, 0, 0.0, 0.1);
                f16_at(b, 2, -0.8, 0.0);
            }
            DType::Q4K | DType::Q5K => {
                f16_at(b, 0, 0.0, 0.004);
                f16_at(b, 2, 0.0, 0.01);
            }
            DType::Q6K => f16_at(b, 208, -0.003, 0.003),
            _ => unreachable!(),
        }
    }
    let dense = dequantize(dtype, &bytes).unwrap();
    (bytes, dense)
}

/// Quantized matmul error, relative to the size of the terms summed: sum_k |w x|. The CPU and
/// the GPU's f32 kernels differ from the reference only by f32 rounding; the GPU decode kernel
/// with shader-f16 rounds weights and activations to f16 and sums each 32-value run in f16.
const QUANT_F32: f32 = 2e-6;
const QUANT_F16: f32 = 4e-3;

/// These tests check the f32 path (blocks dequantized, f32 activations) at f32 tolerances; the
/// int8 path (off by default; pinned off here in case that changes) has its own tests in int8.rs. Every test of
/// this binary sets the same process-wide value, so they cannot race.
fn f32_path() {
    webformers::cpu::set_int8_matmul(false);
}

fn uses_f16(dev: &Device) -> bool {
    matches!(dev, Device::Gpu(g) if g.features().f16_math)
}

/// Checks `got` [m, n] against x [m, k] times w [n, k]^T (+ bias, act) with a tolerance scaled by
/// each output's sum of |w x|.
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn check_linear(what: &str, got: &[f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, act: Activation, k: usize, n: usize, rel: f32) {
    let mut want = reference::linear(x, w, bias, k, n);
    if let Activation::Unary(op) = act {
        assert_eq!(op, UnaryOp::Silu, "the check knows silu only");
        want.iter_mut().for_each(|v| *v = reference::silu(*v));
    }
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &wv)) in got.iter().zip(&want).enumerate() {
        let (r, j) = (i / n, i % n);
        let scale: f32 = (0..k).map(|p| (x[r * k + p] * w[j * k + p]).abs()).sum::<f32>() + bias.map_or(0.0, |b| b[j].abs());
        let allowed = rel * scale + 1e-6;
        assert!((g - wv).abs() <= allowed, "{what}: output [{r}, {j}]: got {g}, want {wv} (|diff| {:e} > {allowed:e})", (g - wv).abs());
    }
}

#[test]
fn quantized_linear_matches_dequantized_reference() {
    f32_path();
    let mut rng = Rng::new(21);
    for (name, dev) in pollster::block_on(devices()) {
        for dtype in QUANT_TYPES {
            let ks: &[usize] = if dtype.block_len() == 32 { &[32, 96, 576, 1024] } else { &[256, 768, 1536] };
            let ns = [1usize, 17, 67, 129, 300];
            for (case, &m) in [1usize, 2, 3, 7, 33, 130].iter().enumerate() {
                let k = ks[(case + rng.below(ks.len())) % ks.len()];
                let n = ns[(case + rng.below(ns.len())) % ns.len()];
                let (bytes, w) = random_weight(&mut rng, dtype, n, k);
                let x = rng.vec(m * k, 2.0);
                let bias = rng.vec(n, 0.5);
                let (with_bias, act) = match case % 3 {
                    0 => (false, Activation::None),
                    1 => (true, Activation::None),
                    _ => (true, Activation::Unary(UnaryOp::Silu)),
                };
                let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], &dev).unwrap();
                let tx = Tensor::from_f32(&x, &[m, k], &dev).unwrap();
                let tb = Tensor::from_f32(&bias, &[n], &dev).unwrap();
                let y = tx.linear(&tw, with_bias.then_some(&tb), act).unwrap();
                assert_eq!(y.dims(), [m, n]);
                let got = y.to_vec_f32_blocking().unwrap();
                let rel = if uses_f16(&dev) && m <= 8 { QUANT_F16 } else { QUANT_F32 };
                let what = format!("{name} {dtype} linear [{m}, {k}] x [{n}, {k}]^T bias={with_bias} {act:?}");
                check_linear(&what, &got, &x, &w, with_bias.then_some(&bias[..]), act, k, n, rel);
            }
        }
    }
}

#[test]
fn quantized_linear_add_fuses_the_residual() {
    f32_path();
    let mut rng = Rng::new(26);
    for (name, dev) in pollster::block_on(devices()) {
        for dtype in QUANT_TYPES {
            let k = if dtype.block_len() == 32 { 96 } else { 512 };
            // Decode (matvec) and prefill (tiled) row counts, odd N.
            for (case, &(m, n)) in [(1usize, 67usize), (3, 17), (7, 300), (33, 129), (130, 67)].iter().enumerate() {
                let (bytes, w) = random_weight(&mut rng, dtype, n, k);
                let x = rng.vec(m * k, 2.0);
                let bias = rng.vec(n, 0.5);
                let residual = rng.vec(m * n, 2.0);
                let with_bias = case % 2 == 1;
                let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], &dev).unwrap();
                let tx = Tensor::from_f32(&x, &[m, k], &dev).unwrap();
                let tb = Tensor::from_f32(&bias, &[n], &dev).unwrap();
                let tr = Tensor::from_f32(&residual, &[m, n], &dev).unwrap();
                let got = tx.linear_add(&tw, with_bias.then_some(&tb), &tr).unwrap().to_vec_f32_blocking().unwrap();
                // Without the residual, what is left is the plain linear's result.
                let got: Vec<f32> = got.iter().zip(&residual).map(|(g, r)| g - r).collect();
                let rel = if uses_f16(&dev) && m <= 8 { QUANT_F16 } else { QUANT_F32 };
                let what = format!("{name} {dtype} linear_add [{m}, {k}] x [{n}, {k}]^T bias={with_bias}");
                check_linear(&what, &got, &x, &w, with_bias.then_some(&bias[..]), Activation::None, k, n, rel);
            }
        }
    }
}

#[test]
fn quantized_gated_linear_reads_gate_and_up_in_place() {
    f32_path();
    let mut rng = Rng::new(27);
    for (name, dev) in pollster::block_on(devices()) {
        for dtype in QUANT_TYPES {
            let k = if dtype.block_len() == 32 { 96 } else { 512 };
            for (case, &(m, n)) in [(1usize, 67usize), (3, 17), (7, 300), (33, 129), (130, 67)].iter().enumerate() {
                let (bytes, w) = random_weight(&mut rng, dtype, n, k);
                let gu = rng.vec(m * 2 * k, 2.0);
                let residual = rng.vec(m * n, 2.0);
                let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], &dev).unwrap();
                let tgu = Tensor::from_f32(&gu, &[m, 2 * k], &dev).unwrap();
                let tr = Tensor::from_f32(&residual, &[m, n], &dev).unwrap();
                // Gate first and up first: the gate read before or after A.
                let gate_first = case % 2 == 0;
                let (g0, u0) = if gate_first { (0, k) } else { (k, 0) };
                let (gate, up) = (tgu.narrow(1, g0, k).unwrap(), tgu.narrow(1, u0, k).unwrap());
                // SwiGLU's silu and T5 v1.1's gated-GELU (decode and prefill sizes, both orders)
                let (act, f): (GateAct, fn(f32) -> f32) =
                    if case % 3 == 0 { (GateAct::Silu, reference::silu) } else { (GateAct::GeluTanh, reference::gelu_tanh) };
                let got = gate.gated_linear(act, &up, &tw, None, Some(&tr)).unwrap().to_vec_f32_blocking().unwrap();
                let got: Vec<f32> = got.iter().zip(&residual).map(|(g, r)| g - r).collect();
                let x: Vec<f32> = gu.chunks(2 * k).flat_map(|row| (0..k).map(move |j| f(row[g0 + j]) * row[u0 + j])).collect();
                let rel = if uses_f16(&dev) && m <= 8 { QUANT_F16 } else { QUANT_F32 };
                let what = format!("{name} {dtype} {act:?} gated linear [{m}, {k}] x [{n}, {k}]^T gate_first={gate_first}");
                check_linear(&what, &got, &x, &w, None, Activation::None, k, n, rel);
            }
        }
    }
}

#[test]
fn quantized_linear_over_views_and_batches() {
    f32_path();
    let mut rng = Rng::new(22);
    for (name, dev) in pollster::block_on(devices()) {
        for dtype in QUANT_TYPES {
            let k = if dtype.block_len() == 32 { 64 } else { 512 };
            let n = 23;
            let (bytes, w) = random_weight(&mut rng, dtype, n, k);
            let tw = Tensor::from_bytes(&bytes, dtype, &[n, k], &dev).unwrap();
            let rel = |m: usize| if uses_f16(&dev) && m <= 8 { QUANT_F16 } else { QUANT_F32 };

            // A batched input [2, 3, K] is one [6, K] matmul.
            let x = rng.vec(6 * k, 1.0);
            let tx = Tensor::from_f32(&x, &[2, 3, k], &dev).unwrap();
            let got = tx.linear(&tw, None, Activation::None).unwrap().to_vec_f32_blocking().unwrap();
            check_linear(&format!("{name} {dtype} batched"), &got, &x, &w, None, Activation::None, k, n, rel(6));

            // A transposed input (K stride != 1) is copied first.
            let xt = Tensor::from_f32(&x[..2 * k], &[k, 2], &dev).unwrap().t().unwrap();
            let x_t: Vec<f32> = (0..2).flat_map(|i| (0..k).map(move |p| (i, p))).map(|(i, p)| x[p * 2 + i]).collect();
            let got = xt.linear(&tw, None, Activation::None).unwrap().to_vec_f32_blocking().unwrap();
            check_linear(&format!("{name} {dtype} transposed input"), &got, &x_t, &w, None, Activation::None, k, n, rel(2));

            // Rows 5..16 of the weight (a fused projection split by rows): an offset view.
            let part = tw.narrow(0, 5, 11).unwrap();
            let got = tx.narrow(1, 0, 1).unwrap().linear(&part, None, Activation::None).unwrap().to_vec_f32_blocking().unwrap();
            let x1: Vec<f32> = (0..2).flat_map(|b| x[b * 3 * k..b * 3 * k + k].to_vec()).collect();
            check_linear(&format!("{name} {dtype} row slice"), &got, &x1, &w[5 * k..16 * k], None, Activation::None, k, 11, rel(2));
        }
    }
}

#[test]
fn quantized_operands_that_cannot_be_read_as_blocks_are_errors() {
    let mut rng = Rng::new(23);
    let dev = Device::Cpu;
    let (bytes, _) = random_weight(&mut rng, DType::Q4_0, 64, 32);
    let w = Tensor::from_bytes(&bytes, DType::Q4_0, &[64, 32], &dev).unwrap();
    // Not transposed: [64, 32] used as [K, N] walks K across rows.
    let x = Tensor::from_f32(&rng.vec(64, 1.0), &[1, 64], &dev).unwrap();
    let e = x.matmul(&w).unwrap_err().to_string();
    assert!(e.contains("q4_0") && e.contains("transpose"), "{e}");
    // K not a whole number of blocks (the same bytes viewed as [128, 16]).
    let w16 = Tensor::from_bytes(&bytes, DType::Q4_0, &[128, 16], &dev).unwrap();
    let x = Tensor::from_f32(&rng.vec(16, 1.0), &[1, 16], &dev).unwrap();
    let e = x.linear(&w16, None, Activation::None).unwrap_err().to_string();
    assert!(e.contains("K = 16") && e.contains("whole"), "{e}");
    // A column slice of the weight starts mid-block.
    let x = Tensor::from_f32(&rng.vec(16, 1.0), &[1, 16], &dev).unwrap();
    let e = x.linear(&w.narrow(1, 8, 16).unwrap(), None, Activation::None).unwrap_err().to_string();
    assert!(e.contains("whole"), "{e}");
}

#[test]
fn quantized_gather_rows_match_dequantized_rows() {
    let mut rng = Rng::new(24);
    for (name, dev) in pollster::block_on(devices()) {
        for dtype in QUANT_TYPES {
            let (vocab, h) = (37, if dtype.block_len() == 32 { 96 } else { 512 });
            let (bytes, dense) = random_weight(&mut rng, dtype, vocab, h);
            let table = Tensor::from_bytes(&bytes, dtype, &[vocab, h], &dev).unwrap();
            let ids = [0u32, 36, 5, 5, 17];
            let tids = Tensor::from_u32(&ids, &[ids.len()], &dev).unwrap();
            let got = table.gather_rows(&tids).unwrap().to_vec_f32_blocking().unwrap();
            let want: Vec<f32> = ids.iter().flat_map(|&i| dense[i as usize * h..][..h].to_vec()).collect();
            // The GPU computes d * q + m with one fused rounding where ggml rounds twice.
            assert_close(&format!("{name} {dtype} gather"), &got, &want, Tolerance { abs: 1e-7, rel: 1e-6 });
            let bad = Tensor::from_u32(&[37], &[1], &dev).unwrap();
            if !dev.is_gpu() {
                let e = table.gather_rows(&bad).unwrap().to_vec_f32_blocking().unwrap_err().to_string();
                assert!(e.contains("37"), "{e}");
            }
        }
    }
}

#[test]
fn real_smollm2_weights_in_linear_and_embedding() {
    f32_path();
    let file = std::sync::Arc::new(smollm2());
    let mut rng = Rng::new(25);
    let q_dense = dequantize(DType::Q4_1, file.tensor_bytes("blk.0.attn_q.weight").unwrap()).unwrap();
    let e_dense = dequantize(DType::Q8_0, file.tensor_bytes("token_embd.weight").unwrap()).unwrap();
    let h = 576;
    for (name, dev) in pollster::block_on(devices()) {
        let weights = Weights::new(file.clone(), &dev, WeightDType::Auto);
        let wq = weights.get("blk.0.attn_q.weight", &[h, h]).unwrap();
        assert_eq!(wq.dtype(), DType::Q4_1);
        for m in [1usize, 5, 40] {
            let x = rng.vec(m * h, 1.0);
            let tx = Tensor::from_f32(&x, &[m, h], &dev).unwrap();
            let got = tx.linear(&wq, None, Activation::None).unwrap().to_vec_f32_blocking().unwrap();
            let rel = if uses_f16(&dev) && m <= 8 { QUANT_F16 } else { QUANT_F32 };
            check_linear(&format!("{name} SmolLM2 attn_q, {m} rows"), &got, &x, &q_dense, None, Activation::None, h, h, rel);
        }

        // The Q8_0 token embedding: a lookup, and the tied output projection over the vocabulary.
        let embed = weights.get("token_embd.weight", &[49152, h]).unwrap();
        let ids = [1u32, 504, 49151, 2];
        let tids = Tensor::from_u32(&ids, &[4], &dev).unwrap();
        let rows = embed.gather_rows(&tids).unwrap().to_vec_f32_blocking().unwrap();
        let want: Vec<f32> = ids.iter().flat_map(|&i| e_dense[i as usize * h..][..h].to_vec()).collect();
        assert_close(&format!("{name} SmolLM2 embedding rows"), &rows, &want, Tolerance { abs: 1e-7, rel: 1e-6 });
        let x = rng.vec(h, 1.0);
        let logits = Tensor::from_f32(&x, &[1, h], &dev).unwrap().linear(&embed, None, Activation::None).unwrap();
        let got = logits.to_vec_f32_blocking().unwrap();
        let rel = if uses_f16(&dev) { QUANT_F16 } else { QUANT_F32 };
        check_linear(&format!("{name} SmolLM2 tied lm_head"), &got, &x, &e_dense, None, Activation::None, h, 49152, rel);
    }
}

#[test]
fn quantizing_at_load_matches_the_cpu_quantizer_on_every_backend() {
    // `to_dtype(Q8_0 | Q4_0 | Q4_1)` of f32, f16 and bf16 rows (what dtype 'q8' / 'q4' does when
    // the weights were streamed to the device): the blocks read back through a lookup must be
    // the values quant::quantize_at_load gives for the same rows. 3 rows of 3 blocks: an odd number of
    // blocks, so the GPU's last two-block unit holds one.
    let mut rng = Rng::new(26);
    for (name, dev) in pollster::block_on(devices()) {
        for (rows, cols) in [(3, 96), (70, 256)] {
            let mut values = rng.vec(rows * cols, 1.5);
            values[..32].fill(0.0); // an all-zero block: scale 0
            values[40] = 9.0; // an outlier sets its block's scale
            for src in [DType::F32, DType::F16, DType::BF16] {
                // The values as that float type holds them, and its bytes.
                let (stored, bytes): (Vec<f32>, Vec<u8>) = match src {
                    DType::F32 => (values.clone(), bytemuck::cast_slice(&values).to_vec()),
                    DType::F16 => {
                        let h: Vec<half::f16> = values.iter().map(|&v| half::f16::from_f32(v)).collect();
                        (h.iter().map(|v| v.to_f32()).collect(), bytemuck::cast_slice(&h).to_vec())
                    }
                    _ => {
                        let b: Vec<half::bf16> = values.iter().map(|&v| half::bf16::from_f32(v)).collect();
                        (b.iter().map(|v| v.to_f32()).collect(), bytemuck::cast_slice(&b).to_vec())
                    }
                };
                let float = Tensor::from_bytes(&bytes, src, &[rows, cols], &dev).unwrap();
                for q in [DType::Q8_0, DType::Q4_0, DType::Q4_1] {
                    let quantized = float.to_dtype(q).unwrap();
                    assert_eq!(quantized.dtype(), q);
                    let ids: Vec<u32> = (0..rows as u32).collect();
                    let tids = Tensor::from_u32(&ids, &[rows], &dev).unwrap();
                    let got = quantized.gather_rows(&tids).unwrap().to_vec_f32_blocking().unwrap();
                    let want = dequantize(q, &quantize_at_load(q, &stored).unwrap()).unwrap();
                    // The GPU's reciprocal may differ from the CPU's in the last bit, which can move
                    // a value sitting on a rounding boundary by one step: allow that, rarely.
                    // Q4_1's search may then pick another (scale, min) for a block whose
                    // candidates are as good: such a block must be as close to the input.
                    let mut blocks_off = 0;
                    let mut values_off = 0;
                    for ((x, g), w) in stored.chunks(32).zip(got.chunks(32)).zip(want.chunks(32)) {
                        if g == w {
                            continue;
                        }
                        blocks_off += 1;
                        let sq_err = |v: &[f32]| v.iter().zip(x).map(|(a, b)| (a - b).powi(2)).sum::<f32>();
                        if q == DType::Q4_1 {
                            let (eg, ew) = (sq_err(g), sq_err(w));
                            assert!(eg <= ew * 1.01 + 1e-9, "{name} {src}->{q}: a block's squared error {eg} vs the CPU's {ew}");
                            continue;
                        }
                        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                        let step = if q == DType::Q8_0 { amax / 127.0 } else { 2.0 * amax / 15.0 };
                        for (a, b) in g.iter().zip(w).filter(|(a, b)| a != b) {
                            values_off += 1;
                            assert!((a - b).abs() <= step * 1.001, "{name} {src}->{q}: {a} vs {b}");
                        }
                    }
                    assert!(values_off * 1000 <= want.len(), "{name} {src}->{q}: {values_off} of {} values differ", want.len());
                    assert!(blocks_off <= 1 + want.len() / 3200, "{name} {src}->{q}: {blocks_off} of {} blocks differ", want.len() / 32);
                }
            }
        }
        // A row length that is not whole blocks is an error, not a bad tensor.
        let t = Tensor::from_f32(&[0.5; 40], &[2, 20], &dev).unwrap();
        assert!(t.to_dtype(DType::Q8_0).is_err(), "{name}: 20-value rows quantized");
    }
}

/// A safetensors file of f32 tensors, in memory.
fn safetensors_bytes(tensors: &[(&str, &[usize], &[f32])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dims, values) in tensors {
        let start = data.len();
        data.extend_from_slice(bytemuck::cast_slice(values));
        header.insert(name.to_string(), serde_json::json!({"dtype": "F32", "shape": dims, "data_offsets": [start, data.len()]}));
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    out
}

#[test]
fn weights_quantize_linear_layers_as_the_dtype_policy_says() {
    use std::sync::Arc;
    use webformers::weights::{DeviceWeights, Precision, WeightSource, safetensors::SafetensorsFile};
    let mut rng = Rng::new(27);
    let (n, k) = (64, 96);
    let w = rng.vec(n * k, 0.5);
    let small = rng.vec(8 * k, 0.5);
    let odd = rng.vec(n * 40, 0.5);
    let x = rng.vec(3 * k, 1.0);
    // W^T as GPT-2's Conv1D stores it: [in, out].
    let wt: Vec<f32> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
    let file = safetensors_bytes(&[
        ("model.decoder.lin.weight", &[n, k], &w),
        ("model.encoder.lin.weight", &[n, k], &w),
        ("small.weight", &[8, k], &small),
        ("odd.weight", &[n, 40], &odd),
        ("emb.weight", &[n, k], &w),
        ("conv.weight", &[k, n], &wt),
    ]);
    let source: Arc<dyn WeightSource> = Arc::new(SafetensorsFile::from_bytes(Arc::new(file), "memory").unwrap());
    // x [3, K] times the Q8_0 weight must give the dequantized weight's product.
    let w_q8 = dequantize(DType::Q8_0, &quantize(DType::Q8_0, &w).unwrap()).unwrap();
    for (name, dev) in pollster::block_on(devices()) {
        let xt = Tensor::from_f32(&x, &[3, k], &dev).unwrap();
        // The GPU's decode kernel multiplies in f16 pairs where the adapter allows it.
        let rel = if uses_f16(&dev) { 2e-3 } else { 1e-5 };
        let check = |what: &str, weight: &Tensor, transposed: bool| {
            let got = match transposed {
                true => xt.matmul(weight),
                false => xt.matmul(&weight.t().unwrap()),
            };
            check_linear(
                &format!("{name} {what}"),
                &got.unwrap().to_vec_f32_blocking().unwrap(),
                &x,
                &w_q8,
                None,
                Activation::None,
                k,
                n,
                rel,
            );
        };
        let vb = Weights::new(source.clone(), &dev, Precision::parse("encoder_model=fp32,decoder_model_merged=q8").unwrap());
        let lin = vb.get_linear("model.decoder.lin.weight", &[n, k]).unwrap();
        assert_eq!(lin.dtype(), DType::Q8_0, "{name}");
        check("decoder linear", &lin, false);
        assert_eq!(vb.get_linear("model.encoder.lin.weight", &[n, k]).unwrap().dtype(), DType::F32, "{name}: the encoder's dtype");
        // Policy: fewer than 64 outputs, rows that are not whole blocks, and non-linear weights stay.
        assert_eq!(vb.get_linear("small.weight", &[8, k]).unwrap().dtype(), DType::F32);
        assert_eq!(vb.get_linear("odd.weight", &[n, 40]).unwrap().dtype(), DType::F32);
        assert_eq!(vb.get("emb.weight", &[n, k]).unwrap().dtype(), DType::F32);
        let conv = vb.get_linear_transposed("conv.weight", &[k, n]).unwrap();
        assert_eq!((conv.dtype(), conv.dims()), (DType::Q8_0, &[k, n][..]), "{name}");
        check("transposed linear", &conv, true);
        // Weights streamed to the device first (the browser's Hub load) are quantized there.
        let mut streamed = DeviceWeights::new("streamed", &dev);
        streamed.insert("lin.weight", Tensor::from_f32(&w, &[n, k], &dev).unwrap());
        let vb = Weights::new(Arc::new(streamed), &dev, WeightDType::Q8);
        let lin = vb.get_linear("lin.weight", &[n, k]).unwrap();
        assert_eq!(lin.dtype(), DType::Q8_0, "{name}");
        check("streamed linear", &lin, false);
    }
    assert!(Precision::parse("q3").unwrap_err().to_string().contains("unknown dtype `q3`"));
    assert!(Precision::parse("vision_tower=q8").unwrap_err().to_string().contains("unknown module `vision_tower`"));
    assert!(Precision::parse("model=q8,decoder_model_merged=q4").is_err(), "two decoder dtypes");
}

/// RMSNorm folded into the projection after it (`rms_norm_linear`): on the GPU, up to 8 rows, the
/// matmul computes each row's inverse RMS itself (the decode kernel for quantized weights, the
/// tiled one for f32 and f16); past that, and on the CPU, the norm and the matmul as two ops.
/// Against the f64 RMSNorm then the f32 linear, over odd shapes (K a whole number of blocks).
#[test]
fn rms_norm_linear_folds_the_norm() {
    f32_path();
    let mut rng = Rng::new(27);
    let eps = 1e-5;
    for (name, dev) in pollster::block_on(devices()) {
        for dtype in [DType::F32, DType::F16].into_iter().chain(QUANT_TYPES) {
            // f32 / f16: K = 67 takes the tiled kernel with the norm, K = 96 the decode one.
            let ks: &[usize] = match dtype {
                DType::F32 | DType::F16 => &[67, 96],
                d if d.block_len() == 32 => &[96],
                _ => &[512],
            };
            for &k in ks {
                for (case, &(m, n)) in [(1usize, 67usize), (3, 17), (8, 129), (9, 33), (40, 5)].iter().enumerate() {
                    let (tw, w) = match dtype {
                        DType::F32 | DType::F16 => {
                            let w = rng.vec(n * k, 0.5);
                            let tw = Tensor::from_f32(&w, &[n, k], &dev).unwrap().to_dtype(dtype).unwrap();
                            // The weights as the kernel sees them (f16-rounded for F16).
                            let seen = tw.to_dtype(DType::F32).unwrap().to_vec_f32_blocking().unwrap();
                            (tw, seen)
                        }
                        _ => {
                            let (bytes, w) = random_weight(&mut rng, dtype, n, k);
                            (Tensor::from_bytes(&bytes, dtype, &[n, k], &dev).unwrap(), w)
                        }
                    };
                    // Rows of different sizes, so each row's own scale matters.
                    let x: Vec<f32> = (0..m * k).map(|i| rng.uniform(-2.0, 2.0) * (1.0 + (i / k) as f32)).collect();
                    let norm_w = rng.vec(k, 1.0);
                    let bias = rng.vec(n, 0.5);
                    let with_bias = case % 2 == 1;
                    let tx = Tensor::from_f32(&x, &[m, k], &dev).unwrap();
                    let tn = Tensor::from_f32(&norm_w, &[k], &dev).unwrap();
                    let tb = Tensor::from_f32(&bias, &[n], &dev).unwrap();
                    let y = tx.rms_norm_linear(&tn, eps, &tw, with_bias.then_some(&tb)).unwrap();
                    assert_eq!(y.dims(), [m, n]);
                    let got = y.to_vec_f32_blocking().unwrap();
                    let normed = reference::rms_norm(&x, &norm_w, k, eps);
                    let rel = if uses_f16(&dev) && m <= 8 && dtype.is_quantized() { QUANT_F16 } else { QUANT_F32 };
                    let what = format!("{name} {dtype} rms_norm_linear [{m}, {k}] x [{n}, {k}]^T bias={with_bias}");
                    check_linear(&what, &got, &normed, &w, with_bias.then_some(&bias[..]), Activation::None, k, n, rel);
                }
            }
        }
    }
}
