//! The GGUF reader: every metadata value type, tensor infos and data ranges of files written
//! here (v2 and v3, custom alignment), the real SmolLM2 file, and malformed files (truncated,
//! corrupted, unknown types, random damage), which must be clear errors and never panics.

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use support::Rng;
use webformers::weights::gguf::{GgufArray, GgufFile, GgufValue, parse_header};
use webformers::weights::{WeightDType, WeightSource, Weights};
use webformers::{DType, Device, Error};

/// A GGUF writer for tests: metadata of any type, tensors with raw bytes.
struct Writer {
    version: u32,
    alignment: Option<u64>,
    kv: Vec<(String, GgufValue)>,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn type_id(v: &GgufValue) -> u32 {
    match v {
        GgufValue::U8(_) => 0,
        GgufValue::I8(_) => 1,
        GgufValue::U16(_) => 2,
        GgufValue::I16(_) => 3,
        GgufValue::U32(_) => 4,
        GgufValue::I32(_) => 5,
        GgufValue::F32(_) => 6,
        GgufValue::Bool(_) => 7,
        GgufValue::String(_) => 8,
        GgufValue::Array(_) => 9,
        GgufValue::U64(_) => 10,
        GgufValue::I64(_) => 11,
        GgufValue::F64(_) => 12,
    }
}

fn put_array(out: &mut Vec<u8>, a: &GgufArray) {
    macro_rules! each {
        ($ty:expr, $v:expr, $f:expr) => {{
            out.extend(($ty as u32).to_le_bytes());
            out.extend(($v.len() as u64).to_le_bytes());
            for x in $v {
                $f(out, x);
            }
        }};
    }
    match a {
        GgufArray::U8(v) => each!(0, v, |o: &mut Vec<u8>, x: &u8| o.push(*x)),
        GgufArray::I8(v) => each!(1, v, |o: &mut Vec<u8>, x: &i8| o.push(*x as u8)),
        GgufArray::U16(v) => each!(2, v, |o: &mut Vec<u8>, x: &u16| o.extend(x.to_le_bytes())),
        GgufArray::I16(v) => each!(3, v, |o: &mut Vec<u8>, x: &i16| o.extend(x.to_le_bytes())),
        GgufArray::U32(v) => each!(4, v, |o: &mut Vec<u8>, x: &u32| o.extend(x.to_le_bytes())),
        GgufArray::I32(v) => each!(5, v, |o: &mut Vec<u8>, x: &i32| o.extend(x.to_le_bytes())),
        GgufArray::F32(v) => each!(6, v, |o: &mut Vec<u8>, x: &f32| o.extend(x.to_le_bytes())),
        GgufArray::Bool(v) => each!(7, v, |o: &mut Vec<u8>, x: &bool| o.push(*x as u8)),
        GgufArray::String(v) => each!(8, v, |o: &mut Vec<u8>, x: &String| put_str(o, x)),
        GgufArray::Array(v) => each!(9, v, |o: &mut Vec<u8>, x: &GgufArray| {
            // Nested arrays carry their own element type and count.
            put_array(o, x)
        }),
        GgufArray::U64(v) => each!(10, v, |o: &mut Vec<u8>, x: &u64| o.extend(x.to_le_bytes())),
        GgufArray::I64(v) => each!(11, v, |o: &mut Vec<u8>, x: &i64| o.extend(x.to_le_bytes())),
        GgufArray::F64(v) => each!(12, v, |o: &mut Vec<u8>, x: &f64| o.extend(x.to_le_bytes())),
    }
}

fn put_value(out: &mut Vec<u8>, v: &GgufValue) {
    match v {
        GgufValue::U8(x) => out.push(*x),
        GgufValue::I8(x) => out.push(*x as u8),
        GgufValue::U16(x) => out.extend(x.to_le_bytes()),
        GgufValue::I16(x) => out.extend(x.to_le_bytes()),
        GgufValue::U32(x) => out.extend(x.to_le_bytes()),
        GgufValue::I32(x) => out.extend(x.to_le_bytes()),
        GgufValue::F32(x) => out.extend(x.to_le_bytes()),
        GgufValue::Bool(x) => out.push(*x as u8),
        GgufValue::String(s) => put_str(out, s),
        GgufValue::Array(a) => put_array(out, a),
        GgufValue::U64(x) => out.extend(x.to_le_bytes()),
        GgufValue::I64(x) => out.extend(x.to_le_bytes()),
        GgufValue::F64(x) => out.extend(x.to_le_bytes()),
    }
}

impl Writer {
    fn new(version: u32) -> Writer {
        Writer { version, alignment: None, kv: Vec::new(), tensors: Vec::new() }
    }
    fn kv(mut self, key: &str, v: GgufValue) -> Writer {
        self.kv.push((key.into(), v));
        self
    }
    /// `dims` row-major, as webformers exposes them (written innermost first, as GGUF stores them).
    fn tensor(mut self, name: &str, dims: &[u64], ggml_type: u32, data: Vec<u8>) -> Writer {
        self.tensors.push((name.into(), dims.iter().rev().copied().collect(), ggml_type, data));
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let align = self.alignment.unwrap_or(32);
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        let mut kv = self.kv.clone();
        if let Some(a) = self.alignment {
            kv.push(("general.alignment".into(), GgufValue::U32(a as u32)));
        }
        out.extend((kv.len() as u64).to_le_bytes());
        for (k, v) in &kv {
            put_str(&mut out, k);
            out.extend(type_id(v).to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, dims, ty, data) in &self.tensors {
            put_str(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend(offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + data.len() as u64).div_ceil(align) * align;
        }
        let start = (out.len() as u64).div_ceil(align) * align;
        out.resize(start as usize, 0);
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            out.resize((start + off) as usize, 0);
            out.extend(data);
        }
        out
    }
}

fn open(bytes: Vec<u8>) -> webformers::Result<GgufFile> {
    GgufFile::from_bytes(Arc::new(bytes), "test.gguf")
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Every value type, nested arrays, and tensors of several types.
fn sample(version: u32) -> Writer {
    let mut rng = Rng::new(7);
    let table: Vec<f32> = rng.vec(6 * 32, 1.0);
    let q8 = webformers::quant::quantize(DType::Q8_0, &table).unwrap();
    Writer::new(version)
        .kv("general.architecture", GgufValue::String("llama".into()))
        .kv("t.u8", GgufValue::U8(200))
        .kv("t.i8", GgufValue::I8(-5))
        .kv("t.u16", GgufValue::U16(60000))
        .kv("t.i16", GgufValue::I16(-30000))
        .kv("t.u32", GgufValue::U32(4_000_000_000))
        .kv("t.i32", GgufValue::I32(-7))
        .kv("t.f32", GgufValue::F32(1.5))
        .kv("t.bool", GgufValue::Bool(true))
        .kv("t.u64", GgufValue::U64(1 << 40))
        .kv("t.i64", GgufValue::I64(-(1 << 40)))
        .kv("t.f64", GgufValue::F64(0.25))
        .kv("t.small_u64", GgufValue::U64(30))
        .kv("t.strings", GgufValue::Array(GgufArray::String(vec!["a".into(), "héllo".into(), String::new()])))
        .kv("t.i32s", GgufValue::Array(GgufArray::I32(vec![1, -2, 3])))
        .kv("t.u8s", GgufValue::Array(GgufArray::U8(vec![1, 2])))
        .kv("t.f32s", GgufValue::Array(GgufArray::F32(vec![0.5, -1.0])))
        .kv("t.bools", GgufValue::Array(GgufArray::Bool(vec![true, false])))
        .kv("t.u64s", GgufValue::Array(GgufArray::U64(vec![5, 6])))
        .kv("t.nested", GgufValue::Array(GgufArray::Array(vec![GgufArray::U16(vec![1, 2]), GgufArray::String(vec!["x".into()])])))
        .kv("t.empty", GgufValue::Array(GgufArray::F64(vec![])))
        .tensor("norm.weight", &[5], 0, f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0]))
        .tensor("embed.weight", &[6, 32], 8, q8)
        .tensor("proj.weight", &[3, 64], 3, vec![0x11; 3 * 2 * 20])
}

#[test]
fn reads_every_metadata_type_and_tensor_info() {
    for version in [2, 3] {
        let w = sample(version);
        let bytes = w.bytes();
        let f = open(bytes.clone()).unwrap();
        assert_eq!(f.version(), version);
        let m = f.metadata();
        assert_eq!(m.get_str("general.architecture").unwrap(), "llama");
        assert_eq!(m.get_u32("t.u8").unwrap(), 200);
        assert_eq!(m.get("t.i8"), Some(&GgufValue::I8(-5)));
        assert_eq!(m.get_u32("t.u16").unwrap(), 60000);
        assert_eq!(m.get_i32("t.i16").unwrap(), -30000);
        assert_eq!(m.get_u32("t.u32").unwrap(), 4_000_000_000);
        assert_eq!(m.get_i32("t.i32").unwrap(), -7);
        assert_eq!(m.get_f32("t.f32").unwrap(), 1.5);
        assert!(m.get_bool("t.bool").unwrap());
        assert_eq!(m.get_u64("t.u64").unwrap(), 1 << 40);
        assert_eq!(m.get("t.i64"), Some(&GgufValue::I64(-(1 << 40))));
        assert_eq!(m.get_f32("t.f64").unwrap(), 0.25);
        assert_eq!(m.get_usize("t.small_u64").unwrap(), 30);
        assert_eq!(m.get_str_array("t.strings").unwrap(), ["a", "héllo", ""]);
        assert_eq!(m.get_i32_array("t.i32s").unwrap(), [1, -2, 3]);
        assert_eq!(m.get_u32_array("t.u8s").unwrap(), [1, 2]);
        assert_eq!(m.get_f32_array("t.f32s").unwrap(), [0.5, -1.0]);
        assert_eq!(m.get_array("t.bools").unwrap(), &GgufArray::Bool(vec![true, false]));
        assert_eq!(m.get_u32_array("t.u64s").unwrap(), [5, 6]);
        assert_eq!(
            m.get_array("t.nested").unwrap(),
            &GgufArray::Array(vec![GgufArray::U16(vec![1, 2]), GgufArray::String(vec!["x".into()])])
        );
        assert!(m.get_array("t.empty").unwrap().is_empty());
        assert_eq!(m.keys().next(), Some("general.architecture"));

        // Errors name the key and say what is wrong.
        let e = m.get_u32("nope").unwrap_err().to_string();
        assert!(e.contains("`nope`") && e.contains("missing"), "{e}");
        let e = m.get_str("t.u32").unwrap_err().to_string();
        assert!(e.contains("`t.u32`") && e.contains("u32") && e.contains("string"), "{e}");
        let e = m.get_i32("t.u32").unwrap_err().to_string();
        assert!(e.contains("`t.u32`") && e.contains("i32"), "{e}");
        let e = m.get_u32("t.i32").unwrap_err().to_string();
        assert!(e.contains("`t.i32`") && e.contains("-7"), "{e}");
        let e = m.get_i32_array("t.strings").unwrap_err().to_string();
        assert!(e.contains("`t.strings`") && e.contains("string"), "{e}");
        let e = m.get_u32_array("t.i32s").unwrap_err().to_string();
        assert!(e.contains("`t.i32s`") && e.contains("-2"), "{e}");

        assert_eq!(f.alignment(), 32);
        assert_eq!(f.data_start() % 32, 0);
        let norm = f.tensor("norm.weight").unwrap();
        assert_eq!((norm.dtype, norm.dims.clone()), (DType::F32, vec![5]));
        assert_eq!(&bytes[norm.range.clone()], &f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0])[..]);
        let embed = f.tensor("embed.weight").unwrap();
        assert_eq!((embed.dtype, embed.dims.clone()), (DType::Q8_0, vec![6, 32]));
        assert_eq!(embed.range.start % 32, 0);
        assert_eq!(embed.range.len(), 6 * 34);
        let proj = f.tensor("proj.weight").unwrap();
        assert_eq!((proj.dtype, proj.dims.clone(), proj.range.len()), (DType::Q4_1, vec![3, 64], 120));
        assert_eq!(f.tensors().len(), 3);
        let mut names = f.names();
        names.sort();
        assert_eq!(names, ["embed.weight", "norm.weight", "proj.weight"]);

