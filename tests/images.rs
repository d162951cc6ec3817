//! Images against Pillow and transformers (tests/fixtures/image-reference/, made by
//! tests/reference/make_image_reference.py): decoding, resizing with every Pillow filter, and
//! every image processor's pixel_values; and bad input as clear errors.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webformers::Error;
use webformers::image::{ImageProcessor, RawImage, Resample, decode, decode_within};
use webformers::tasks::{Input, Media};
use webformers_tests::{fixture, repo_root};

fn reference() -> Value {
    fixture("image-reference/reference.json")
}

fn image_bytes(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("tests/fixtures/images").join(name)).unwrap()
}

fn sha(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn decode_matches_pillow() {
    let r = reference();
    for (name, e) in r["decode"].as_object().unwrap() {
        let img = decode(&image_bytes(name)).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!((img.width, img.height), (e["width"].as_u64().unwrap() as usize, e["height"].as_u64().unwrap() as usize), "{name}");
        let mode = e["mode"].as_str().unwrap();
        let expected_channels = match mode {
            "L" => 1,
            "LA" => 2,
            "RGB" | "CMYK" => 3,
            "RGBA" | "P" => 4, // the GIF's palette decodes to RGBA
            m => panic!("{name}: mode {m}"),
        };
        assert_eq!(img.channels, expected_channels, "{name} ({mode})");
        // JPEGs too: our decoder reproduces libjpeg-turbo's (Pillow's) pixels exactly. A CMYK
        // JPEG is decoded straight to RGB, so only its RGB conversion is compared.
        if mode != "P" && mode != "CMYK" {
            assert_eq!(sha(&img.data), e["native_sha256"].as_str().unwrap(), "{name}: pixels differ from Pillow's");
        }
        assert_eq!(sha(&img.rgb().data), e["rgb_sha256"].as_str().unwrap(), "{name}: RGB differs from Pillow's convert(\"RGB\")");
    }
}

/// Small JPEGs of every kind the native decoder handles (tests/fixtures/images/jpeg/, made by
/// tests/reference/make_jpeg_fixtures.py): pixels identical to Pillow's (libjpeg-turbo's).
#[test]
fn jpeg_decoding_is_exactly_pillows() {
    let dir = repo_root().join("tests/fixtures/images/jpeg");
    let r: Value = serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    for (name, e) in r["images"].as_object().unwrap() {
        let img = decode(&std::fs::read(dir.join(name)).unwrap()).unwrap_or_else(|err| panic!("{name}: {err}"));
        let (w, h) = (e["width"].as_u64().unwrap() as usize, e["height"].as_u64().unwrap() as usize);
        assert_eq!((img.width, img.height), (w, h), "{name}");
        assert_eq!(img.channels, if e["mode"] == "L" { 1 } else { 3 }, "{name}");
        if sha(&img.data) != e["sha256"].as_str().unwrap() {
            let want = std::fs::read(dir.join(name.replace(".jpg", ".u8"))).unwrap();
            let diffs: Vec<i32> = img.data.iter().zip(&want).map(|(&a, &b)| (a as i32 - b as i32).abs()).collect();
            let off = diffs.iter().filter(|&&d| d > 0).count();
            failures.push(format!("{name}: max {} levels, {off} of {} values differ", diffs.iter().max().unwrap(), diffs.len()));
        }
    }
    assert!(failures.is_empty(), "JPEGs decoded unlike Pillow:\n{}", failures.join("\n"));
}

/// Every truncation and many single-byte changes of a small JPEG give a result or an error,
/// never a panic.
#[test]
fn damaged_jpegs_never_panic() {
    let dir = repo_root().join("tests/fixtures/images/jpeg");
    for name in ["odd-17x13-420.jpg", "odd-17x13-progressive.jpg", "q90-progressive-restart.jpg"] {
        let jpg = std::fs::read(dir.join(name)).unwrap();
        for cut in 0..jpg.len() {
            let _ = decode(&jpg[..cut]);
        }
        let step = if jpg.len() > 1000 { 7 } else { 1 };
        for i in (0..jpg.len()).step_by(step) {
            for v in [0x00, 0xFF, jpg[i] ^ 0x10, jpg[i].wrapping_add(1)] {
                let mut bad = jpg.clone();
                bad[i] = v;
                let _ = decode(&bad);
            }
        }
    }
}

#[test]
fn resize_matches_pillow() {
    let r = reference();
    let mut failures = Vec::new();
    for case in r["resize"].as_array().unwrap() {
        let name = case["image"].as_str().unwrap();
        let img = decode(&image_bytes(name)).unwrap();
        let img = if img.channels == 1 { img } else { img.rgb() };
        let (w, h) = (case["width"].as_u64().unwrap() as usize, case["height"].as_u64().unwrap() as usize);
        let f = Resample::from_pil(case["resample"].as_u64().unwrap()).unwrap();
        let out = img.resize(w, h, f).unwrap();
        assert_eq!((out.width, out.height, out.channels), (w, h, case["channels"].as_u64().unwrap() as usize));
        if sha(&out.data) != case["sha256"].as_str().unwrap() {
            let sum: u64 = out.data.iter().map(|&v| v as u64).sum();
            failures.push(format!("{name} -> {w}x{h} {f:?}: sum {sum} vs Pillow's {}", case["sum"]));
        }
    }
    assert!(failures.is_empty(), "resizes that differ from Pillow:\n{}", failures.join("\n"));
}

#[test]
fn grayscale_and_center_crop_match() {
    let r = reference();
    for (name, want) in r["grayscale"].as_object().unwrap() {
        let gray = decode(&image_bytes(name)).unwrap().rgb().grayscale();
        assert_eq!(gray.channels, 1);
        assert_eq!(sha(&gray.data), want.as_str().unwrap(), "{name}: convert(\"L\")");
    }
    for case in r["center_crop"].as_array().unwrap() {
        let name = case["image"].as_str().unwrap();
        let (h, w) = (case["height"].as_u64().unwrap() as usize, case["width"].as_u64().unwrap() as usize);
        let out = decode(&image_bytes(name)).unwrap().rgb().center_crop(w, h).unwrap();
        assert_eq!((out.height, out.width), (h, w), "{name}");
        assert_eq!(sha(&out.data), case["sha256"].as_str().unwrap(), "{name}: center crop {w}x{h}");
    }
}

fn sampled(values: &[f32], n: usize) -> Vec<f32> {
    let step: u64 = 7919 * 104729;
    (0..n as u64).map(|i| values[((i * step) % values.len() as u64) as usize]).collect()
}

#[test]
fn processors_match_transformers() {
    let r = reference();
    let n = r["samples"].as_u64().unwrap() as usize;
    let mut worst = 0f32;
    for (repo, p) in r["processors"].as_object().unwrap() {
        let proc = ImageProcessor::from_json(&p["config"]).unwrap_or_else(|e| panic!("{repo}: {e}"));
        let mut repo_worst = 0f32;
        for (case_name, case) in p["cases"].as_object().unwrap() {
            let names: Vec<&str> =
                case_name.strip_prefix("batch:").map(|s| s.split(',').collect()).unwrap_or_else(|| vec![case_name.as_str()]);
            let images: Vec<RawImage> = names.iter().map(|n| decode(&image_bytes(n)).unwrap()).collect();
            let out = proc.process(&images).unwrap_or_else(|e| panic!("{repo} {case_name}: {e}"));
            let dims: Vec<usize> = case["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(out.dims.to_vec(), dims, "{repo} {case_name}");
            assert_eq!(out.pixel_values.len(), dims.iter().product::<usize>());
            let expected: Vec<f32> = case["samples"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let got = sampled(&out.pixel_values, n);
            let diff = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            let plane = dims[2] * dims[3];
            for c in 0..3 {
                let mean = (0..dims[0])
                    .flat_map(|i| out.pixel_values[(i * 3 + c) * plane..(i * 3 + c + 1) * plane].iter())
                    .map(|&v| v as f64)
                    .sum::<f64>()
                    / (dims[0] * plane) as f64;
                let want = case["channel_means"][c].as_f64().unwrap();
                assert!((mean - want).abs() < 1e-4, "{repo} {case_name}: channel {c} mean {mean} vs {want}");
            }
            assert!(diff <= 1e-3, "{repo} {case_name}: max sampled difference {diff}");
            repo_worst = repo_worst.max(diff);
            match (&out.pixel_mask, case.get("mask_sum")) {
                (Some(mask), Some(want)) => {
                    assert_eq!(mask.iter().sum::<f32>() as u64, want.as_u64().unwrap(), "{repo} {case_name}: pixel mask");
                    assert_eq!(mask.len(), dims[0] * plane);
                }
                (None, None) => {}
                (m, w) => panic!("{repo} {case_name}: pixel mask {} vs reference {}", m.is_some(), w.is_some()),
            }
            if let Some(rows) = case.get("mask_rows") {
                for (i, hw) in rows.as_array().unwrap().iter().enumerate() {
                    let (h, w) = (hw[0].as_u64().unwrap() as usize, hw[1].as_u64().unwrap() as usize);
                    assert_eq!(out.reshaped_sizes[i], (h, w), "{repo} {case_name}: image {i}'s resized size");
                }
            }
            assert_eq!(out.original_sizes, images.iter().map(|i| (i.height, i.width)).collect::<Vec<_>>());
        }
        println!("{repo}: max sampled |difference| {repo_worst:e}");
        worst = worst.max(repo_worst);
    }
    println!("all processors: max sampled |difference| {worst:e}");
}

/// Serves one HTTP request with `response` on a local port; the URL of an image there.
fn serve_once(response: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{addr}/image.png")
}

#[test]
fn urls_resolve() {
    let png = image_bytes("gradient.png");
    let mut ok =
        format!("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", png.len()).into_bytes();
    ok.extend_from_slice(&png);
    let (images, _) = Input::json(&json!(serve_once(ok))).images("t").unwrap();
    assert_eq!(images[0], decode(&png).unwrap());

    let missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
    let err = input_error(json!(serve_once(missing)), &[]);
    assert!(err.contains("HTTP 404"), "{err}");
    // A body that stops short of its Content-Length.
    let mut short = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", png.len()).into_bytes();
    short.extend_from_slice(&png[..100]);
    let err = input_error(json!(serve_once(short)), &[]);
    assert!(err.contains("image.png"), "{err}");
    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = input_error(json!(format!("http://127.0.0.1:{port}/x.png")), &[]);
    assert!(err.contains("cannot fetch"), "{err}");
}

fn input_error(value: Value, media: &[Media]) -> String {
    match (Input { value: &value, media }).images("image-classification") {
        Err(Error::Input(msg)) => msg,
        Err(e) => panic!("{value}: not an input error: {e}"),
        Ok(_) => panic!("{value}: accepted"),
    }
}

#[test]
fn inputs_resolve() {
    let png = image_bytes("gradient.png");
    let pixels = decode(&png).unwrap();
    let media = [Media::Encoded(png.clone()), Media::Image(pixels.clone())];
    let (one, many) = (Input { value: &json!({"$media": 0}), media: &media }).images("t").unwrap();
    assert_eq!((one, many), (vec![pixels.clone()], false));
    let (two, many) = (Input { value: &json!([{"$media": 1}, {"$media": 0}]), media: &media }).images("t").unwrap();
    assert_eq!((two.len(), many), (2, true));
    assert_eq!(two[0], pixels);
    let path = repo_root().join("tests/fixtures/images/gradient.png");
    let (from_path, _) = Input::json(&json!(path.to_str().unwrap())).images("t").unwrap();
    assert_eq!(from_path[0], pixels);
    // A data: URL of the same file.
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in png.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            b64.push(if i <= chunk.len() { B64[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    let (from_data, _) = Input::json(&json!(format!("data:image/png;base64,{b64}"))).images("t").unwrap();
    assert_eq!(from_data[0], pixels);
}

#[test]
fn bad_inputs_are_errors() {
    let media = [Media::Encoded(b"not an image at all".to_vec())];
    assert!(input_error(json!({"$media": 3}), &media).contains("names no media item"));
    assert!(input_error(json!({"$media": 0}), &media).contains("not a PNG, JPEG"));
    assert!(input_error(json!(42), &[]).contains("not a number"));
    assert!(input_error(json!([]), &[]).contains("empty array"));
    assert!(input_error(json!({"text": "hello"}), &[]).contains("an object"));
    assert!(input_error(json!("/no/such/file.png"), &[]).contains("cannot read the image file"));

    // Truncated JPEG: half the file.
    let jpg = image_bytes("cat.jpg");
    for cut in [jpg.len() / 2, jpg.len() - 2, jpg.len() - 1000] {
        let err = decode(&jpg[..cut]).err().unwrap_or_else(|| panic!("cat.jpg cut at {cut} decoded"));
        assert!(matches!(err, Error::Input(_)), "{err}");
    }
    // Every truncation of a small PNG, and a JPEG's header alone, fail cleanly (no panic).
    let png = image_bytes("gradient.png");
    for cut in (0..png.len()).step_by(97) {
        assert!(decode(&png[..cut]).is_err(), "PNG cut at {cut} decoded");
    }
    assert!(decode(&jpg[..200]).is_err());
    assert!(decode(&[]).is_err());

    // A 30000x30000 PNG header (valid signature and IHDR CRC) is refused before decoding.
    // (`expect_err` would print the decoded pixels.)
    let Err(err) = decode(&png_header(30000, 30000)) else { panic!("a 30000x30000 header decoded") };
    let err = err.to_string();
    assert!(err.contains("30000x30000"), "{err}");
    // A caller's own limit (the fuzzer's) refuses JPEGs (our decoder) and PNGs alike; at the size
    // itself they decode.
    for (name, w, h) in [("cat.jpg", 451, 300), ("gradient.png", 64, 48)] {
        let bytes = image_bytes(name);
        let img = decode(&bytes).unwrap();
        assert_eq!((img.width, img.height), (w, h), "{name}");
        assert!(decode_within(&bytes, (w * h) as u64).is_ok(), "{name}");
        let Err(err) = decode_within(&bytes, (w * h - 1) as u64) else { panic!("{name} decoded past the limit") };
        assert!(matches!(err, Error::Input(_)) && err.to_string().contains("pixels accepted"), "{name}: {err}");
    }
    // A zero-size image.
    let Err(err) = decode(&png_header(0, 10)) else { panic!("a 0x10 header decoded") };
    assert!(matches!(err, Error::Input(_)), "{err}");
    assert!(RawImage::new(0, 5, 3, vec![]).is_err());
    assert!(RawImage::new(2, 2, 3, vec![0; 11]).is_err());
    assert!(RawImage::new(2, 2, 5, vec![0; 20]).is_err());
}

/// A PNG (8-bit RGB) of any claimed size: signature, IHDR, an empty IDAT and IEND, with correct
/// CRCs, so that only the size is wrong.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        let crc = body.iter().fold(!0u32, |mut c, &b| {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB88320 ^ (c >> 1) } else { c >> 1 };
            }
            c
        });
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&(!crc).to_be_bytes());
    }
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[]);
    chunk(&mut out, b"IEND", &[]);
    out
}
