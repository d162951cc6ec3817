//! Decoding image files (PNG, JPEG, WebP, GIF's first frame, BMP) with the `image` crate, natively
//! and in wasm (Node has no platform decoder); JPEGs with our own decoder (`jpeg.rs`), which gives
//! Pillow's (libjpeg-turbo's) exact pixels, falling back to the image crate for rare variants.
//! The header is read first, so that a file claiming a huge size is refused before anything is
//! allocated.

use std::io::Cursor;

use ::image::metadata::Orientation;
use ::image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::RawImage;
use crate::{Error, Result};

/// The most pixels a decoded image may have (10000x10000; Pillow warns past 89 million). Larger
/// headers are refused before decoding.
pub const MAX_PIXELS: u64 = 100_000_000;

fn bad(e: impl std::fmt::Display) -> Error {
    Error::Input(format!("cannot decode the image: {e}"))
}

/// Decodes an image file, keeping its channels: gray (1), gray + alpha (2), RGB (3), RGBA (4).
/// 16-bit images become 8-bit; a CMYK JPEG becomes RGB; EXIF orientation is applied.
pub fn decode(bytes: &[u8]) -> Result<RawImage> {
    decode_within(bytes, MAX_PIXELS)
}

/// `decode` with the caller's pixel limit: headers claiming more than `max_pixels` are refused
/// before anything is allocated (the fuzzer's limit is small: see fuzz_targets/image_decode.rs).
pub fn decode_within(bytes: &[u8], max_pixels: u64) -> Result<RawImage> {
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(bad)?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif | ImageFormat::Bmp)) => f,
        Some(f) => return Err(Error::Input(format!("{f:?} images are not supported (PNG, JPEG, WebP, GIF and BMP are)"))),
        None => {
            return Err(Error::Input(format!("the {} bytes given are not a PNG, JPEG, WebP, GIF or BMP image", bytes.len())));
        }
    };
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::Input(format!("the {format:?} image is empty ({w}x{h})")));
    }
    if w as u64 * h as u64 > max_pixels {
        return Err(Error::Input(format!("the {format:?} image is {w}x{h}, more than the {max_pixels} pixels accepted")));
    }
    if format == ImageFormat::Jpeg && !jpeg_has_end(bytes) {
        // libjpeg (and zune-jpeg) would fill a cut-off scan; Pillow refuses it ("image file is truncated").
        return Err(Error::Input("the JPEG image is truncated (no end-of-image marker after its last scan)".into()));
    }
    let color = decoder.color_type();
    // EXIF orientation is applied, as transformers' load_image (exif_transpose) and
    // Transformers.js (sharp's rotate()) apply it; unreadable metadata counts as none.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    if format == ImageFormat::Jpeg {
        // Our own decoder gives libjpeg-turbo's (Pillow's) exact pixels; variants it does not
        // handle (arithmetic coding, 12-bit, unusual sampling) go to the image crate below.
        if let Some(raw) = super::jpeg::decode(bytes, max_pixels)? {
            return oriented(raw, orientation);
        }
    }
    // A decoder may panic on a malformed file (none should); in wasm a panic kills the page,
    // natively we turn it into an error.
    let mut image = decode_guarded(decoder).map_err(bad)?;
    image.apply_orientation(orientation);
    let (width, height) = (image.width() as usize, image.height() as usize);
    let (channels, data) = match color {
        ColorType::L8 | ColorType::L16 => (1, image.into_luma8().into_raw()),
        ColorType::La8 | ColorType::La16 => (2, image.into_luma_alpha8().into_raw()),
        c if c.has_alpha() => (4, image.into_rgba8().into_raw()),
        _ => (3, image.into_rgb8().into_raw()),
    };
    RawImage::new(width, height, channels, data)
}

/// Applies EXIF orientation to a gray or RGB image.
fn oriented(raw: RawImage, orientation: Orientation) -> Result<RawImage> {
    if orientation == Orientation::NoTransforms {
        return Ok(raw);
    }
    let (w, h, channels) = (raw.width as u32, raw.height as u32, raw.channels);
    let mut image = match channels {
        1 => DynamicImage::ImageLuma8(::image::GrayImage::from_raw(w, h, raw.data).ok_or_else(|| bad("bad buffer"))?),
        _ => DynamicImage::ImageRgb8(::image::RgbImage::from_raw(w, h, raw.data).ok_or_else(|| bad("bad buffer"))?),
    };
    image.apply_orientation(orientation);
    let (width, height) = (image.width() as usize, image.height() as usize);
    let data = if channels == 1 { image.into_luma8().into_raw() } else { image.into_rgb8().into_raw() };
    RawImage::new(width, height, channels, data)
}

#[cfg(not(target_arch = "wasm32"))]
fn decode_guarded(decoder: impl ImageDecoder) -> std::result::Result<DynamicImage, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| DynamicImage::from_decoder(decoder)))
        .map_err(|_| "the decoder failed on a malformed file".to_string())?
        .map_err(|e| e.to_string())
}

#[cfg(target_arch = "wasm32")]
fn decode_guarded(decoder: impl ImageDecoder) -> std::result::Result<DynamicImage, String> {
    DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())
}

/// Whether a JPEG's end-of-image marker (FF D9) follows the start of its last scan (FF DA).
/// Neither can occur inside entropy-coded data (an FF there is followed by 00 or a restart
/// marker), so a file cut inside its last scan has no FF D9 after the last FF DA; an embedded
/// thumbnail's end comes before the main image's scans.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_eoi = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    matches!((last_sos, last_eoi), (Some(s), Some(e)) if e > s)
}
