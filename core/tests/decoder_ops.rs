//! The ops decoders add (rotary embeddings, KV-cache writes, attention over a cache, argmax, the
//! SwiGLU gate) on every backend against `webformers::reference`.

#[macro_use]
mod support;

use support::{F32, Rng, Tolerance, assert_close, devices, f32_sum};
use webformers::{BinaryOp, DType, Tensor, reference};

async fn read(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().await.unwrap()
}

/// The values as a cache of `dtype` stores them (f16: rounded to nearest).
fn stored_as(dtype: DType, x: &[f32]) -> Vec<f32> {
    if dtype == DType::F16 { x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect() } else { x.to_vec() }
}

fn inv_freq(rotary: usize, theta: f32) -> Vec<f32> {
    (0..rotary / 2).map(|i| 1.0 / theta.powf(2.0 * i as f32 / rotary as f32)).collect()
}

async_test! { async fn rope_both_pairings_and_partial_rotary() {
    let mut rng = Rng::new(21);
    for (name, dev) in devices().await {
        for &(t, heads, d, rotary, interleaved) in &[(1, 1, 2, 2, false), (5, 3, 8, 8, true), (7, 9, 64, 64, false), (3, 2, 64, 32, true), (4, 2, 10, 6, false)] {
            let x = rng.vec(t * heads * d, 1.0);
            let positions: Vec<u32> = (0..t as u32).map(|p| p * 37 + 5).collect();
            let freqs = inv_freq(rotary, 10000.0);
            let tx = Tensor::from_f32(&x, &[t, heads, d], &dev).unwrap();
            let tp = Tensor::from_u32(&positions, &[t], &dev).unwrap();
            let tf = Tensor::from_f32(&freqs, &[freqs.len()], &dev).unwrap();
            let got = read(&tx.rope(&tp, &tf, interleaved).unwrap()).await;
            let want = reference::rope(&x, &positions, &freqs, heads, d, interleaved);
            // sin/cos of angles up to ~300 rad: f32 argument rounding dominates.
            assert_close(&format!("{name} rope t={t} h={heads} d={d} r={rotary} interleaved={interleaved}"), &got, &want, Tolerance { abs: 1e-4, rel: 1e-4 });

            // Heads from `rotated` on are copied as they are; the input a view with a gap
            // between tokens (the first half of [t, 2 heads, d]).
            let rotated = heads / 2;
            let xw = rng.vec(t * 2 * heads * d, 1.0);
            let view = Tensor::from_f32(&xw, &[t, 2 * heads, d], &dev).unwrap().narrow(1, 0, heads).unwrap();
            let got = read(&view.rope_heads(&tp, &tf, interleaved, rotated).unwrap()).await;
            let xs: Vec<f32> = xw.chunks(2 * heads * d).flat_map(|row| row[..heads * d].to_vec()).collect();
            let rot = reference::rope(&xs, &positions, &freqs, heads, d, interleaved);
            let want: Vec<f32> = (0..t * heads * d).map(|i| if (i / d) % heads < rotated { rot[i] } else { xs[i] }).collect();
            assert_close(&format!("{name} rope of {rotated} of {heads} heads, t={t} d={d}"), &got, &want, Tolerance { abs: 1e-4, rel: 1e-4 });
        }
    }
}}

async_test! { async fn rope_sin_cos_are_accurate_to_f32() {
    // Positions of a short prompt, where f32 angles are exact enough that only sin and cos
    // differ: WGSL lets builtins be off by 2^-11, as SwiftShader's are (2e-4 here), which moved a
    // tiny decoder's logits by 2e-3; rope.wgsl computes its own.
    let mut rng = Rng::new(23);
    let (t, heads, d) = (64, 2, 16);
    let x = rng.vec(t * heads * d, 1.0);
    let positions: Vec<u32> = (0..t as u32).collect();
    let freqs = inv_freq(d, 10000.0);
    let want = reference::rope(&x, &positions, &freqs, heads, d, false);
    for (name, dev) in devices().await {
        let tx = Tensor::from_f32(&x, &[t, heads, d], &dev).unwrap();
        let tp = Tensor::from_u32(&positions, &[t], &dev).unwrap();
        let tf = Tensor::from_f32(&freqs, &[freqs.len()], &dev).unwrap();
        let got = read(&tx.rope(&tp, &tf, false).unwrap()).await;
        assert_close(&format!("{name} rope at positions 0..{t}"), &got, &want, Tolerance { abs: 2e-6, rel: 2e-6 });
    }
}}

