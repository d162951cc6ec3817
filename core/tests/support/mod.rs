//! Shared by the integration tests: the devices every test runs on, seeded random data, and
//! tolerance checks with named presets, and `async_test!`, which runs one async test body
//! natively (a `#[test]` driven by pollster) and in the browser (a `#[wasm_bindgen_test]`).
#![allow(dead_code)]

use std::sync::Arc;

use webformers::{Device, GpuContext, GpuOptions};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Defines a test whose body is written once, as an `async fn`: natively a `#[test]` that blocks
/// on it with pollster; in wasm a `#[wasm_bindgen_test]` the browser awaits (nothing may block
/// there). The body lives in a module of the test's name, so both wrappers keep that name.
#[allow(unused_macros)] // split.rs, gguf.rs and quant.rs include the module without async tests
macro_rules! async_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            pub(super) async fn body() $body
        }

        $(#[$meta])*
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            pollster::block_on($name::body())
        }

        $(#[$meta])*
        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() {
            $name::body().await
        }
    };
}

/// A line for the test log: stderr natively, the browser console in wasm (the runner shows it
/// with `--nocapture`, and always for a failing test).
macro_rules! test_log {
    ($($arg:tt)*) => {{
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!($($arg)*);
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_test::console_log!($($arg)*);
    }};
}

/// Whether a missing GPU adapter fails the tests: WEBFORMERS_REQUIRE_GPU=1 (set by CI), read at
/// run time natively and at compile time in wasm, where tests cannot see the environment.
pub fn gpu_required() -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::env::var("WEBFORMERS_REQUIRE_GPU").is_ok_and(|v| v == "1")
    }
    #[cfg(target_arch = "wasm32")]
    {
        option_env!("WEBFORMERS_REQUIRE_GPU") == Some("1")
    }
}

/// CPU always; the GPU with every feature the adapter has; and the GPU without f16 and
/// subgroups, so both kernel families run on an adapter that has them (lavapipe does).
/// Without an adapter the GPU entries are skipped with the reason printed, unless
/// WEBFORMERS_REQUIRE_GPU=1, where a missing adapter fails the test (see `gpu_required`).
/// In the browser the GPU is the page's WebGPU adapter.
pub async fn devices() -> Vec<(String, Device)> {
    let mut out = vec![("cpu".to_string(), Device::Cpu)];
    for (name, gpu) in gpus().await {
        out.push((name.to_string(), Device::Gpu(gpu.clone())));
    }
    out
}

type Gpus = Vec<(&'static str, Arc<GpuContext>)>;

/// Opened once per test binary (natively) or per page (wasm) and shared by every test.
#[cfg(not(target_arch = "wasm32"))]
async fn gpus() -> Gpus {
    static GPUS: std::sync::OnceLock<Gpus> = std::sync::OnceLock::new();
    GPUS.get_or_init(|| pollster::block_on(open_gpus())).clone()
}

#[cfg(target_arch = "wasm32")]
async fn gpus() -> Gpus {
    thread_local! {
        static GPUS: std::cell::RefCell<Option<Gpus>> = const { std::cell::RefCell::new(None) };
    }
    if let Some(g) = GPUS.with_borrow(|g| g.clone()) {
        return g;
    }
    let g = open_gpus().await;
    GPUS.with_borrow_mut(|slot| slot.get_or_insert(g).clone())
}

async fn open_gpus() -> Gpus {
    // Kernel tests cover every variant: the full context computes in f16 where kernels can.
    let full = GpuContext::new(GpuOptions { f16_math: true, ..GpuOptions::default() }).await;
    let basic = GpuContext::new(GpuOptions { disable_f16: true, disable_subgroups: true, ..GpuOptions::default() }).await;
    match (full, basic) {
        (Ok(full), Ok(basic)) => {
            let f = full.features();
            test_log!("GPU backends run on: {}", Device::Gpu(full.clone()).describe());
            let mut v = vec![("gpu", full.clone())];
            if f.f16 || f.subgroups {
                v.push(("gpu-no-f16-no-subgroups", basic));
            } else {
                test_log!("note: the adapter has neither shader-f16 nor subgroups; those kernel variants are only validated by naga here");
            }
            v
        }
        (Err(e), _) | (_, Err(e)) => {
            if gpu_required() {
                panic!("WEBFORMERS_REQUIRE_GPU=1 but no GPU adapter: {e}");
            }
            test_log!("SKIPPING GPU backends: {e} (set WEBFORMERS_REQUIRE_GPU=1 to make this an error)");
            Vec::new()
        }
    }
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
        assert!(err <= allowed, "{what}: element {i}: got {g}, want {w} (|diff| {err:e} > {allowed:e}; tolerance {tol:?})");
    }
}
