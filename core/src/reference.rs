//! Plain, obviously correct implementations of every op, on row-major host arrays. They favour
//! clarity over speed (f64 accumulation, libm's erf and exp) and are what the kernel tests of
//! both backends compare against.

/// C[b] = A[b] (M x K) * B[b] (K x N), all row-major.
pub fn matmul(a: &[f32], b: &[f32], batch: usize, m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0f32; batch * m * n];
    for bi in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += a[bi * m * k + i * k + p] as f64 * b[bi * k * n + p * n + j] as f64;
                }
                c[bi * m * n + i * n + j] = s as f32;
            }
        }
    }
    c
}

/// y = x W^T + bias, with W stored [N, K] as Hugging Face stores linear weights.
pub fn linear(x: &[f32], w: &[f32], bias: Option<&[f32]>, k: usize, n: usize) -> Vec<f32> {
    let rows = x.len() / k;
    let mut y = vec![0f32; rows * n];
    for r in 0..rows {
        for j in 0..n {
            let s: f64 = (0..k).map(|p| x[r * k + p] as f64 * w[j * k + p] as f64).sum();
            y[r * n + j] = (s + bias.map_or(0.0, |b| b[j] as f64)) as f32;
        }
    }
    y
}

/// The int8 matmul's activation quantization: each run of 32 values becomes `(d, q)` with
/// `value ~= d * q`, the largest magnitude mapped to 127 and the rest rounded to nearest, ties
/// to even.
pub fn quantize_act(x: &[f32]) -> Vec<(f32, [i8; 32])> {
    x.chunks(32)
        .map(|block| {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut q = [0i8; 32];
            for (q, &v) in q.iter_mut().zip(block) {
                *q = (v * id).round_ties_even() as i8;
            }
            (d, q)
        })
        .collect()
}

/// y = x W^T + bias on the int8 path (`webformers::cpu::set_int8_matmul`): x quantized per row by
/// `quantize_act`, W [N, K] the bytes of Q8_0, Q4_0 or Q4_1 blocks. Per pair of blocks the integer
/// dot product of the stored integers is exact and scaled by both scales; Q4_0's -8 and Q4_1's
/// min m enter as `offset * d_x * sum(q_x)`. Sums in f64.
pub fn linear_int8(x: &[f32], w: &[u8], dtype: crate::DType, bias: Option<&[f32]>, k: usize, n: usize) -> crate::Result<Vec<f32>> {
    use crate::DType;
    use crate::quant::{BlockQ4_0, BlockQ4_1, BlockQ8_0, blocks};
    if !k.is_multiple_of(32) {
        return Err(crate::Error::Input(format!("K = {k} is not whole blocks of 32")));
    }
    // Per weight block: (scale, 32 integers, offset per unit of activation).
    let wblocks: Vec<(f32, [i32; 32], f32)> = match dtype {
        DType::Q8_0 => blocks::<BlockQ8_0>(w)?.iter().map(|b| (b.d.get(), b.qs.map(|q| q as i32), 0.0)).collect(),
        DType::Q4_0 => blocks::<BlockQ4_0>(w)?.iter().map(|b| (b.d.get(), nibbles(&b.qs), -8.0 * b.d.get())).collect(),
        DType::Q4_1 => blocks::<BlockQ4_1>(w)?.iter().map(|b| (b.d.get(), nibbles(&b.qs), b.m.get())).collect(),
        d => return Err(crate::Error::Input(format!("{d} has no int8 reference"))),
    };
    if wblocks.len() != n * k / 32 {
        return Err(crate::Error::Input(format!("{} blocks are not [{n}, {k}]", wblocks.len())));
    }
    let rows = x.len() / k;
    let mut y = vec![0f32; rows * n];
    for r in 0..rows {
        let xq = quantize_act(&x[r * k..(r + 1) * k]);
        for j in 0..n {
            let mut s = bias.map_or(0.0, |b| b[j] as f64);
            for (b, (xd, xq)) in xq.iter().enumerate() {
                let (wd, wq, c) = &wblocks[j * k / 32 + b];
                let dot: i32 = wq.iter().zip(xq).map(|(&w, &x)| w * x as i32).sum();
                let xsum: i32 = xq.iter().map(|&x| x as i32).sum();
                s += *wd as f64 * *xd as f64 * dot as f64 + *c as f64 * *xd as f64 * xsum as f64;
            }
            y[r * n + j] = s as f32;
        }
    }
    Ok(y)
}

