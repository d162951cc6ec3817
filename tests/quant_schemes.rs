//! Measures 4-bit weight schemes on all-MiniLM-L6-v2 before any kernel exists for them: the
//! encoder's linear weights are quantized and dequantized back to f32 by a scheme, written to a
//! copy of the model (/tmp/q4-minilm), and the f32 CPU pipeline's embeddings of the reference
//! inputs (tests/fixtures/minilm-reference.json) are compared with PyTorch's (lowest, median and
//! mean cosine; `rel.err` is the weights' relative RMS error). BENCHMARKS.md ("Precision") has
//! the results. Each argument is `attention,up,down` schemes, a scheme being a block type
//! (`f32`, `q8_0`, `q4_0`, `q4_1`, `q5_0`: round-to-nearest; `q4_0s`, `q4_1s`, `q5_0s`, `q5_1s`:
//! least-squares scale search; `q4k`, `q5k`: 256-value k-quant blocks with 6-bit sub-scales;
//! `lib`: the engine's own `quant::quantize_at_load` Q4_1) and an optional `:weighting` of the
//! squared errors (`sq`: x^2, `av`: rms + |x|, `ln`: the preceding LayerNorm's gamma^2 + beta^2
//! per input column, a calibration-free stand-in for activation statistics):
//!
//! cargo run --release -p webformers-tests --example quant-schemes -- q4_1,q4_1,q4_1 lib,lib,lib q5_0s,q5_0s,q4k
use std::io::Write;
use webformers::files::DirFiles;
use webformers::tasks::LoadOptions;
use webformers::tasks::feature_extraction::{FeatureExtraction, Pooling};
use webformers::weights::WeightSource;
use webformers_tests::{fixture, floats, model_dir};

fn f16r(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// Weighted least squares a*L + b ~ x.
fn fit(x: &[f32], w: &[f32], l: &[f32], with_min: bool) -> (f32, f32) {
    let (mut sw, mut sl, mut sl2, mut sx, mut sxl) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for i in 0..x.len() {
        let (wi, li, xi) = (w[i] as f64, l[i] as f64, x[i] as f64);
        sw += wi;
        sl += wi * li;
        sl2 += wi * li * li;
        sx += wi * xi;
        sxl += wi * xi * li;
    }
    if !with_min {
        return (if sl2 > 0.0 { (sxl / sl2) as f32 } else { 0.0 }, 0.0);
    }
    let d = sw * sl2 - sl * sl;
    if d <= 0.0 {
        return (0.0, (sx / sw.max(1e-30)) as f32);
    }
    (((sw * sxl - sx * sl) / d) as f32, ((sl2 * sx - sl * sxl) / d) as f32)
}
fn err(x: &[f32], w: &[f32], l: &[f32], a: f32, b: f32) -> f64 {
    x.iter().zip(w).zip(l).map(|((&x, &w), &l)| w as f64 * ((a * l + b - x) as f64).powi(2)).sum()
}

thread_local! { static COLW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) }; static COL0: std::cell::Cell<usize> = const { std::cell::Cell::new(0) }; }
fn weights_for(x: &[f32], mode: &str) -> Vec<f32> {
    if mode.starts_with("ln") {
        let c0 = COL0.get();
        let w = COLW.with(|c| c.borrow().get(c0..c0 + x.len()).map(|s| s.to_vec()).unwrap_or_default());
        if !w.is_empty() && w.iter().any(|&v| v > 0.0) {
            let av = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
            return if mode == "lnav" { w.iter().zip(x).map(|(w, v)| w * (av + v.abs())).collect() } else { w };
        }
    }
    let av = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    x.iter()
        .map(|&v| match mode {
            "sq" => v * v,
            "av" => av + v.abs(),
            _ => 1.0,
        })
        .collect()
}

/// Asymmetric levels 0..=nmax: (scale, min) searched; returns dequantized values (f16 scale/min).
fn asym(x: &[f32], nmax: f32, search: bool, wmode: &str) -> Vec<f32> {
    let mn = x.iter().copied().fold(f32::INFINITY, f32::min);
    let mx = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if mx == mn {
        return vec![f16r(mn); x.len()];
    }
    let w = weights_for(x, wmode);
    let quant = |a: f32, b: f32| -> Vec<f32> { x.iter().map(|&v| ((v - b) / a).round().clamp(0.0, nmax)).collect() };
    let (mut ba, mut bb) = ((mx - mn) / nmax, mn);
    let mut best = err(x, &w, &quant(ba, bb), f16r(ba), f16r(bb));
    if search {
        for is in 0..=40 {
            let iscale = (nmax - 1.0 + 0.05 * is as f32) / (mx - mn);
            let l: Vec<f32> = x.iter().map(|&v| ((v - mn) * iscale).round().clamp(0.0, nmax)).collect();
            let (a, b) = fit(x, &w, &l, true);
            if a <= 0.0 {
                continue;
            }
            let l2 = quant(f16r(a), f16r(b));
            let e = err(x, &w, &l2, f16r(a), f16r(b));
            if e < best {
                best = e;
                ba = a;
                bb = b;
            }
        }
    }
    let (a, b) = (f16r(ba), f16r(bb));
    quant(a, b).iter().map(|&l| a * l + b).collect()
}

