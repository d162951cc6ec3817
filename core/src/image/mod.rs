//! Images: decoded pixels (`RawImage`), decoding files natively, and the image processors that
//! turn pixels into a model's `pixel_values` exactly as transformers' processors do.

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
                width * height * channels,
                data.len()
            )));
        }
        Ok(RawImage { width, height, channels, data })
    }
}