/// A 4-bit block's integers: low nibbles are values 0..16, high ones 16..32.
fn nibbles(qs: &[u8; 16]) -> [i32; 32] {
    std::array::from_fn(|i| if i < 16 { (qs[i] & 0xF) as i32 } else { (qs[i - 16] >> 4) as i32 })
}

pub fn gelu(x: f32) -> f32 {
    (0.5 * x as f64 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2))) as f32
}

pub fn gelu_tanh(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())) as f32
}

pub fn silu(x: f32) -> f32 {
    let x = x as f64;
    (x / (1.0 + (-x).exp())) as f32
}

/// Layer norm (or RMS norm when `bias` and centring are off) over rows of `h`.
pub fn layer_norm(x: &[f32], residual: Option<&[f32]>, w: &[f32], b: Option<&[f32]>, h: usize, eps: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for r in 0..x.len() / h {
        let row: Vec<f64> = (0..h).map(|i| x[r * h + i] as f64 + residual.map_or(0.0, |res| res[r * h + i] as f64)).collect();
        let mean = row.iter().sum::<f64>() / h as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h as f64;
        for i in 0..h {
            let v = (row[i] - mean) / (var + eps as f64).sqrt() * w[i] as f64 + b.map_or(0.0, |b| b[i] as f64);
            out[r * h + i] = v as f32;
        }
    }
    out
}

pub fn rms_norm(x: &[f32], w: &[f32], h: usize, eps: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for r in 0..x.len() / h {
        let ms = (0..h).map(|i| (x[r * h + i] as f64).powi(2)).sum::<f64>() / h as f64;
        for i in 0..h {
            out[r * h + i] = (x[r * h + i] as f64 / (ms + eps as f64).sqrt() * w[i] as f64) as f32;
        }
    }
    out
}

/// softmax(x * scale + mask) over rows of `n`; `mask` has x's size. A row of only -inf gives 0s.
pub fn softmax(x: &[f32], mask: Option<&[f32]>, n: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for r in 0..x.len() / n {
        let logits: Vec<f64> = (0..n).map(|i| x[r * n + i] as f64 * scale as f64 + mask.map_or(0.0, |m| m[r * n + i] as f64)).collect();
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            continue;
        }
        let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        for i in 0..n {
            out[r * n + i] = ((logits[i] - max).exp() / sum) as f32;
        }
    }
    out
}

/// Attention over packed sequences, queries and keys from the same tokens: q [T, Hq, D], k and v
/// [T, Hkv, D], contiguous.
#[allow(clippy::too_many_arguments)]
pub fn attention(q: &[f32], k: &[f32], v: &[f32], offsets: &[u32], hq: usize, hkv: usize, d: usize, scale: f32, causal: bool) -> Vec<f32> {
    attention_kv(q, k, v, (offsets, offsets), hq, hkv, d, scale, causal)
}

/// Attention over packed sequences: q [Tq, Hq, D], k and v [Tk, Hkv, D], contiguous; sequence s
/// owns query rows q_offsets[s].. and key rows kv_offsets[s]..; causal masks bottom-right aligned.
#[allow(clippy::too_many_arguments)]
pub fn attention_kv(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    offsets: (&[u32], &[u32]),
    hq: usize,
    hkv: usize,
    d: usize,
    scale: f32,
    causal: bool,
) -> Vec<f32> {
    attention_window(q, k, v, offsets, hq, hkv, d, scale, causal, None)
}