/// Symmetric levels -n..n-1 (Q4_0: n=8, Q5_0: 16).
fn sym(x: &[f32], n: f32, search: bool, wmode: &str) -> Vec<f32> {
    let mx = x.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    if mx == 0.0 {
        return vec![0.0; x.len()];
    }
    let w = weights_for(x, wmode);
    let quant = |d: f32| -> Vec<f32> {
        if d == 0.0 { vec![0.0; x.len()] } else { x.iter().map(|&v| (v / d).round().clamp(-n, n - 1.0)).collect() }
    };
    let mut bd = mx / -n;
    let mut best = err(x, &w, &quant(f16r(bd)), f16r(bd), 0.0);
    if search {
        for is in -20..=20 {
            let d0 = mx / -(n + 0.05 * is as f32);
            let l = quant(d0);
            let (a, _) = fit(x, &w, &l, false);
            if a == 0.0 {
                continue;
            }
            let l2 = quant(f16r(a));
            let e = err(x, &w, &l2, f16r(a), 0.0);
            if e < best {
                best = e;
                bd = a;
            }
        }
    }
    let d = f16r(bd);
    quant(d).iter().map(|&l| d * l).collect()
}

/// Q4_K-like: 256 values, 8 sub-blocks of 32 with 6-bit scales and mins; nbits 4 or 5.
fn kquant(x: &[f32], nmax: f32, wmode: &str) -> Vec<f32> {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    for j in 0..8 {
        let s = &x[32 * j..][..32];
        let mn = s.iter().copied().fold(f32::INFINITY, f32::min).min(0.0);
        let mx = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let base = COL0.get();
        COL0.set(base + 32 * j);
        let w = weights_for(s, wmode);
        COL0.set(base);
        if mx <= mn {
            continue;
        }
        let quant = |a: f32, b: f32| -> Vec<f32> { s.iter().map(|&v| ((v - b) / a).round().clamp(0.0, nmax)).collect() };
        let (mut ba, mut bb) = ((mx - mn) / nmax, mn);
        let mut best = err(s, &w, &quant(ba, bb), ba, bb);
        for is in 0..=40 {
            let iscale = (nmax - 1.0 + 0.05 * is as f32) / (mx - mn);
            let l: Vec<f32> = s.iter().map(|&v| ((v - mn) * iscale).round().clamp(0.0, nmax)).collect();
            let (mut a, mut b) = fit(s, &w, &l, true);
            if b > 0.0 {
                b = 0.0;
                a = fit(s, &w, &l, false).0;
            }
            if a <= 0.0 {
                continue;
            }
            let e = err(s, &w, &quant(a, b), a, b);
            if e < best {
                best = e;
                ba = a;
                bb = b;
            }
        }
        scales[j] = ba;
        mins[j] = -bb;
    }
    let d = f16r(scales.iter().fold(0f32, |m, &v| m.max(v)) / 63.0);
    let dmin = f16r(mins.iter().fold(0f32, |m, &v| m.max(v)) / 63.0);
    let mut out = vec![0f32; 256];
    for j in 0..8 {
        let sc = if d > 0.0 { (scales[j] / d).round().min(63.0) } else { 0.0 };
        let m = if dmin > 0.0 { (mins[j] / dmin).round().min(63.0) } else { 0.0 };
        let (a, b) = (d * sc, dmin * m);
        for i in 0..32 {
            let v = x[32 * j + i];
            let l = if a > 0.0 { ((v + b) / a).round().clamp(0.0, nmax) } else { 0.0 };
            out[32 * j + i] = a * l - b;
        }
    }
    out
}

/// `quantize` applied to each block of `row`, with the block's first column in COL0 (for `:ln`).
fn blocks(row: &[f32], len: usize, quantize: impl Fn(&[f32]) -> Vec<f32>) -> Vec<f32> {
    row.chunks(len)
        .enumerate()
        .flat_map(|(i, b)| {
            COL0.set(len * i);
            quantize(b)
        })
        .collect()
}

