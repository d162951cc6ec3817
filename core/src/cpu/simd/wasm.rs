//! wasm simd128 (4 lanes). Built when the crate is compiled with `+simd128`; `Relaxed` adds
//! relaxed-simd's fused multiply-add when the crate's `relaxed-simd` feature is on (the npm
//! package's second pair of builds, loaded only where the engine validates relaxed-simd).

use std::arch::wasm32::*;

use super::Simd;

#[derive(Clone, Copy)]
pub(crate) struct Simd128;

impl Simd for Simd128 {
    const LANES: usize = 4;
    type V = v128;
    #[inline(always)]
    unsafe fn zero() -> v128 {
        f32x4_splat(0.0)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> v128 {
        f32x4_splat(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> v128 {
        v128_load(p as *const v128)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: v128) {
        v128_store(p as *mut v128, v)
    }
    #[inline(always)]
    unsafe fn fma(a: v128, b: v128, c: v128) -> v128 {
        // Relaxed-simd's FMA is not everywhere (Node 20 lacks it): plain simd128 multiplies and adds.
        f32x4_add(f32x4_mul(a, b), c)
    }
    #[inline(always)]
    unsafe fn add(a: v128, b: v128) -> v128 {
        f32x4_add(a, b)
    }
    #[inline(always)]
    unsafe fn reduce_sum(v: v128) -> f32 {
        let s = f32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
        let s = f32x4_add(s, i32x4_shuffle::<1, 0, 3, 2>(s, s));
        f32x4_extract_lane::<0>(s)
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const half::f16) -> v128 {
        let s = std::slice::from_raw_parts(p, 4);
        f32x4(s[0].to_f32(), s[1].to_f32(), s[2].to_f32(), s[3].to_f32())
    }
}

/// simd128 with relaxed-simd's `f32x4.relaxed_madd` (one fused instruction where the CPU has FMA,
/// instead of a multiply and an add: what bounds the f32 GEMM's inner loop). Kernels reach it
/// through `dispatch!`'s entry compiled with `relaxed-simd` enabled.
#[cfg(feature = "relaxed-simd")]
#[derive(Clone, Copy)]
pub(crate) struct Relaxed;

#[cfg(feature = "relaxed-simd")]
impl Simd for Relaxed {
    const LANES: usize = 4;
    type V = v128;
    #[inline(always)]
    unsafe fn zero() -> v128 {
        Simd128::zero()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> v128 {
        Simd128::splat(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> v128 {
        Simd128::load(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: v128) {
        Simd128::store(p, v)
    }
    #[inline(always)]
    unsafe fn fma(a: v128, b: v128, c: v128) -> v128 {
        f32x4_relaxed_madd(a, b, c)
    }
    #[inline(always)]
    unsafe fn add(a: v128, b: v128) -> v128 {
        Simd128::add(a, b)
    }
    #[inline(always)]
    unsafe fn reduce_sum(v: v128) -> f32 {
        Simd128::reduce_sum(v)
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const half::f16) -> v128 {
        Simd128::load_f16(p)
    }
}