/// `attention_kv` where query i, at key position p = Lk - Lq + i of its sequence, sees key j
/// only if |p - j| <= window (and j <= p when causal).
#[allow(clippy::too_many_arguments)]
pub fn attention_window(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    offsets: (&[u32], &[u32]),
    hq: usize,
    hkv: usize,
    d: usize,
    scale: f32,
    causal: bool,
    window: Option<usize>,
) -> Vec<f32> {
    attention_general(q, k, v, offsets, (hq, hkv, d), scale, causal, window, None)
}

/// `attention_kv` plus a bias by distance: `bias` [hq, 2c + 1], and query i at key position p
/// adds bias[h, c + clamp(j - p, -c, c)] to its score for key j (T5's relative positions).
#[allow(clippy::too_many_arguments)]
pub fn attention_distance_bias(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    offsets: (&[u32], &[u32]),
    hq: usize,
    hkv: usize,
    d: usize,
    scale: f32,
    causal: bool,
    bias: &[f32],
) -> Vec<f32> {
    attention_general(q, k, v, offsets, (hq, hkv, d), scale, causal, None, Some(bias))
}

#[allow(clippy::too_many_arguments)]
fn attention_general(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    (q_offsets, kv_offsets): (&[u32], &[u32]),
    (hq, hkv, d): (usize, usize, usize),
    scale: f32,
    causal: bool,
    window: Option<usize>,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let t = q.len() / (hq * d);
    let mut out = vec![0f32; t * hq * d];
    for s in 0..q_offsets.len() - 1 {
        let (qs, qe) = (q_offsets[s] as i64, q_offsets[s + 1] as i64);
        let (ks, ke) = (kv_offsets[s] as i64, kv_offsets[s + 1] as i64);
        for i in qs..qe {
            // The query's position among its sequence's keys: the queries are the last (qe - qs).
            let p = (ke - ks) - (qe - qs) + (i - qs);
            let visible: Vec<usize> = (ks..ke)
                .filter(|&j| !causal || j - ks <= p)
                .filter(|&j| window.is_none_or(|w| (j - ks - p).unsigned_abs() as usize <= w))
                .map(|j| j as usize)
                .collect();
            let i = i as usize;
            for h in 0..hq {
                let kh = h / (hq / hkv);
                let scores: Vec<f64> = visible
                    .iter()
                    .map(|&j| {
                        let dot = (0..d).map(|c| q[(i * hq + h) * d + c] as f64 * k[(j * hkv + kh) * d + c] as f64).sum::<f64>();
                        let bias = bias.map_or(0.0, |b| {
                            let width = b.len() / hq;
                            let c = (width / 2) as i64;
                            b[h * width + (c + (j as i64 - ks - p).clamp(-c, c)) as usize] as f64
                        });
                        dot * scale as f64 + bias
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for c in 0..d {
                    let o: f64 = exps.iter().zip(&visible).map(|(e, &j)| e * v[(j * hkv + kh) * d + c] as f64).sum();
                    // No visible key (a causal query before its keys): zeros, as the kernels give.
                    out[(i * hq + h) * d + c] = if sum > 0.0 { (o / sum) as f32 } else { 0.0 };
                }
            }
        }
    }
    out
}

/// Rotary embedding of x [T, H, D] at `positions` with per-pair frequencies `inv_freq`.
pub fn rope(x: &[f32], positions: &[u32], inv_freq: &[f32], heads: usize, d: usize, interleaved: bool) -> Vec<f32> {
    let mut out = x.to_vec();
    let half = inv_freq.len();
    for (r, &pos) in positions.iter().enumerate() {
        for h in 0..heads {
            let base = (r * heads + h) * d;
            for (i, &f) in inv_freq.iter().enumerate() {
                let angle = pos as f64 * f as f64;
                let (a, b) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
                let (xa, xb) = (x[base + a] as f64, x[base + b] as f64);
                out[base + a] = (xa * angle.cos() - xb * angle.sin()) as f32;
                out[base + b] = (xb * angle.cos() + xa * angle.sin()) as f32;
            }
        }
    }
    out
}

/// Mean (or first-row when `cls`) of each packed sequence's rows of `h`.
pub fn segment_pool(x: &[f32], offsets: &[u32], h: usize, cls: bool) -> Vec<f32> {
    let mut out = vec![0f32; (offsets.len() - 1) * h];
    for s in 0..offsets.len() - 1 {
        let (start, end) = (offsets[s] as usize, offsets[s + 1] as usize);
        for c in 0..h {
            out[s * h + c] = if end == start {
                0.0
            } else if cls {
                x[start * h + c]
            } else {
                ((start..end).map(|r| x[r * h + c] as f64).sum::<f64>() / (end - start) as f64) as f32
            };
        }
    }
    out
}

/// out[b, r, j] = x[b, r, min(index[r, j], n - 1)]: x [B, R, N], index [R, M], out [B, R, M].
pub fn take_along_last(x: &[f32], index: &[u32], rows: usize, n: usize, m: usize) -> Vec<f32> {
    let batch = x.len() / (rows * n);
    let mut out = Vec::with_capacity(batch * rows * m);
    for b in 0..batch {
        for r in 0..rows {
            for j in 0..m {
                let col = (index[r * m + j] as usize).min(n - 1);
                out.push(x[(b * rows + r) * n + col]);
            }
        }
    }
    out
}

pub fn l2_normalize(x: &[f32], h: usize, eps: f32) -> Vec<f32> {
    x.chunks(h)
        .flat_map(|row| {
            let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt().max(eps as f64);
            row.iter().map(move |&v| (v as f64 / norm) as f32)
        })
        .collect()
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb).max(1e-30)) as f32
}

