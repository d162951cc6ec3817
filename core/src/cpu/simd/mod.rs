//! One SIMD vocabulary, implemented per instruction set. Kernels are written once, generic over
//! `Simd`, marked `#[inline(always)]`, and instantiated inside a function compiled for the target
//! feature (see `dispatch!`), so the intrinsics inline into code built for that ISA.

#![allow(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub(crate) mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod wasm;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// A vector of `LANES` f32s. All loads and stores are unaligned.
pub(crate) trait Simd: Copy + Send + Sync + 'static {
    const LANES: usize;
    type V: Copy;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// a * b + c
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn reduce_sum(v: Self::V) -> f32;
    /// Loads LANES f16 values and widens them.
    unsafe fn load_f16(p: *const half::f16) -> Self::V;
}

/// The instruction set kernels run with, chosen once per process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "aarch64")]
    Neon,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
    /// simd128 and relaxed-simd's FMA: the `relaxed-simd` build, which only loads where the
    /// engine validates relaxed-simd, so it needs no detection here.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
    Relaxed,
}

pub(crate) fn isa() -> Isa {
    use std::sync::OnceLock;
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(detect)
}

fn detect() -> Isa {
    // WEBFORMERS_ISA=scalar|avx2 forces a narrower path (for tests and benchmarks).
    let forced = std::env::var("WEBFORMERS_ISA").ok();
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
        let avx512 = avx2 && is_x86_feature_detected!("avx512f");
        match forced.as_deref() {
            Some("scalar") => return Isa::Scalar,
            Some("avx2") if avx2 => return Isa::Avx2,
            _ => {}
        }
        if avx512 {
            return Isa::Avx512;
        }
        if avx2 {
            return Isa::Avx2;
        }
    }
    #[cfg(target_arch = "aarch64")]
    if forced.as_deref() != Some("scalar") {
        return Isa::Neon;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
    if forced.as_deref() != Some("scalar") {
        return Isa::Relaxed;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if forced.as_deref() != Some("scalar") {
        return Isa::Simd128;
    }
    let _ = forced;
    Isa::Scalar
}

impl Isa {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => "avx2+fma",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512f",
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => "neon",
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => "simd128",
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
            Isa::Relaxed => "relaxed-simd",
        }
    }
}

/// Calls the generic kernel `$f::<S>($args)` with the best `S` for this CPU, compiled with its
/// target features enabled. The closure must be inlined into `entry`: compiled on its own it
/// lacks the features, and the kernel's intrinsics inlined into it stay out-of-line calls (one
/// call per FMA: matvec, every decoder step, ran 3x slower).
macro_rules! dispatch {
    ($f:ident ( $($arg:expr),* $(,)? )) => {
        $crate::cpu::simd::dispatch!(@go $f [] ( $($arg),* ))
    };
    ($f:ident :: < $($g:tt),* > ( $($arg:expr),* $(,)? )) => {
        $crate::cpu::simd::dispatch!(@go $f [$($g),*] ( $($arg),* ))
    };
    (@go $f:ident [$($g:tt),*] ( $($arg:expr),* )) => {{
        use $crate::cpu::simd::{isa, Isa};
        match isa() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                #[target_feature(enable = "avx512f,avx2,fma,f16c")]
                unsafe fn entry<F: FnOnce() -> R, R>(f: F) -> R { f() }
                unsafe { entry(#[inline(always)] || $f::<$crate::cpu::simd::x86::Avx512 $(, $g)*>($($arg),*)) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                #[target_feature(enable = "avx2,fma,f16c")]
                unsafe fn entry<F: FnOnce() -> R, R>(f: F) -> R { f() }
                unsafe { entry(#[inline(always)] || $f::<$crate::cpu::simd::x86::Avx2 $(, $g)*>($($arg),*)) }
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => $f::<$crate::cpu::simd::neon::Neon $(, $g)*>($($arg),*),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => $f::<$crate::cpu::simd::wasm::Simd128 $(, $g)*>($($arg),*),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
            Isa::Relaxed => {
                #[target_feature(enable = "simd128,relaxed-simd")]
                unsafe fn entry<F: FnOnce() -> R, R>(f: F) -> R { f() }
                unsafe { entry(#[inline(always)] || $f::<$crate::cpu::simd::wasm::Relaxed $(, $g)*>($($arg),*)) }
            }
            Isa::Scalar => $f::<$crate::cpu::simd::scalar::Scalar $(, $g)*>($($arg),*),
        }
    }};
}
pub(crate) use dispatch;
