//! Resizing exactly as Pillow resizes 8-bit images, since transformers' image processors resize
//! with Pillow: the same filters and supports (widened by the scale when shrinking, which is
//! Pillow's antialiasing), the same 22-bit fixed-point weights and rounding, horizontal pass then
//! vertical pass with the intermediate rounded to 8 bits, and nearest neighbour as Pillow's affine
//! scaling picks it. A plain bilinear sample would differ by many levels when shrinking.

use super::RawImage;
use crate::{Error, Result};

/// Pillow's resampling filters, numbered as Pillow numbers them (what `resample` in a
/// preprocessor_config.json holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    Nearest = 0,
    Lanczos = 1,
    Bilinear = 2,
    Bicubic = 3,
    Box = 4,
    Hamming = 5,
}

impl Resample {
    /// Pillow's number for a filter (`PIL.Image.Resampling`).
    pub fn from_pil(n: u64) -> Result<Resample> {
        Ok(match n {
            0 => Resample::Nearest,
            1 => Resample::Lanczos,
            2 => Resample::Bilinear,
            3 => Resample::Bicubic,
            4 => Resample::Box,
            5 => Resample::Hamming,
            _ => return Err(Error::Input(format!("resample {n} is none of Pillow's filters (0 to 5)"))),
        })
    }

    /// The filter's support in input pixels at scale 1.
    fn support(self) -> f64 {
        match self {
            Resample::Nearest | Resample::Box => 0.5,
            Resample::Bilinear | Resample::Hamming => 1.0,
            Resample::Bicubic => 2.0,
            Resample::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Resample::Nearest | Resample::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Resample::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Resample::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes these constants as C floats (0.54f, 0.46f).
                    x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
                }
            }
            Resample::Bicubic => {
                // Keys' cubic with a = -0.5, as Pillow has it.
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Resample::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// Pillow's fixed-point precision for 8-bit resampling: `32 - 8 - 2` bits.
const PRECISION_BITS: u32 = 22;

/// For each output pixel: the first input pixel, how many are read, and their fixed-point
/// weights (`ksize` slots each), as Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

fn coeffs(in_size: usize, out_size: usize, filter: Resample) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) truncates toward zero; a negative start clamps to 0 either way.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(n) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let f = w * (1u32 << PRECISION_BITS) as f64;
            // Rounded half away from zero, then truncated, as Pillow does.
            weights[xx * ksize + x] = if w < 0.0 { (f - 0.5) as i32 } else { (f + 0.5) as i32 };
        }
        bounds.push((xmin, n));
    }
    Coeffs { bounds, ksize, weights }
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Horizontal pass over rows `y0..y1` of `src` (`w` pixels wide, `c` channels).
fn horizontal(src: &[u8], w: usize, c: usize, y0: usize, y1: usize, co: &Coeffs) -> Vec<u8> {
    let out_w = co.bounds.len();
    let mut out = vec![0u8; out_w * (y1 - y0) * c];
    for (row_out, y) in out.chunks_exact_mut(out_w * c).zip(y0..y1) {
        let row = &src[y * w * c..(y + 1) * w * c];
        for (xx, &(xmin, n)) in co.bounds.iter().enumerate() {
            let k = &co.weights[xx * co.ksize..xx * co.ksize + n];
            for ch in 0..c {
                let mut ss: i32 = 1 << (PRECISION_BITS - 1);
                for (x, &kx) in k.iter().enumerate() {
                    ss = ss.wrapping_add(row[(xmin + x) * c + ch] as i32 * kx);
                }
                row_out[xx * c + ch] = clip8(ss);
            }
        }
    }
    out
}

/// Vertical pass: `src` is `w` wide; output row `yy` reads rows `bounds[yy].0 - offset ..`.
fn vertical(src: &[u8], w: usize, c: usize, offset: usize, co: &Coeffs) -> Vec<u8> {
    let stride = w * c;
    let mut out = vec![0u8; co.bounds.len() * stride];
    for (yy, row_out) in out.chunks_exact_mut(stride).enumerate() {
        let (ymin, n) = co.bounds[yy];
        let k = &co.weights[yy * co.ksize..yy * co.ksize + n];
        for (i, o) in row_out.iter_mut().enumerate() {
            let mut ss: i32 = 1 << (PRECISION_BITS - 1);
            for (y, &ky) in k.iter().enumerate() {
                ss = ss.wrapping_add(src[(ymin - offset + y) * stride + i] as i32 * ky);
            }
            *o = clip8(ss);
        }
    }
    out
}

/// The input pixel each output pixel reads in Pillow's nearest neighbour (`Image.resize(..,
/// NEAREST)` is an affine scaling): a position that starts at half a step and adds the step
/// (`in / out`) once per pixel, truncated. The running sum's rounding decides ties exactly as
/// Pillow's does (`(x + 0.5) * step` would pick differently, e.g. 64 -> 7 at x = 3).
fn nearest_indices(in_size: usize, out_size: usize) -> Vec<usize> {
    let step = in_size as f64 / out_size as f64;
    let mut pos = step * 0.5;
    (0..out_size)
        .map(|_| {
            let i = (pos as usize).min(in_size - 1);
            pos += step;
            i
        })
        .collect()
}

fn nearest(img: &RawImage, width: usize, height: usize) -> Vec<u8> {
    let c = img.channels;
    let xs = nearest_indices(img.width, width);
    let mut out = Vec::with_capacity(width * height * c);
    for yin in nearest_indices(img.height, height) {
        let row = &img.data[yin * img.width * c..(yin + 1) * img.width * c];
        for &x in &xs {
            out.extend_from_slice(&row[x * c..(x + 1) * c]);
        }
    }
    out
}

/// Largest output side accepted: well past any model input, small enough that a bad size is an
/// error rather than an allocation failure.
const MAX_SIDE: usize = 1 << 15;

impl RawImage {
    /// The image resized to `width` x `height` as Pillow's `Image.resize((width, height),
    /// resample)` resizes an 8-bit image (each channel independently: unlike Pillow, alpha is not
    /// premultiplied; processors resize RGB).
    pub fn resize(&self, width: usize, height: usize, resample: Resample) -> Result<RawImage> {
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(Error::Input(format!(
                "cannot resize a {}x{} image to {width}x{height} (each side 1 to {MAX_SIDE})",
                self.width, self.height
            )));
        }
        if width == self.width && height == self.height {
            return Ok(self.clone());
        }
        let c = self.channels;
        let data = if resample == Resample::Nearest {
            nearest(self, width, height)
        } else {
            let horiz = coeffs(self.width, width, resample);
            let vert = coeffs(self.height, height, resample);
            // Only the input rows the vertical pass reads go through the horizontal pass.
            let first = vert.bounds[0].0;
            let last = vert.bounds.iter().map(|&(m, n)| m + n).max().unwrap_or(first).max(first + 1);
            let need_h = width != self.width;
            let need_v = height != self.height;
            let (mut data, mut offset) = (std::borrow::Cow::Borrowed(&self.data[..]), 0);
            if need_h {
                data = horizontal(&self.data, self.width, c, first, last, &horiz).into();
                offset = first;
            }
            if need_v { vertical(&data, width, c, offset, &vert) } else { data.into_owned() }
        };
        RawImage::new(width, height, c, data)
    }
}