pub fn sigmoid(x: f32) -> f32 {
    (1.0 / (1.0 + (-(x as f64)).exp())) as f32
}

/// CLIP's x * sigmoid(1.702 x).
pub fn quick_gelu(x: f32) -> f32 {
    let x = x as f64;
    (x / (1.0 + (-1.702 * x).exp())) as f32
}

/// PyTorch's `conv2d` of x [N, Cin, H, W] with w [Cout, Cin/groups, KH, KW] (row-major), summed
/// in f64 tap by tap: ([N, Cout, Ho, Wo] values, dims).
pub fn conv2d(
    x: &[f32],
    x_dims: [usize; 4],
    w: &[f32],
    w_dims: [usize; 4],
    bias: Option<&[f32]>,
    p: crate::Conv2dParams,
) -> (Vec<f32>, [usize; 4]) {
    let [n, cin, h, wd] = x_dims;
    let [cout, cin_g, kh, kw] = w_dims;
    let out_size = |size: usize, k: usize, i: usize| (size + 2 * p.padding[i] - p.dilation[i] * (k - 1) - 1) / p.stride[i] + 1;
    let (ho, wo) = (out_size(h, kh, 0), out_size(wd, kw, 1));
    let cout_g = cout / p.groups;
    let mut out = vec![0f32; n * cout * ho * wo];
    for b in 0..n {
        for co in 0..cout {
            let group = co / cout_g;
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut s = bias.map_or(0.0, |bias| bias[co] as f64);
                    for ci in 0..cin_g {
                        let c = group * cin_g + ci;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as i64 - p.padding[0] as i64;
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as i64 - p.padding[1] as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                    continue;
                                }
                                let xv = x[((b * cin + c) * h + iy as usize) * wd + ix as usize] as f64;
                                s += xv * w[((co * cin_g + ci) * kh + ky) * kw + kx] as f64;
                            }
                        }
                    }
                    out[((b * cout + co) * ho + oy) * wo + ox] = s as f32;
                }
            }
        }
    }
    (out, [n, cout, ho, wo])
}

