//! Images: decoded pixels (`RawImage`), decoding files natively, resizing as Pillow does, and the
//! image processors that turn pixels into a model's `pixel_values` exactly as transformers'
//! (Pillow-based) processors do.

mod decode;
pub(crate) mod input;
mod jpeg;
mod processor;
mod resize;

pub use decode::{MAX_PIXELS, decode, decode_within};
pub use processor::{ImageProcessor, PREPROCESSOR_CONFIG, ProcessedImages, ProcessorKind, SizeSpec};
pub use resize::Resample;

use crate::{Error, Result};

/// Decoded pixels, row-major, `channels` bytes a pixel (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA),
/// as transformers.js's `RawImage` holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct RawImage {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl RawImage {
    /// Checks that `data` holds exactly `width * height * channels` bytes.
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Result<RawImage> {
        if !(1..=4).contains(&channels) {
            return Err(Error::Input(format!("an image has 1 to 4 channels, not {channels}")));
        }
        if width == 0 || height == 0 {
            return Err(Error::Input(format!("the image is empty ({width}x{height})")));
        }
        let expected = width.checked_mul(height).and_then(|n| n.checked_mul(channels));
        if expected != Some(data.len()) {
            return Err(Error::Input(format!(
                "a {width}x{height} image of {channels} channels has {} bytes, not {}",
                width.saturating_mul(height).saturating_mul(channels),
                data.len()
            )));
        }
        Ok(RawImage { width, height, channels, data })
    }

    /// Decodes an image file (see `decode`).
    pub fn decode(bytes: &[u8]) -> Result<RawImage> {
        decode(bytes)
    }

    /// (height, width), as transformers' processors report sizes.
    pub fn size_hw(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    fn map_pixels(&self, channels: usize, f: impl Fn(&[u8], &mut [u8])) -> RawImage {
        let mut data = vec![0u8; self.width * self.height * channels];
        for (src, dst) in self.data.chunks_exact(self.channels).zip(data.chunks_exact_mut(channels)) {
            f(src, dst);
        }
        RawImage { width: self.width, height: self.height, channels, data }
    }

    /// RGB as Pillow's `convert("RGB")`: alpha is dropped (not composited over a background),
    /// gray is replicated.
    pub fn rgb(&self) -> RawImage {
        match self.channels {
            3 => self.clone(),
            4 => self.map_pixels(3, |s, d| d.copy_from_slice(&s[..3])),
            _ => self.map_pixels(3, |s, d| d.fill(s[0])),
        }
    }

    /// RGBA: alpha kept, or 255 where the image has none.
    pub fn rgba(&self) -> RawImage {
        match self.channels {
            4 => self.clone(),
            3 => self.map_pixels(4, |s, d| {
                d[..3].copy_from_slice(s);
                d[3] = 255
            }),
            2 => self.map_pixels(4, |s, d| {
                d[..3].fill(s[0]);
                d[3] = s[1]
            }),
            _ => self.map_pixels(4, |s, d| {
                d[..3].fill(s[0]);
                d[3] = 255
            }),
        }
    }

    /// Gray as Pillow's `convert("L")`: ITU-R 601-2 luma in Pillow's fixed point.
    pub fn grayscale(&self) -> RawImage {
        match self.channels {
            1 => self.clone(),
            2 => self.map_pixels(1, |s, d| d[0] = s[0]),
            _ => self.map_pixels(1, |s, d| d[0] = ((s[0] as u32 * 19595 + s[1] as u32 * 38470 + s[2] as u32 * 7471 + 0x8000) >> 16) as u8),
        }
    }

    /// The `width` x `height` region at (`x`, `y`); the region must lie inside the image.
    pub fn crop(&self, x: usize, y: usize, width: usize, height: usize) -> Result<RawImage> {
        if width == 0 || height == 0 || x + width > self.width || y + height > self.height {
            return Err(Error::Input(format!(
                "the crop {width}x{height} at ({x}, {y}) is not inside the {}x{} image",
                self.width, self.height
            )));
        }
        let c = self.channels;
        let mut data = Vec::with_capacity(width * height * c);
        for row in y..y + height {
            let start = (row * self.width + x) * c;
            data.extend_from_slice(&self.data[start..start + width * c]);
        }
        RawImage::new(width, height, c, data)
    }

    /// A `width` x `height` center crop as transformers' `center_crop`: the top-left corner at
    /// `(size - crop) // 2`; along a side where the crop is larger than the image, the image is
    /// centered in zeros (the odd pixel before it).
    pub fn center_crop(&self, width: usize, height: usize) -> Result<RawImage> {
        if width == 0 || height == 0 {
            return Err(Error::Input(format!("a center crop of {width}x{height} is empty")));
        }
        if width <= self.width && height <= self.height {
            return self.crop((self.width - width) / 2, (self.height - height) / 2, width, height);
        }
        // Per side: the first image pixel read and where it lands in the crop.
        let place = |size: usize, crop: usize| if crop <= size { ((size - crop) / 2, 0) } else { (0, (crop - size).div_ceil(2)) };
        let ((sx, dx), (sy, dy)) = (place(self.width, width), place(self.height, height));
        let (cw, ch) = (width.min(self.width), height.min(self.height));
        let c = self.channels;
        let mut data = vec![0u8; width * height * c];
        for row in 0..ch {
            let src = ((sy + row) * self.width + sx) * c;
            let dst = ((dy + row) * width + dx) * c;
            data[dst..dst + cw * c].copy_from_slice(&self.data[src..src + cw * c]);
        }
        RawImage::new(width, height, c, data)
    }
}
