//! Image files (PNG, JPEG, WebP, GIF, BMP), decompression bombs included: a header claiming a huge
//! size must be refused before its pixels are allocated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webformers::image::decode_within;

/// Decoding time grows with the pixels a header claims, not with the file's size: a 1 KB JPEG
/// may claim 50 megapixels and decode (as libjpeg does) to gray, 14 s under AddressSanitizer,
/// which libFuzzer reports as a hang (-timeout=1). A megapixel takes about 0.35 s there (2 took
/// 0.69 s). The refusal is the same code at any limit, so it is still fuzzed.
const FUZZ_MAX_PIXELS: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = decode_within(data, FUZZ_MAX_PIXELS) {
        assert_eq!(image.data.len(), image.width * image.height * image.channels);
    }
});