/// PyTorch's `max_pool2d` (dilation 1, floor sizes) of x [N, C, H, W]: taps in the padding are
/// skipped.
pub fn max_pool2d(x: &[f32], dims: [usize; 4], kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> (Vec<f32>, [usize; 4]) {
    let [n, c, h, w] = dims;
    let ho = (h + 2 * padding[0] - kernel[0]) / stride[0] + 1;
    let wo = (w + 2 * padding[1] - kernel[1]) / stride[1] + 1;
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for plane in 0..n * c {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut m = f32::NEG_INFINITY;
                for ky in 0..kernel[0] {
                    for kx in 0..kernel[1] {
                        let iy = (oy * stride[0] + ky) as i64 - padding[0] as i64;
                        let ix = (ox * stride[1] + kx) as i64 - padding[1] as i64;
                        if iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64 {
                            m = m.max(x[(plane * h + iy as usize) * w + ix as usize]);
                        }
                    }
                }
                out.push(m);
            }
        }
    }
    (out, [n, c, ho, wo])
}

/// torch.nn.functional.interpolate(x, size, mode="bicubic", align_corners, antialias) of x
/// [N, C, H, W], in f64. Each output pixel is a weighted sum over rows and columns of taps; a
/// tap list per axis says which input indices an output index reads with what weight.
pub fn interpolate_bicubic(x: &[f32], dims: [usize; 4], size: [usize; 2], align_corners: bool, antialias: bool) -> Vec<f32> {
    fn kernel(t: f64, a: f64) -> f64 {
        let t = t.abs();
        if t < 1.0 {
            (a + 2.0) * t.powi(3) - (a + 3.0) * t.powi(2) + 1.0
        } else if t < 2.0 {
            a * t.powi(3) - 5.0 * a * t.powi(2) + 8.0 * a * t - 4.0 * a
        } else {
            0.0
        }
    }
    fn taps(input: usize, output: usize, align_corners: bool, antialias: bool) -> Vec<Vec<(usize, f64)>> {
        let scale = match (align_corners, output > 1) {
            (true, true) => (input - 1) as f64 / (output - 1) as f64,
            (true, false) => 0.0,
            (false, _) => input as f64 / output as f64,
        };
        (0..output)
            .map(|i| {
                if antialias {
                    // PIL's filter (a = -0.5) stretched over `scale` input pixels when downsampling.
                    let stretch = scale.max(1.0);
                    let center = scale * (i as f64 + 0.5);
                    let support = 2.0 * stretch;
                    let lo = ((center - support + 0.5).trunc() as i64).max(0);
                    let hi = ((center + support + 0.5).trunc() as i64).min(input as i64);
                    let raw: Vec<(usize, f64)> =
                        (lo..hi).map(|j| (j as usize, kernel((j as f64 - center + 0.5) / stretch, -0.5))).collect();
                    let total: f64 = raw.iter().map(|t| t.1).sum();
                    raw.into_iter().map(|(j, w)| (j, if total != 0.0 { w / total } else { 0.0 })).collect()
                } else {
                    let src = if align_corners { scale * i as f64 } else { scale * (i as f64 + 0.5) - 0.5 };
                    let base = src.floor();
                    (-1i64..3)
                        .map(|k| {
                            let j = (base as i64 + k).clamp(0, input as i64 - 1) as usize;
                            (j, kernel(src - (base + k as f64), -0.75))
                        })
                        .collect()
                }
            })
            .collect()
    }
    let [n, c, h, w] = dims;
    let (ty, tx) = (taps(h, size[0], align_corners, antialias), taps(w, size[1], align_corners, antialias));
    let mut out = Vec::with_capacity(n * c * size[0] * size[1]);
    for plane in 0..n * c {
        for row in &ty {
            for col in &tx {
                let s: f64 = row
                    .iter()
                    .flat_map(|&(y, wy)| col.iter().map(move |&(x_, wx)| (y, x_, wy * wx)))
                    .map(|(y, x_, wt)| wt * x[(plane * h + y) * w + x_] as f64)
                    .sum();
                out.push(s as f32);
            }
        }
    }
    out
}