        // Through `Weights`: a quantized tensor keeps its blocks.
        let weights = Weights::new(Arc::new(f), &Device::Cpu, WeightDType::Auto);
        let t = weights.get("embed.weight", &[6, 32]).unwrap();
        assert_eq!(t.dtype(), DType::Q8_0);
        let n = weights.get_f32("norm.weight", &[5]).unwrap();
        assert_eq!(n.to_vec_f32_blocking().unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}

#[test]
fn custom_alignment_is_honoured() {
    let mut w = sample(3);
    w.alignment = Some(64);
    let f = open(w.bytes()).unwrap();
    assert_eq!(f.alignment(), 64);
    for name in ["norm.weight", "embed.weight", "proj.weight"] {
        assert_eq!(f.tensor(name).unwrap().range.start % 64, 0, "{name}");
    }
    let mut w = sample(3);
    w.alignment = Some(48);
    let e = open(w.bytes()).err().expect("alignment 48 accepted").to_string();
    assert!(e.contains("general.alignment"), "{e}");
}

fn smollm2_path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.exists(), "{} is missing: run scripts/fetch-models.sh smollm2", p.display());
    p
}

#[test]
fn reads_the_real_smollm2_file() {
    let f = GgufFile::open(smollm2_path()).unwrap();
    let m = f.metadata();
    assert_eq!(f.version(), 3);
    assert_eq!(m.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(m.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(m.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(m.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(m.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(m.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(m.get_u32("llama.vocab_size").unwrap(), 49152);
    assert_eq!(m.get_u32("llama.context_length").unwrap(), 8192);
    assert_eq!(m.get_f32("llama.rope.freq_base").unwrap(), 100000.0);
    assert!((m.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap() - 1e-5).abs() < 1e-9);
    assert_eq!(m.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    let tokens = m.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens[1], "<|im_start|>");
    assert_eq!(m.get_i32_array("tokenizer.ggml.token_type").unwrap().len(), 49152);
    assert_eq!(m.get_str_array("tokenizer.ggml.merges").unwrap().len(), 48900);
    assert_eq!(m.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 2);
    assert!(m.get_str("tokenizer.chat_template").unwrap().contains("<|im_start|>"));

    assert_eq!(f.tensors().len(), 272);
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.dtype, q.dims.clone()), (DType::Q4_1, vec![576, 576]));
    let k = f.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!((k.dtype, k.dims.clone()), (DType::Q4_1, vec![192, 576]));
    let down = f.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!(down.dims, [576, 1536]);
    let embed = f.tensor("token_embd.weight").unwrap();
    assert_eq!((embed.dtype, embed.dims.clone()), (DType::Q8_0, vec![49152, 576]));
    let norm = f.tensor("output_norm.weight").unwrap();
    assert_eq!((norm.dtype, norm.dims.clone()), (DType::F32, vec![576]));
    // Absolute offsets in the file, as gguf-py reports them (tests/fixtures/quant-reference.json).
    assert_eq!(q.range, 33806656..33806656 + 207360);
    assert_eq!(embed.range, 1785664..1785664 + 30081024);
    assert_eq!(f.tensor_bytes("blk.0.attn_q.weight").unwrap().len(), 207360);
}

#[test]
fn truncated_files_are_clear_errors() {
    let bytes = sample(3).bytes();
    let header_end = {
        let f = open(bytes.clone()).unwrap();
        f.data_start()
    };
    for (cut, expect) in [
        (0, "magic"),
        (3, "magic"),
        (6, "version"),
        (12, "tensor count"),
        (30, "tensor count"),
        (200, "metadata count"),
        (400, "metadata key"),
        (header_end - 20, "tensor"),
    ] {
        let e = open(bytes[..cut].to_vec()).err().unwrap_or_else(|| panic!("cut at {cut} opened"));
        let msg = e.to_string();
        assert!(matches!(e, Error::File { .. }), "{msg}");
        assert!(msg.contains("test.gguf") && msg.contains("truncated") && msg.contains(expect), "cut at {cut}: {msg}");
    }
    // Cut inside the tensor data: names the tensor that no longer fits.
    let e = open(bytes[..bytes.len() - 10].to_vec()).err().unwrap().to_string();
    assert!(e.contains("truncated") && e.contains("proj.weight"), "{e}");
}

#[test]
fn corrupt_headers_are_clear_errors() {
    let good = sample(3).bytes();
    let mut bad = good.clone();
    bad[..4].copy_from_slice(b"GGUG");
    let e = open(bad).err().unwrap().to_string();
    assert!(e.contains("not a GGUF file"), "{e}");

    for version in [1u32, 4, 0xFFFF_FFFF] {
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&version.to_le_bytes());
        let e = open(bad).err().unwrap().to_string();
        assert!(e.contains(&format!("version {version}")) && e.contains("not supported"), "{e}");
    }

    // Counts far beyond what the file could hold.
    let mut bad = good.clone();
    bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = open(bad).err().unwrap().to_string();
    assert!(e.contains("corrupt") && e.contains("tensor count"), "{e}");
    let mut bad = good.clone();
    bad[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = open(bad).err().unwrap().to_string();
    assert!(e.contains("corrupt") && e.contains("metadata count"), "{e}");

    // A string length past the end, and an unknown value type.
    let mut bad = good.clone();
    bad[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let e = open(bad).err().unwrap().to_string();
    assert!(e.contains("corrupt") && e.contains("metadata key 0"), "{e}");
    let key_len = "general.architecture".len();
    let mut bad = good.clone();
    bad[32 + key_len..36 + key_len].copy_from_slice(&77u32.to_le_bytes());
    let e = open(bad).err().unwrap().to_string();
    assert!(e.contains("general.architecture") && e.contains("unknown value type 77"), "{e}");

    // Five dims, and an offset that is not aligned.
    let w = sample(3).tensor("five.weight", &[1, 1, 1, 1, 32], 0, vec![0; 128]);
    let e = open(w.bytes()).err().unwrap().to_string();
    assert!(e.contains("five.weight") && e.contains("5 dims"), "{e}");
    let bytes = sample(3).bytes();
    let f = open(bytes.clone()).unwrap();
    let pos = find(&bytes, b"norm.weight") + "norm.weight".len() + 4 + 8 + 4;
    let mut bad = bytes.clone();
    bad[pos..pos + 8].copy_from_slice(&3u64.to_le_bytes());
    let e = open(bad).err().unwrap().to_string();
    assert!(e.contains("norm.weight") && e.contains("not a multiple of the alignment"), "{e}");
    drop(f);

    // A quantized row that is not whole blocks.
    let w = Writer::new(3).tensor("odd.weight", &[2, 20], 2, vec![0; 40]);
    let e = open(w.bytes()).err().unwrap().to_string();
    assert!(e.contains("odd.weight") && e.contains("whole"), "{e}");
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).expect("needle present")
}

#[test]
fn unknown_and_unsupported_tensor_types_are_named_when_used() {
    let w = sample(3).tensor("odd.weight", &[2, 32], 99, vec![0; 64]).tensor("q5.weight", &[2, 32], 7, vec![0; 48]);
    let f = open(w.bytes()).unwrap();
    let e = f.tensor("odd.weight").unwrap_err().to_string();
    assert!(e.contains("odd.weight") && e.contains("ggml type 99") && e.contains("unknown") && e.contains("not supported"), "{e}");
    let e = f.tensor("q5.weight").unwrap_err().to_string();
    assert!(e.contains("q5.weight") && e.contains("ggml type 7 (q5_1)"), "{e}");
    let e = f.tensor("missing.weight").unwrap_err().to_string();
    assert!(e.contains("missing.weight") && e.contains("not found"), "{e}");
    // Loading through `Weights` says the same; the other tensors still load.
    let weights = Weights::new(Arc::new(f), &Device::Cpu, WeightDType::Auto);
    let e = weights.get("odd.weight", &[2, 32]).unwrap_err().to_string();
    assert!(e.contains("odd.weight") && e.contains("ggml type 99"), "{e}");
    assert!(weights.get("proj.weight", &[3, 64]).is_ok());
}

/// Q5_0 (ggml type 6) has no kernel: it reads as Q8_0 blocks of the same values, alone and
/// stacked with a Q8_0 tensor in one fused projection.
#[test]
fn q5_0_tensors_load_as_the_same_values_in_q8_0() {
    // Block: d = 0.5; value i = (nibble | bit i of qh << 4) - 16.
    let mut block = half::f16::from_f32(0.5).to_le_bytes().to_vec();
    block.extend_from_slice(&0xF0F0_1234u32.to_le_bytes());
    block.extend((0..16u8).map(|i| i.wrapping_mul(29)));
    let want: Vec<f32> = (0..32)
        .map(|i| {
            let nibble = if i < 16 { block[6 + i] & 0xF } else { block[6 + i - 16] >> 4 };
            0.5 * ((nibble as u32 | ((0xF0F0_1234u32 >> i) & 1) << 4) as f32 - 16.0)
        })
        .collect();
    let q8: Vec<u8> = webformers::quant::quantize(DType::Q8_0, &[0.25; 32]).unwrap();
    let w = sample(3).tensor("q5.weight", &[1, 32], 6, block.clone()).tensor("q8.weight", &[1, 32], 8, q8);
    let f = open(w.bytes()).unwrap();
    assert_eq!(f.tensor("q5.weight").unwrap().dtype, DType::Q8_0);
    assert_eq!(webformers::quant::dequantize(DType::Q8_0, f.tensor_bytes("q5.weight").unwrap()).unwrap(), want);
    let weights = Weights::new(Arc::new(f), &Device::Cpu, WeightDType::Auto);
    assert_eq!(weights.get("q5.weight", &[1, 32]).unwrap().dtype(), DType::Q8_0);
    let both = weights.get_concat(&["q5.weight", "q8.weight"], &[&[1, 32], &[1, 32]], false).unwrap();
    assert_eq!((both.dtype(), both.dims()), (DType::Q8_0, &[2usize, 32][..]));
    // A Q5_0 tensor cut short by the end of the file (one block of two) is an error naming it.
    let e = open(sample(3).tensor("q5.weight", &[2, 32], 6, block).bytes()).err().expect("truncated").to_string();
    assert!(e.contains("q5.weight"), "{e}");
}

/// Shares a prefix of a big buffer without copying it.
struct Prefix(Arc<Vec<u8>>, usize);
impl AsRef<[u8]> for Prefix {
    fn as_ref(&self) -> &[u8] {
        &self.0[..self.1]
    }
}

#[test]
fn random_damage_is_an_error_or_a_valid_file_never_a_panic() {
    let mut rng = Rng::new(99);
    let sample_bytes = sample(3).bytes();
    for _ in 0..3000 {
        let mut b = sample_bytes.clone();
        match rng.below(3) {
            0 => b.truncate(rng.below(b.len())),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            _ => {
                let i = rng.below(b.len());
                b[i] = rng.next_u64() as u8;
                b.truncate(b.len() - rng.below(40));
            }
        }
        if let Ok(f) = open(b) {
            // Whatever parsed must be usable: every tensor's range lies in the file.
            for t in f.tensors() {
                let _ = f.tensor_bytes(&t.name);
            }
        }
    }

    // The real file: truncations anywhere (without copying 98 MB each time), and damage to the
    // header (metadata and tensor infos, the first ~1.8 MB).
    let real = Arc::new(std::fs::read(smollm2_path()).unwrap());
    let full_len = real.len();
    for i in 0..60 {
        let cut = if i < 30 { rng.below(1_800_000) } else { rng.below(full_len) };
        let r = GgufFile::from_bytes(Arc::new(Prefix(real.clone(), cut)), "real.gguf");
        let e = r.err().unwrap_or_else(|| panic!("cut at {cut} opened"));
        assert!(e.to_string().contains("truncated"), "cut at {cut}: {e}");
    }
    let header_len = GgufFile::from_bytes(real.clone(), "real.gguf").unwrap().data_start();
    for _ in 0..40 {
        let mut head = real[..header_len].to_vec();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(head.len());
            head[i] ^= 1 << rng.below(8);
        }
        let _ = parse_header(&head, "real.gguf");
    }
}

#[test]
fn unknown_architectures_and_missing_metadata_are_named() {
    let load = |w: Writer| match webformers::models::gguf::load(open(w.bytes()).unwrap(), &webformers::Device::Cpu, WeightDType::Auto) {
        Ok(_) => panic!("loaded a model that cannot exist"),
        Err(e) => e.to_string(),
    };
    let mamba = Writer::new(3).kv("general.architecture", GgufValue::String("mamba".into()));
    let msg = load(mamba);
    assert!(msg.contains("mamba") && msg.contains("supported"), "{msg}");
    // A llama file without its tokenizer says which key is missing.
    let msg = load(sample(3));
    assert!(msg.contains("tokenizer.ggml.tokens"), "{msg}");
}
