//! Quantized matmul speed: decode (one activation row: GB/s of weights streamed) and prefill
//! (M rows: GFLOP/s), per block type, with f32 / f16 weights of the same shape as the baseline.
//!
//!     cargo run --release -p webformers-core --example quant_bench -- [cpu|gpu] [decode|prefill|all]
//!
//! Decode realizes many independent matvecs over distinct weights in one submission, so the
//! weights (1 GiB or more in all on a GPU) cannot sit in a cache and a GPU's per-submission
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

const TYPES: [DType; 8] = [DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4K, DType::Q5K, DType::Q6K];

fn decode(dev: &Device, shapes: &[(usize, usize)], budget_bytes: usize, reps: usize) {
    println!("decode (M = 1): time per matvec, GB/s of weight bytes read, G weights/s");
    for &(n, k) in shapes {
        for dtype in TYPES.into_iter().filter(|d| k % d.block_len() == 0) {
            let bytes = dtype.bytes_for(n * k).unwrap();
            let count = (budget_bytes / bytes).clamp(1, 64);
            let mut seed = 0x1234_5678_9abc_def1u64 ^ (n * k) as u64;
            let ws: Vec<Tensor> = (0..count).map(|_| weight(&mut seed, dtype, n, k, dev)).collect();
            let x = Tensor::from_f32(&vec![0.5f32; k], &[1, k], dev).unwrap();
            let mut best = f64::INFINITY;
            for _ in 0..reps + 1 {
                let ys: Vec<Tensor> = ws.iter().map(|w| x.linear(w, None, Activation::None).unwrap()).collect();
                let refs: Vec<&Tensor> = ys.iter().collect();
                let t = Instant::now();
                pollster::block_on(Tensor::read_all(&refs)).unwrap_or_else(|e| panic!("{dtype}: {e}"));
                best = best.min(t.elapsed().as_secs_f64() / count as f64);
            }
            println!(
                "  [{n:>5} x {k:>5}] {:>5}: {:>8.1} us  {:>7.1} GB/s  {:>6.1} Gw/s  ({count} weights of {:.1} MB)",
                dtype.name(),
                best * 1e6,
                bytes as f64 / best / 1e9,
                (n * k) as f64 / best / 1e9,
                bytes as f64 / 1e6
            );
        }
    }
}

fn prefill(dev: &Device, shapes: &[(usize, usize, usize)], reps: usize) {
    println!("prefill: time per matmul, GFLOP/s");
    for &(m, n, k) in shapes {
        for dtype in TYPES.into_iter().filter(|d| k % d.block_len() == 0) {
            let mut seed = 42u64;
            let w = weight(&mut seed, dtype, n, k, dev);
            let x = Tensor::from_f32(&vec![0.25f32; m * k], &[m, k], dev).unwrap();
            let mut best = f64::INFINITY;
            for _ in 0..reps + 1 {
                let y = x.linear(&w, None, Activation::None).unwrap();
                let t = Instant::now();
                pollster::block_on(Tensor::read_all(&[&y])).unwrap();
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!("  [{m:>4} x {k:>5}] x [{n:>5} x {k:>5}]^T {:>5}: {:>9.1} us  {:>7.1} GFLOP/s", dtype.name(), best * 1e6, 2.0 * (m * n * k) as f64 / best / 1e9);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let on = args.first().map(String::as_str).unwrap_or("cpu");
    let what = args.get(1).map(String::as_str).unwrap_or("all");
    let dev = match on {
        "gpu" => Device::Gpu(pollster::block_on(GpuContext::new(GpuOptions::from_env())).expect("a GPU adapter")),
        _ => Device::Cpu,
    };
    println!("device: {}", dev.describe());
    let big = dev.is_gpu();
    if what == "decode" || what == "all" {
        // LLM-sized rows: a 7B model's projections, SmolLM2's, and a large one on the GPU.
        let shapes: &[(usize, usize)] = if big { &[(4096, 4096), (14336, 4096), (4096, 14336), (576, 1536)] } else { &[(4096, 4096), (576, 1536)] };
        decode(&dev, shapes, if big { 1 << 30 } else { 1 << 27 }, if big { 5 } else { 3 });
    }
    if what == "prefill" || what == "all" {
        let shapes: &[(usize, usize, usize)] = if big { &[(512, 4096, 4096), (128, 1536, 576)] } else { &[(128, 1536, 576), (128, 576, 1536)] };
        prefill(&dev, shapes, 3);
    }
}