async_test! { async fn kv_cache_writes_then_causal_attention_over_it() {
    // A decode loop in miniature: prefill 5 tokens, then 3 single-token steps, each writing its
    // k/v rows into the cache and attending over everything so far.
    let mut rng = Rng::new(22);
    let (hq, hkv, d, max_len) = (6, 2, 16, 12);
    for (name, dev) in devices().await {
        for dtype in [DType::F32, DType::F16] {
            let k_cache = Tensor::cache(dtype, &[max_len, hkv, d], &dev).unwrap();
            let v_cache = Tensor::cache(dtype, &[max_len, hkv, d], &dev).unwrap();
            let mut all_k = Vec::new();
            let mut all_v = Vec::new();
            let mut pos = 0;
            for step_len in [5usize, 1, 1, 1] {
                let q = rng.vec(step_len * hq * d, 1.0);
                let k = rng.vec(step_len * hkv * d, 1.0);
                let v = rng.vec(step_len * hkv * d, 1.0);
                all_k.extend(stored_as(dtype, &k));
                all_v.extend(stored_as(dtype, &v));
                let tk = Tensor::from_f32(&k, &[step_len, hkv, d], &dev).unwrap().to_dtype(dtype).unwrap();
                let tv = Tensor::from_f32(&v, &[step_len, hkv, d], &dev).unwrap().to_dtype(dtype).unwrap();
                let keys = k_cache.write_rows(&tk, pos).unwrap().narrow(0, 0, pos + step_len).unwrap();
                let values = v_cache.write_rows(&tv, pos).unwrap().narrow(0, 0, pos + step_len).unwrap();
                // Attention reads an f16 cache as it is stored (shader-f16) or through f32 copies.
                let tq = Tensor::from_f32(&q, &[step_len, hq, d], &dev).unwrap();
                let q_off = Tensor::from_u32(&[0, step_len as u32], &[2], &dev).unwrap();
                let kv_off = Tensor::from_u32(&[0, (pos + step_len) as u32], &[2], &dev).unwrap();
                let scale = 1.0 / (d as f32).sqrt();
                let got = read(&tq.attention_kv(&keys, &values, &q_off, &kv_off, scale, true).unwrap()).await;
                let want = reference::attention_kv(&q, &all_k, &all_v, (&[0, step_len as u32], &[0, (pos + step_len) as u32]), hq, hkv, d, scale, true);
                assert_close(&format!("{name} {dtype} cache step at {pos}"), &got, &want, f32_sum(d));
                pos += step_len;
            }
            // The cache holds every row written, and zeros after.
            let cached = read(&k_cache.to_dtype(DType::F32).unwrap()).await;
            assert_close(&format!("{name} {dtype} cache contents"), &cached[..all_k.len()], &all_k, Tolerance { abs: 0.0, rel: 0.0 });
            assert!(cached[all_k.len()..].iter().all(|&v| v == 0.0));
        }
    }
}}

async_test! { async fn f32_rows_written_into_an_f16_cache() {
    // The write converts (on the GPU within its one dispatch): callers never convert first.
    let mut rng = Rng::new(25);
    for (name, dev) in devices().await {
        let rows = rng.vec(3 * 2 * 8, 4.0);
        let cache = Tensor::cache(DType::F16, &[5, 2, 8], &dev).unwrap();
        let src = Tensor::from_f32(&rows, &[3, 2, 8], &dev).unwrap();
        let written = cache.write_rows(&src, 2).unwrap();
        let got = read(&written.to_dtype(DType::F32).unwrap()).await;
        let want: Vec<f32> = [vec![0.0; 2 * 2 * 8], stored_as(DType::F16, &rows)].concat();
        assert_close(&format!("{name} f16 cache rows 2..5"), &got, &want, Tolerance { abs: 0.0, rel: 0.0 });
    }
}}

async_test! { async fn write_rows_rejects_non_caches_and_overflow() {
    let dev = webformers::Device::Cpu;
    let plain = Tensor::from_f32(&[0.0; 8], &[4, 2], &dev).unwrap();
    let rows = Tensor::from_f32(&[1.0; 4], &[2, 2], &dev).unwrap();
    assert!(plain.write_rows(&rows, 0).is_err());
    let cache = Tensor::cache(DType::F32, &[4, 2], &dev).unwrap();
    assert!(cache.write_rows(&rows, 3).is_err(), "rows 3..5 of 4");
    assert!(cache.write_rows(&rows, 2).is_ok());
}}

