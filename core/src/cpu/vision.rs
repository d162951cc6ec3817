//! CPU kernels of the vision ops: im2col (dense convolutions then run on the SIMD matmul), the
//! direct grouped convolution, concatenation, bicubic resampling and max pooling. Inputs are any
//! [N, C, H, W] view, read through its strides.

use super::Input;
use super::parallel;
use crate::ops::Window2d;

/// The storage index of [n, c, y, x] of a 4-D view.
struct View4<'a> {
    data: &'a [f32],
    offset: usize,
    strides: [usize; 4],
    dims: [usize; 4],
}

impl<'a> View4<'a> {
    fn of(x: &Input<'a>) -> View4<'a> {
        let (d, s) = (x.layout.dims(), x.layout.strides());
        View4 { data: x.storage.f32s(), offset: x.layout.offset(), strides: [s[0], s[1], s[2], s[3]], dims: [d[0], d[1], d[2], d[3]] }
    }
    #[inline(always)]
    fn at(&self, n: usize, c: usize, y: usize, x: usize) -> f32 {
        let s = self.strides;
        self.data[self.offset + n * s[0] + c * s[1] + y * s[2] + x * s[3]]
    }
}

/// Input coordinate of output position `o` and tap `k` along one axis, if inside the input.
#[inline(always)]
fn tap(o: usize, k: usize, axis: usize, w: &Window2d, size: usize) -> Option<usize> {
    let i = (o * w.stride[axis] + k * w.dilation[axis]) as isize - w.padding[axis] as isize;
    (i >= 0 && (i as usize) < size).then_some(i as usize)
}

/// [N, rows*Wo, C*KH*KW]: one row of taps (c, ky, kx) per output position of the band.
pub(super) fn im2col(x: &Input<'_>, w: &Window2d) -> Vec<f32> {
    let v = View4::of(x);
    let [n, c, h, wd] = v.dims;
    let [kh, kw] = w.kernel;
    let wo = w.out[1];
    let k = c * kh * kw;
    let mut out = vec![0f32; n * w.rows * wo * k];
    // One task per output row of one image: Wo rows of K taps.
    parallel::for_each_chunk(&mut out, wo * k, |task, chunk| {
        let (b, oy) = (task / w.rows, w.row0 + task % w.rows);
        for ox in 0..wo {
            let row = &mut chunk[ox * k..][..k];
            for ci in 0..c {
                for ky in 0..kh {
                    let Some(iy) = tap(oy, ky, 0, w, h) else { continue };
                    for kx in 0..kw {
                        if let Some(ix) = tap(ox, kx, 1, w, wd) {
                            row[(ci * kh + ky) * kw + kx] = v.at(b, ci, iy, ix);
                        }
                    }
                }
            }
        }
    });
    out
}

/// [N, Cout, Ho, Wo], each output plane accumulated tap by tap over its group's input channels.
pub(super) fn grouped_conv2d(x: &Input<'_>, weight: &Input<'_>, bias: Option<&Input<'_>>, w: &Window2d, groups: usize) -> Vec<f32> {
    let v = View4::of(x);
    let [n, _, h, wd] = v.dims;
    let wdims = weight.layout.dims();
    let (cout, cin_g) = (wdims[0], wdims[1]);
    let [kh, kw] = w.kernel;
    let [ho, wo] = w.out;
    let weights: Vec<f32> = match weight.dtype {
        crate::DType::F16 => {
            let all = weight.storage.f16s();
            (0..weight.layout.numel()).map(|i| all[weight.layout.offset() + i].to_f32()).collect()
        }
        _ => weight.f32s().to_vec(),
    };
    let bias = bias.map(|b| b.f32s());
    let cout_g = cout / groups;
    let mut out = vec![0f32; n * cout * ho * wo];
    parallel::for_each_chunk(&mut out, ho * wo, |task, plane| {
        let (b, co) = (task / cout, task % cout);
        plane.fill(bias.map_or(0.0, |bias| bias[co]));
        let group = co / cout_g;
        for ci in 0..cin_g {
            let c = group * cin_g + ci;
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = weights[((co * cin_g + ci) * kh + ky) * kw + kx];
                    for oy in 0..ho {
                        let Some(iy) = tap(oy, ky, 0, w, h) else { continue };
                        let row = &mut plane[oy * wo..][..wo];
                        for (ox, o) in row.iter_mut().enumerate() {
                            if let Some(ix) = tap(ox, kx, 1, w, wd) {
                                *o += wv * v.at(b, c, iy, ix);
                            }
                        }
                    }
                }
            }
        }
    });
    out
}

