//! Quantized matmul speed: decode (one activation row: GB/s of weights streamed) and prefill
//! (M rows: GFLOP/s), per block type, with f32 / f16 weights of the same shape as the baseline.
//!
//!     cargo run --release -p webformers-core --example quant_bench -- [cpu|gpu] [decode|prefill|copy|all] [q4_0,q8_0,..]
//!
//! On the CPU, Q8_0 / Q4_0 / Q4_1 run twice: on the f32 path (blocks dequantized) and on the
//! int8 path (rows marked `i8`: activations quantized to 8 bits, integer dot products).
//! Prefill on the CPU includes all-MiniLM-L6-v2's projections on 256 tokens (M = 256).
//!
//! QB_SHAPES=NxK,.. and QB_REPS=n override the decode shapes and repetitions;
//! WEBFORMERS_QMV_TPR=32..256 forces the GPU decode kernel's invocations per 4 rows.
//!
//! Decode realizes many independent matvecs over distinct weights in one submission, so the
//! weights (768 MB in all on a GPU) cannot sit in a cache and a GPU's per-submission
//! latency is amortized; the time per matvec is the total over the count.

use std::time::Instant;

use webformers::{Activation, DType, Device, GpuContext, GpuOptions, Tensor};

fn random_bytes(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

/// A weight of `dtype` [n, k] with random quants and small valid f16 scales.
fn weight(seed: &mut u64, dtype: DType, n: usize, k: usize, dev: &Device) -> Tensor {
    let mut bytes = random_bytes(seed, dtype.bytes_for(n * k).unwrap());
    let scale = half::f16::from_f32(0.01).to_le_bytes();
    let size = dtype.block_bytes();
    match dtype {
        DType::F32 => {
            for c in bytes.chunks_mut(4) {
                c.copy_from_slice(&(c[0] as f32 / 2560.0).to_le_bytes());
            }
        }
        DType::F16 => {
            for c in bytes.chunks_mut(2) {
                c.copy_from_slice(&half::f16::from_f32(c[0] as f32 / 2560.0).to_le_bytes());
            }
        }
        _ => {
            let at: &[usize] = match dtype {
                DType::Q6K => &[208],
                DType::Q8_0 | DType::Q4_0 => &[0],
                _ => &[0, 2],
            };
            for b in bytes.chunks_mut(size) {
                for &i in at {
                    b[i..i + 2].copy_from_slice(&scale);
                }
            }
        }
    }
    Tensor::from_bytes(&bytes, dtype, &[n, k], dev).unwrap()
}

/// The matmul paths to time for `dtype` on `dev`: (label suffix, int8 switch).
fn paths(dev: &Device, dtype: DType) -> Vec<(&'static str, bool)> {
    let int8 = matches!(dtype, DType::Q8_0 | DType::Q4_0 | DType::Q4_1) && !dev.is_gpu();
    if int8 { vec![("", false), (" i8", true)] } else { vec![("", false)] }
}

const TYPES: [DType; 8] = [DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4K, DType::Q5K, DType::Q6K];

/// Realizes `y_i = x W_i^T` for every weight, `rounds` times over, at once (one GPU submission,
/// long enough for the GPU's clocks to stay up): the best of `reps`.
fn time_all(x: &Tensor, ws: &[Tensor], rounds: usize, reps: usize) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps + 1 {
        let ys: Vec<Tensor> = (0..rounds).flat_map(|_| ws.iter()).map(|w| x.linear(w, None, Activation::None).unwrap()).collect();
        let refs: Vec<&Tensor> = ys.iter().collect();
        let t = Instant::now();
        pollster::block_on(Tensor::read_all(&refs)).unwrap_or_else(|e| panic!("{e}"));
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn decode(dev: &Device, shapes: &[(usize, usize)], types: &[DType], budget_bytes: usize, reps: usize) {
    println!("decode (M = 1): time per matvec, GB/s of weight bytes, G weights/s;");
    println!("  incremental: GB/s from the time over that of as many tiny matvecs (no per-dispatch costs)");
    for &(n, k) in shapes {
        for &dtype in types.iter().filter(|d| k % d.block_len() == 0) {
            let bytes = dtype.bytes_for(n * k).unwrap();
            let count = (budget_bytes / bytes).clamp(2, 64);
            let mut seed = 0x1234_5678_9abc_def1u64 ^ (n * k) as u64;
            let ws: Vec<Tensor> = (0..count).map(|_| weight(&mut seed, dtype, n, k, dev)).collect();
            let tiny: Vec<Tensor> = (0..count).map(|_| weight(&mut seed, dtype, 32, k, dev)).collect();
            let x = Tensor::from_f32(&vec![0.5f32; k], &[1, k], dev).unwrap();
            let rounds = if dev.is_gpu() { 256usize.div_ceil(count) } else { 1 };
            for (label, int8) in paths(dev, dtype) {
                webformers::cpu::set_int8_matmul(int8);
                let t = time_all(&x, &ws, rounds, reps) / (count * rounds) as f64;
                let t_tiny = time_all(&x, &tiny, rounds, reps) / (count * rounds) as f64;
                println!(
                    "  [{n:>5} x {k:>5}] {:>8}: {:>8.1} us  {:>7.1} GB/s  {:>6.1} Gw/s   incremental {:>7.1} GB/s  ({count} x {:.1} MB)",
                    format!("{}{label}", dtype.name()),
                    t * 1e6,
                    bytes as f64 / t / 1e9,
                    (n * k) as f64 / t / 1e9,
                    bytes as f64 / (t - t_tiny).max(1e-9) / 1e9,
                    bytes as f64 / 1e6
                );
            }
        }
    }
}

fn prefill(dev: &Device, shapes: &[(usize, usize, usize)], types: &[DType], reps: usize) {
    println!("prefill: time per matmul, GFLOP/s");
    for &(m, n, k) in shapes {
        for &dtype in types.iter().filter(|d| k % d.block_len() == 0) {
            let mut seed = 42u64;
            let w = weight(&mut seed, dtype, n, k, dev);
            let x = Tensor::from_f32(&vec![0.25f32; m * k], &[m, k], dev).unwrap();
            for (label, int8) in paths(dev, dtype) {
                webformers::cpu::set_int8_matmul(int8);
                let mut best = f64::INFINITY;
                for _ in 0..reps + 1 {
                    let y = x.linear(&w, None, Activation::None).unwrap();
                    let t = Instant::now();
                    pollster::block_on(Tensor::read_all(&[&y])).unwrap();
                    best = best.min(t.elapsed().as_secs_f64());
                }
                println!(
                    "  [{m:>4} x {k:>5}] x [{n:>5} x {k:>5}]^T {:>8}: {:>9.1} us  {:>7.1} GFLOP/s",
                    format!("{}{label}", dtype.name()),
                    best * 1e6,
                    2.0 * (m * n * k) as f64 / best / 1e9
                );
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let on = args.first().map(String::as_str).unwrap_or("cpu");
    let what = args.get(1).map(String::as_str).unwrap_or("all");
    // An optional comma-separated list of types (f32,f16,q8_0,q4_0,q4_1,q4_k,q5_k,q6_k).
    let types: Vec<DType> = match args.get(2) {
        Some(list) => TYPES.into_iter().filter(|d| list.split(',').any(|n| n == d.name())).collect(),
        None => TYPES.to_vec(),
    };
    let dev = match on {
        "gpu" => Device::Gpu(pollster::block_on(GpuContext::new(GpuOptions::from_env())).expect("a GPU adapter")),
        _ => Device::Cpu,
    };
    println!("device: {}", dev.describe());
    let big = dev.is_gpu();
    if what == "copy" || (what == "all" && big) {
        // What a plain streaming kernel reaches with the same timing: relu over 256 MiB of f32.
        let n = match &dev {
            Device::Gpu(g) => (64usize << 20).min(g.max_binding_bytes() as usize / 4),
            Device::Cpu => 16 << 20,
        };
        let x = Tensor::from_f32(&vec![1.0f32; n], &[n], &dev).unwrap();
        let mut best = f64::INFINITY;
        for _ in 0..6 {
            let ys: Vec<Tensor> = (0..8).map(|_| x.unary(webformers::UnaryOp::Relu).unwrap()).collect();
            let refs: Vec<&Tensor> = ys.iter().collect();
            let t = Instant::now();
            pollster::block_on(Tensor::realize(&refs)).unwrap();
            let _ = pollster::block_on(Tensor::read_all(&[&ys[0].narrow(0, 0, 1).unwrap()]));
            best = best.min(t.elapsed().as_secs_f64() / 8.0);
        }
        println!(
            "streaming reference: relu over {} MB of f32: {:.1} us, {:.1} GB/s read + write",
            n * 4 / 1_000_000,
            best * 1e6,
            (n * 8) as f64 / best / 1e9
        );
    }
    if what == "decode" || what == "all" {
        // A 7B model's projections and SmolLM2's.
        let default: &[(usize, usize)] =
            if big { &[(4096, 4096), (14336, 4096), (4096, 14336), (576, 1536)] } else { &[(4096, 4096), (576, 1536)] };
        // QB_SHAPES=NxK,NxK and QB_REPS=n override the defaults.
        let shapes: Vec<(usize, usize)> = match std::env::var("QB_SHAPES") {
            Ok(list) => list.split(',').filter_map(|s| s.split_once('x')).map(|(n, k)| (n.parse().unwrap(), k.parse().unwrap())).collect(),
            Err(_) => default.to_vec(),
        };
        let reps = std::env::var("QB_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(if big { 5 } else { 3 });
        decode(&dev, &shapes, &types, if big { 768 << 20 } else { 1 << 27 }, reps);
    }
    if what == "prefill" || what == "all" {
        let shapes: &[(usize, usize, usize)] = if big {
            &[(512, 4096, 4096), (128, 1536, 576)]
        } else {
            // SmolLM2's MLP on 128 tokens, then all-MiniLM-L6-v2's QKV, output, up and down on 256.
            &[(128, 1536, 576), (128, 576, 1536), (256, 1152, 384), (256, 384, 384), (256, 1536, 384), (256, 384, 1536)]
        };
        prefill(&dev, shapes, &types, 3);
    }
}