async_test! { async fn argmax_and_silu_gate() {
    let mut rng = Rng::new(23);
    for (name, dev) in devices().await {
        for &(rows, n) in &[(1, 1), (1, 49152), (3, 1000), (2, 7)] {
            let mut x = rng.vec(rows * n, 5.0);
            // A tie: the first index must win.
            if n > 3 {
                x[2] = 100.0;
                x[n - 1] = 100.0;
            }
            let t = Tensor::from_f32(&x, &[rows, n], &dev).unwrap();
            let got = t.argmax().unwrap().to_vec_u32().await.unwrap();
            let want: Vec<u32> = x
                .chunks(n)
                .map(|r| r.iter().enumerate().fold(0, |b, (i, &v)| if v > r[b] { i } else { b }) as u32)
                .collect();
            assert_eq!(got, want, "{name} argmax {rows}x{n}");
        }
        let (a, b) = (rng.vec(333, 4.0), rng.vec(333, 4.0));
        let ta = Tensor::from_f32(&a, &[333], &dev).unwrap();
        let tb = Tensor::from_f32(&b, &[333], &dev).unwrap();
        let got = read(&ta.binary(&tb, BinaryOp::SiluMul).unwrap()).await;
        let want: Vec<f32> = a.iter().zip(&b).map(|(&x, &y)| reference::silu(x) * y).collect();
        assert_close(&format!("{name} silu gate"), &got, &want, F32);
    }
}}

async_test! { async fn ops_read_views_that_start_past_element_zero() {
    // The last row of a matrix (a decoder's final hidden state) is a contiguous view with an
    // offset: every op must read it from there, not from the start of the buffer.
    let mut rng = Rng::new(24);
    let (rows, h) = (5, 37);
    let x = rng.vec(rows * h, 2.0);
    let w = rng.vec(h, 1.0);
    let last = &x[(rows - 1) * h..];
    for (name, dev) in devices().await {
        let t = Tensor::from_f32(&x, &[rows, h], &dev).unwrap().narrow(0, rows - 1, 1).unwrap();
        let tw = Tensor::from_f32(&w, &[h], &dev).unwrap();
        let got = read(&t.rms_norm(&tw, 1e-6).unwrap()).await;
        assert_close(&format!("{name} rms norm of last row"), &got, &reference::rms_norm(last, &w, h, 1e-6), Tolerance { abs: 2e-5, rel: 2e-5 });
        let got = read(&t.softmax(None, 1.0).unwrap()).await;
        assert_close(&format!("{name} softmax of last row"), &got, &reference::softmax(last, None, h, 1.0), F32);
        let got = t.argmax().unwrap().to_vec_u32().await.unwrap();
        let want = last.iter().enumerate().fold(0, |b, (i, &v)| if v > last[b] { i } else { b }) as u32;
        assert_eq!(got, vec![want], "{name} argmax of last row");
        let got = read(&t.l2_normalize(1e-12).unwrap()).await;
        assert_close(&format!("{name} l2 of last row"), &got, &reference::l2_normalize(last, h, 1e-12), F32);
        let ids = Tensor::from_u32(&[9, 1, 3], &[3], &dev).unwrap().narrow(0, 1, 2).unwrap();
        let table = Tensor::from_f32(&x, &[rows, h], &dev).unwrap();
        let got = read(&table.gather_rows(&ids).unwrap()).await;
        let want: Vec<f32> = [1usize, 3].iter().flat_map(|&r| x[r * h..(r + 1) * h].to_vec()).collect();
        assert_close(&format!("{name} gather with offset ids"), &got, &want, Tolerance { abs: 0.0, rel: 0.0 });
    }
}}