fn apply(scheme: &str, row: &[f32]) -> Vec<f32> {
    let (kind, wmode) = scheme.split_once(':').unwrap_or((scheme, "1"));
    let k = row.len();
    match kind {
        "f32" => row.to_vec(),
        "lib" => webformers::quant::dequantize(
            webformers::DType::Q4_1,
            &webformers::quant::quantize_at_load(webformers::DType::Q4_1, row).unwrap(),
        )
        .unwrap(),
        "q8_0" => row
            .chunks(32)
            .flat_map(|b| {
                let a = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = f16r(a / 127.0);
                b.iter().map(move |&v| if d == 0.0 { 0.0 } else { (v / d).round() * d }).collect::<Vec<_>>()
            })
            .collect(),
        "q4_0" => blocks(row, 32, |b| sym(b, 8.0, false, wmode)),
        "q4_0s" => blocks(row, 32, |b| sym(b, 8.0, true, wmode)),
        "q5_0" => blocks(row, 32, |b| sym(b, 16.0, false, wmode)),
        "q5_0s" => blocks(row, 32, |b| sym(b, 16.0, true, wmode)),
        "q4_1" => blocks(row, 32, |b| asym(b, 15.0, false, wmode)),
        "q4_1s" => blocks(row, 32, |b| asym(b, 15.0, true, wmode)),
        "q5_1s" => blocks(row, 32, |b| asym(b, 31.0, true, wmode)),
        "q4k" if k % 256 == 0 => blocks(row, 256, |b| kquant(b, 15.0, wmode)),
        "q5k" if k % 256 == 0 => blocks(row, 256, |b| kquant(b, 31.0, wmode)),
        "q4k" | "q5k" => panic!("{scheme} on K={k}"),
        _ => panic!("unknown {scheme}"),
    }
}

fn main() {
    let src = model_dir("all-MiniLM-L6-v2");
    let tmp = std::path::PathBuf::from("/tmp/q4-minilm");
    std::fs::create_dir_all(&tmp).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let dst = tmp.join(e.file_name());
        if e.file_name() != "model.safetensors" && !dst.exists() {
            std::os::unix::fs::symlink(e.path(), dst).unwrap();
        }
    }
    let st = webformers::weights::safetensors::SafetensorsFile::open(&src.join("model.safetensors")).unwrap();
    let orig: Vec<u8> = (**st.bytes()).as_ref().to_vec();
    let reference = fixture("minilm-reference.json");
    let inputs = reference["inputs"].as_array().unwrap();
    let texts: Vec<&str> = inputs.iter().map(|i| i["text"].as_str().unwrap()).collect();
    let want: Vec<Vec<f32>> = inputs.iter().map(|i| floats(&i["embedding"])).collect();
    let names: Vec<String> = st.names().iter().map(|s| s.to_string()).collect();
    // Each argument: "attention,up,down" schemes.
    for spec in std::env::args().skip(1) {
        let parts: Vec<&str> = spec.split(',').collect();
        let mut bytes = orig.clone();
        let mut sq_err = 0f64;
        let mut sq = 0f64;
        for name in &names {
            let info = st.info(name).unwrap();
            if info.dims.len() != 2 || !name.contains("encoder.layer") {
                continue;
            }
            let scheme = if name.contains("attention") && name.ends_with("dense.weight") {
                parts[0]
            } else if name.contains("attention.self") && name.ends_with(".weight") {
                parts[0]
            } else if name.contains("intermediate.dense.weight") {
                parts[1]
            } else if name.ends_with("output.dense.weight") {
                parts[2]
            } else {
                continue;
            };
            let k = info.dims[1];
            let layer: usize = name.split("encoder.layer.").nth(1).unwrap().split('.').next().unwrap().parse().unwrap();
            let norm = if name.contains("attention.self") {
                if layer == 0 { "embeddings.LayerNorm".to_string() } else { format!("encoder.layer.{}.output.LayerNorm", layer - 1) }
            } else if name.contains("intermediate") {
                format!("encoder.layer.{layer}.attention.output.LayerNorm")
            } else {
                String::new()
            };
            let read = |n: &str| -> Vec<f32> {
                let i = st.info(n).unwrap_or_else(|| panic!("{n}"));
                orig[i.range.clone()].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
            };
            let colw: Vec<f32> = if norm.is_empty() {
                vec![]
            } else {
                let g = read(&format!("{norm}.weight"));
                let b = read(&format!("{norm}.bias"));
                g.iter().zip(&b).map(|(g, b)| g * g + b * b).collect()
            };
            COLW.with(|c| *c.borrow_mut() = colw);
            let vals: Vec<f32> = bytes[info.range.clone()].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            let q: Vec<f32> = vals.chunks(k).flat_map(|r| apply(scheme, r)).collect();
            for (a, b) in vals.iter().zip(&q) {
                sq_err += ((a - b) as f64).powi(2);
                sq += (*a as f64).powi(2);
            }
            bytes[info.range.clone()].copy_from_slice(bytemuck::cast_slice(&q));
        }
        std::fs::File::create(tmp.join("model.safetensors")).unwrap().write_all(&bytes).unwrap();
        let files = DirFiles::open(&tmp).unwrap();
        let pipe = FeatureExtraction::load(&files, &webformers::Device::Cpu, &LoadOptions::default()).unwrap();
        let out = pollster::block_on(pipe.run(&texts, Pooling::Mean, true)).unwrap();
        let mut cos: Vec<f32> = want.iter().enumerate().map(|(i, w)| webformers::reference::cosine(out.row(i), w)).collect();
        cos.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{spec:40} rel.err {:.4}  lowest {:.4}  median {:.4}  mean {:.4}",
            (sq_err / sq).sqrt(),
            cos[0],
            cos[cos.len() / 2],
            cos.iter().sum::<f32>() / cos.len() as f32
        );
    }
}
