//! Shared by the integration tests: the devices every test runs on, seeded random data, and
//! tolerance checks with named presets.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use webformers::{Device, GpuContext, GpuOptions};

/// CPU always; the GPU with every feature the adapter has; and the GPU without f16 and
/// subgroups, so both kernel families run on an adapter that has them (lavapipe does).
/// Without an adapter the GPU entries are skipped with the reason printed, unless
/// WEBFORMERS_REQUIRE_GPU=1 (set by CI), where a missing adapter fails the test.
pub fn devices() -> Vec<(String, Device)> {
    let mut out = vec![("cpu".to_string(), Device::Cpu)];
    for (name, gpu) in gpus() {
        out.push((name.to_string(), Device::Gpu(gpu.clone())));
    }
    out
}

fn gpus() -> &'static [(&'static str, Arc<GpuContext>)] {
    static GPUS: OnceLock<Vec<(&'static str, Arc<GpuContext>)>> = OnceLock::new();
    GPUS.get_or_init(|| {
        let full = pollster::block_on(GpuContext::new(GpuOptions::default()));
        let basic = pollster::block_on(GpuContext::new(GpuOptions { disable_f16: true, disable_subgroups: true }));
        match (full, basic) {
            (Ok(full), Ok(basic)) => {
                let f = full.features();
                eprintln!("GPU backends run on: {}", full.describe());
                let mut v = vec![("gpu", full.clone())];
                if f.f16 || f.subgroups {
                    v.push(("gpu-no-f16-no-subgroups", basic));
                } else {
                    eprintln!("note: the adapter has neither shader-f16 nor subgroups; those kernel variants are only validated by naga here");
                }
                v
            }
            (Err(e), _) | (_, Err(e)) => {
                if std::env::var("WEBFORMERS_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                    panic!("WEBFORMERS_REQUIRE_GPU=1 but no GPU adapter: {e}");
                }
                eprintln!("SKIPPING GPU backends: {e} (set WEBFORMERS_REQUIRE_GPU=1 to make this an error)");
                Vec::new()
            }
        }
    })
}

/// A small deterministic generator (xorshift), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-scale, scale)).collect()
    }
}

/// |got - want| <= abs + rel * |want|, elementwise.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub abs: f32,
    pub rel: f32,
}

/// f32 kernels that reorder sums or use the shared exp/erf approximations.
pub const F32: Tolerance = Tolerance { abs: 1e-5, rel: 1e-5 };

/// Matmul-like sums over `k` terms of values of order 1: rounding error grows like sqrt(k).
pub fn f32_sum(k: usize) -> Tolerance {
    Tolerance { abs: 2e-6 * (k as f32).sqrt() * 4.0, rel: 1e-5 }
}

#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tolerance) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0usize, 0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        let allowed = tol.abs + tol.rel * w.abs();
        if !(err <= allowed) && (err - allowed > worst.1 || worst.1 == 0.0) {
            worst = (i, err - allowed);
        }
        assert!(
            err <= allowed,
            "{what}: element {i}: got {g}, want {w} (|diff| {err:e} > {allowed:e}; tolerance {tol:?})"
        );
    }
}