async_test! { async fn rotary_folded_into_the_cache_write_and_attention() {
    // `write_rows_rope` (keys rotated as they are written, values copied along: one dispatch on
    // the GPU) then `rope_attention_kv_window` (queries rotated as attention loads them), or
    // `attention_append_rope` (all of it in one dispatch for a single token), over a prefill
    // and single-token steps, partial rotary of an odd head size, both pairings, against the
    // reference's rope then attention. With an f16 cache (stored and attended as f16 on a GPU
    // with shader-f16; converted elsewhere) the reference's keys and values are rounded to f16
    // as the cache stores them.
    let mut rng = Rng::new(24);
    let (hq, hkv, d, rotary, max_len) = (6, 3, 10, 6, 12);
    let freqs = inv_freq(rotary, 10000.0);
    for (name, dev) in devices().await {
        for ((interleaved, appended), dtype) in
            [(false, false), (true, false), (false, true), (true, true)].into_iter().flat_map(|c| [(c, DType::F32), (c, DType::F16)])
        {
            let cache = Tensor::cache(dtype, &[max_len, 2 * hkv, d], &dev).unwrap();
            let tf = Tensor::from_f32(&freqs, &[freqs.len()], &dev).unwrap();
            let (mut all_k, mut all_v) = (Vec::new(), Vec::new());
            let mut pos = 0;
            for step_len in [5usize, 1, 2, 1] {
                let heads = rng.vec(step_len * (hq + 2 * hkv) * d, 1.0);
                let positions: Vec<u32> = (pos..pos + step_len).map(|p| p as u32).collect();
                let part = |from: usize, n: usize| -> Vec<f32> {
                    heads.chunks((hq + 2 * hkv) * d).flat_map(|row| row[from * d..(from + n) * d].to_vec()).collect()
                };
                let (q, k, v) = (part(0, hq), part(hq, hkv), part(hq + hkv, hkv));
                all_k.extend(stored_as(dtype, &reference::rope(&k, &positions, &freqs, hkv, d, interleaved)));
                all_v.extend(stored_as(dtype, &v));

                let th = Tensor::from_f32(&heads, &[step_len, hq + 2 * hkv, d], &dev).unwrap();
                let tp = Tensor::from_u32(&positions, &[step_len], &dev).unwrap();
                let rope = (&tp, &tf, interleaved);
                let q_off = Tensor::from_u32(&[0, step_len as u32], &[2], &dev).unwrap();
                let kv_off = Tensor::from_u32(&[0, (pos + step_len) as u32], &[2], &dev).unwrap();
                let scale = 1.0 / (d as f32).sqrt();
                let (tq, tkv) = (th.narrow(1, 0, hq).unwrap(), th.narrow(1, hq, 2 * hkv).unwrap());
                let attended = if appended {
                    tq.attention_append_rope(&tkv, &cache, (&q_off, &kv_off), pos, rope, scale, None).unwrap()
                } else {
                    let all = cache.write_rows_rope(&tkv, pos, rope, hkv).unwrap().narrow(0, 0, pos + step_len).unwrap();
                    let (keys, values) = (all.narrow(1, 0, hkv).unwrap(), all.narrow(1, hkv, hkv).unwrap());
                    tq.rope_attention_kv_window(rope, &keys, &values, &q_off, &kv_off, scale, true, None).unwrap()
                };
                let got = read(&attended).await;
                let q_rot = reference::rope(&q, &positions, &freqs, hq, d, interleaved);
                let offsets: (&[u32], &[u32]) = (&[0, step_len as u32], &[0, (pos + step_len) as u32]);
                let want = reference::attention_kv(&q_rot, &all_k, &all_v, offsets, hq, hkv, d, scale, true);
                let what = format!("{name} {dtype} rotated attention at {pos}, {step_len} tokens, interleaved={interleaved} appended={appended}");
                // f16: a rotated key that lands on a rounding boundary may round the other way
                // (the kernel's and the reference's rotations agree to 2e-6, not bit for bit).
                let tolerance = if dtype == DType::F16 { Tolerance { abs: 2e-3, rel: 2e-3 } } else { f32_sum(d) };
                assert_close(&what, &got, &want, tolerance);
                pos += step_len;
            }
            // The cache holds the rotated keys and the values, row by row.
            let cached = read(&cache.to_dtype(DType::F32).unwrap()).await;
            let want: Vec<f32> = all_k.chunks(hkv * d).zip(all_v.chunks(hkv * d)).flat_map(|(k, v)| [k, v].concat()).collect();
            let what = format!("{name} {dtype} rotated cache rows, interleaved={interleaved} appended={appended}");
            // One f16 rounding step (2^-11 relative) where the rotations differ in the last bits.
            let tolerance = if dtype == DType::F16 { Tolerance { abs: 1e-6, rel: 1e-3 } } else { Tolerance { abs: 2e-6, rel: 2e-6 } };
            assert_close(&what, &cached[..want.len()], &want, tolerance);
        }
    }
}}
