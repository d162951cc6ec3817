//! Image files (PNG, JPEG, WebP, GIF, BMP), decompression bombs included: a header claiming a huge
//! size must be refused before its pixels are allocated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webformers::image::RawImage;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = RawImage::decode(data) {
        assert_eq!(image.data.len(), image.width * image.height * image.channels);
    }
});