/// The parts' 4-byte values (f32, u32 or i32 bits) joined along `dim`, row-major.
pub(super) fn concat(parts: &[Input<'_>], dim: usize, numel: usize) -> Vec<u32> {
    let dims = parts[0].layout.dims();
    let outer: usize = dims[..dim].iter().product();
    let inner: usize = dims[dim + 1..].iter().product();
    let total: usize = parts.iter().map(|p| p.layout.dims()[dim]).sum();
    let mut out = vec![0u32; numel];
    let mut at = 0;
    for part in parts {
        let block = part.layout.dims()[dim] * inner;
        let words = part.storage.u32s();
        let mut values = part.layout.storage_indices().map(|i| words[i]);
        for o in 0..outer {
            for (dst, src) in out[(o * total + at) * inner..][..block].iter_mut().zip(&mut values) {
                *dst = src;
            }
        }
        at += part.layout.dims()[dim];
    }
    out
}

/// PyTorch's cubic convolution kernel with parameter `a`.
fn cubic(x: f32, a: f32) -> f32 {
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// For each output index along one axis, the input indices it reads and their weights, as
/// PyTorch's upsample_bicubic2d (a = -0.75, four taps clamped to the border) or, with
/// `antialias`, its separable AA path (a = -0.5, support widened by the scale when downsampling,
/// taps cut at the border and weights renormalized).
pub(crate) fn bicubic_taps(input: usize, output: usize, align_corners: bool, antialias: bool) -> Vec<Vec<(usize, f32)>> {
    let scale = if align_corners {
        if output > 1 { (input as f32 - 1.0) / (output as f32 - 1.0) } else { 0.0 }
    } else {
        input as f32 / output as f32
    };
    (0..output)
        .map(|i| {
            if antialias {
                let support = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
                let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
                let center = scale * (i as f32 + 0.5);
                // Truncation as PyTorch's int64 casts do; the max keeps it at or above 0.
                let lo = ((center - support + 0.5) as i64).max(0) as usize;
                let hi = ((center + support + 0.5) as i64).min(input as i64).max(lo as i64) as usize;
                let taps: Vec<(usize, f32)> = (lo..hi).map(|j| (j, cubic((j as f32 - center + 0.5) * invscale, -0.5))).collect();
                let total: f32 = taps.iter().map(|t| t.1).sum();
                taps.into_iter().map(|(j, w)| (j, if total != 0.0 { w / total } else { 0.0 })).collect()
            } else {
                let real = if align_corners { scale * i as f32 } else { scale * (i as f32 + 0.5) - 0.5 };
                let floor = real.floor();
                let t = real - floor;
                (0..4)
                    .map(|k| {
                        let j = (floor as i64 - 1 + k as i64).clamp(0, input as i64 - 1) as usize;
                        (j, cubic(t + 1.0 - k as f32, -0.75))
                    })
                    .collect()
            }
        })
        .collect()
}

/// [N, C, Ho, Wo]: each plane resampled along W, then along H.
pub(super) fn bicubic(x: &Input<'_>, size: [usize; 2], align_corners: bool, antialias: bool) -> Vec<f32> {
    let v = View4::of(x);
    let [_, c, h, w] = v.dims;
    let [ho, wo] = size;
    let (ty, tx) = (bicubic_taps(h, ho, align_corners, antialias), bicubic_taps(w, wo, align_corners, antialias));
    let mut out = vec![0f32; v.dims[0] * c * ho * wo];
    parallel::for_each_chunk(&mut out, ho * wo, |task, plane| {
        let (b, ch) = (task / c, task % c);
        let mut rows = vec![0f32; h * wo];
        for y in 0..h {
            for (ox, taps) in tx.iter().enumerate() {
                rows[y * wo + ox] = taps.iter().map(|&(j, wt)| wt * v.at(b, ch, y, j)).sum();
            }
        }
        for (oy, taps) in ty.iter().enumerate() {
            for ox in 0..wo {
                plane[oy * wo + ox] = taps.iter().map(|&(j, wt)| wt * rows[j * wo + ox]).sum();
            }
        }
    });
    out
}

/// [N, C, Ho, Wo]: the max of each window's taps inside the input.
pub(super) fn max_pool2d(x: &Input<'_>, w: &Window2d) -> Vec<f32> {
    let v = View4::of(x);
    let [_, c, h, wd] = v.dims;
    let [ho, wo] = w.out;
    let mut out = vec![0f32; v.dims[0] * c * ho * wo];
    parallel::for_each_chunk(&mut out, ho * wo, |task, plane| {
        let (b, ch) = (task / c, task % c);
        for oy in 0..ho {
            for ox in 0..wo {
                let mut m = f32::NEG_INFINITY;
                for ky in 0..w.kernel[0] {
                    let Some(iy) = tap(oy, ky, 0, w, h) else { continue };
                    for kx in 0..w.kernel[1] {
                        if let Some(ix) = tap(ox, kx, 1, w, wd) {
                            m = m.max(v.at(b, ch, iy, ix));
                        }
                    }
                }
                plane[oy * wo + ox] = m;
            }
        }
    });
    out
}
