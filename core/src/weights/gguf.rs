//! GGUF files (versions 2 and 3), llama.cpp's single-file format: a header, typed metadata
//! key/values (the model's config and its tokenizer), tensor infos, then the tensors' bytes,
//! each aligned to `general.alignment` (32 by default).
//!
//! Layout, all little-endian: magic `GGUF`, u32 version, u64 tensor count, u64 metadata count;
//! each metadata entry is a string key, a u32 value type and the value (strings are a u64 length
//! then UTF-8 bytes; arrays a u32 element type, a u64 count, then the elements); each tensor info
//! is a string name, a u32 rank, u64 dims innermost first, a u32 ggml type and a u64 offset from
//! the start of the data section, which begins at the first aligned position after the infos.
//!
//! Natively the file is memory-mapped and tensors point into the map; nothing but the metadata
//! is copied. Dims are exposed row-major (outermost first), so `blk.0.attn_q.weight` reads as
//! `[out, in]` like a Hugging Face linear weight. Every count and offset is checked against the
//! bytes that exist before anything is allocated, so a malformed file is an error, never a panic
//! or a huge allocation.

use std::collections::HashMap;

use super::{SharedBytes, TensorInfo, WeightSource};
use crate::{DType, Device, Error, Result, Tensor};

const MAGIC: &[u8; 4] = b"GGUF";
/// ggml tensors have at most 4 dims.
const MAX_DIMS: u32 = 4;
/// The smallest encoding of a tensor info (empty name, rank 0, type, offset) and of a metadata
/// entry (empty key, type, a 1-byte value): counts above what the file could hold are rejected.
const MIN_TENSOR_INFO: u64 = 8 + 4 + 4 + 8;
const MIN_KV: u64 = 8 + 4 + 1;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(GgufArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array: one element type for all elements (arrays of arrays are allowed).
#[derive(Clone, Debug, PartialEq)]
pub enum GgufArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<GgufArray>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl GgufArray {
    pub fn len(&self) -> usize {
        match self {
            GgufArray::U8(v) => v.len(),
            GgufArray::I8(v) => v.len(),
            GgufArray::U16(v) => v.len(),
            GgufArray::I16(v) => v.len(),
            GgufArray::U32(v) => v.len(),
            GgufArray::I32(v) => v.len(),
            GgufArray::F32(v) => v.len(),
            GgufArray::Bool(v) => v.len(),
            GgufArray::String(v) => v.len(),
            GgufArray::Array(v) => v.len(),
            GgufArray::U64(v) => v.len(),
            GgufArray::I64(v) => v.len(),
            GgufArray::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type's name, for messages.
    pub fn elem_name(&self) -> &'static str {
        match self {
            GgufArray::U8(_) => "u8",
            GgufArray::I8(_) => "i8",
            GgufArray::U16(_) => "u16",
            GgufArray::I16(_) => "i16",
            GgufArray::U32(_) => "u32",
            GgufArray::I32(_) => "i32",
            GgufArray::F32(_) => "f32",
            GgufArray::Bool(_) => "bool",
            GgufArray::String(_) => "string",
            GgufArray::Array(_) => "array",
            GgufArray::U64(_) => "u64",
            GgufArray::I64(_) => "i64",
            GgufArray::F64(_) => "f64",
        }
    }

    /// Integer elements widened to i64 (None for other element types).
    fn integers(&self) -> Option<Vec<i64>> {
        Some(match self {
            GgufArray::U8(v) => v.iter().map(|&x| x as i64).collect(),
            GgufArray::I8(v) => v.iter().map(|&x| x as i64).collect(),
            GgufArray::U16(v) => v.iter().map(|&x| x as i64).collect(),
            GgufArray::I16(v) => v.iter().map(|&x| x as i64).collect(),
            GgufArray::U32(v) => v.iter().map(|&x| x as i64).collect(),
            GgufArray::I32(v) => v.iter().map(|&x| x as i64).collect(),
            GgufArray::U64(v) => v.iter().map(|&x| i64::try_from(x).unwrap_or(i64::MAX)).collect(),
            GgufArray::I64(v) => v.clone(),
            _ => return None,
        })
    }
}

impl GgufValue {
    /// The type's name, for messages.
    pub fn type_name(&self) -> String {
        match self {
            GgufValue::U8(_) => "u8".into(),
            GgufValue::I8(_) => "i8".into(),
            GgufValue::U16(_) => "u16".into(),
            GgufValue::I16(_) => "i16".into(),
            GgufValue::U32(_) => "u32".into(),
            GgufValue::I32(_) => "i32".into(),
            GgufValue::F32(_) => "f32".into(),
            GgufValue::Bool(_) => "bool".into(),
            GgufValue::String(_) => "string".into(),
            GgufValue::Array(a) => format!("array of {}", a.elem_name()),
            GgufValue::U64(_) => "u64".into(),
            GgufValue::I64(_) => "i64".into(),
            GgufValue::F64(_) => "f64".into(),
        }
    }

    /// Any integer value (writers differ in which width they use for counts).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            GgufValue::U8(v) => v as i128,
            GgufValue::I8(v) => v as i128,
            GgufValue::U16(v) => v as i128,
            GgufValue::I16(v) => v as i128,
            GgufValue::U32(v) => v as i128,
            GgufValue::I32(v) => v as i128,
            GgufValue::U64(v) => v as i128,
            GgufValue::I64(v) => v as i128,
            _ => return None,
        })
    }
}

/// ggml tensor type ids and what webformers stores them as (None: known, but not supported).
fn ggml_type(id: u32) -> (&'static str, Option<DType>) {
    match id {
        0 => ("f32", Some(DType::F32)),
        1 => ("f16", Some(DType::F16)),
        2 => ("q4_0", Some(DType::Q4_0)),
        3 => ("q4_1", Some(DType::Q4_1)),
        6 => ("q5_0", None),
        7 => ("q5_1", None),
        8 => ("q8_0", Some(DType::Q8_0)),
        9 => ("q8_1", None),
        10 => ("q2_k", None),
        11 => ("q3_k", None),
        12 => ("q4_k", Some(DType::Q4K)),
        13 => ("q5_k", Some(DType::Q5K)),
        14 => ("q6_k", Some(DType::Q6K)),
        15 => ("q8_k", None),
        16..=23 | 29 => ("an i-quant type", None),
        24 => ("i8", None),
        25 => ("i16", None),
        26 => ("i32", Some(DType::I32)),
        27 => ("i64", None),
        28 => ("f64", None),
        30 => ("bf16", Some(DType::BF16)),
        34 | 35 => ("a ternary type", None),
        39 => ("mxfp4", None),
        _ => ("unknown", None),
    }
}

/// Where a tensor is and what it holds.
#[derive(Clone, Debug)]
pub struct GgufTensor {
    pub name: String,
    /// The ggml type id as stored.
    pub type_id: u32,
    /// None when webformers has no kernel for the type (`type_id` says which it is).
    pub dtype: Option<DType>,
    /// Row-major: outermost first (the reverse of GGUF's storage order).
    pub dims: Vec<usize>,
    /// Absolute byte range in the file (for mapped reads and for ranged downloads).
    pub range: std::ops::Range<usize>,
}

/// Everything before the tensor data: what `parse_header` reads from a file's first bytes.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: GgufMetadata,
    /// In file order.
    pub tensors: Vec<GgufTensor>,
    pub alignment: usize,
    /// Absolute offset of the data section.
    pub data_start: usize,
    /// Where the last tensor's bytes end (the file must be at least this long).
    pub data_end: usize,
}

/// Metadata key/values with typed accessors whose errors name the key.
#[derive(Clone, Debug, Default)]
pub struct GgufMetadata {
    origin: String,
    values: HashMap<String, GgufValue>,
    /// Keys in file order.
    keys: Vec<String>,
}

impl GgufMetadata {
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.values.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Keys in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    fn require(&self, key: &str) -> Result<&GgufValue> {
        self.values.get(key).ok_or_else(|| Error::file(&self.origin, format!("metadata key `{key}` is missing")))
    }

    fn wrong(&self, key: &str, want: &str, got: &GgufValue) -> Error {
        Error::file(&self.origin, format!("metadata key `{key}` is {}, expected {want}", got.type_name()))
    }

    fn integer(&self, key: &str, want: &str) -> Result<i128> {
        let v = self.require(key)?;
        v.as_i128().ok_or_else(|| self.wrong(key, want, v))
    }

    /// An integer key of any width whose value fits a u32.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let v = self.integer(key, "an integer")?;
        u32::try_from(v).map_err(|_| Error::file(&self.origin, format!("metadata key `{key}` = {v} does not fit a u32")))
    }

    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.integer(key, "an integer")?;
        u64::try_from(v).map_err(|_| Error::file(&self.origin, format!("metadata key `{key}` = {v} does not fit a u64")))
    }

    pub fn get_i32(&self, key: &str) -> Result<i32> {
        let v = self.integer(key, "an integer")?;
        i32::try_from(v).map_err(|_| Error::file(&self.origin, format!("metadata key `{key}` = {v} does not fit an i32")))
    }

    /// A u32 key converted to usize (counts and sizes of a config).
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        Ok(self.get_u32(key)? as usize)
    }

    /// An f32 or f64 key, as f32.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        match self.require(key)? {
            GgufValue::F32(v) => Ok(*v),
            GgufValue::F64(v) => Ok(*v as f32),
            other => Err(self.wrong(key, "a float", other)),
        }
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.require(key)? {
            GgufValue::Bool(v) => Ok(*v),
            other => Err(self.wrong(key, "a bool", other)),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            GgufValue::String(v) => Ok(v),
            other => Err(self.wrong(key, "a string", other)),
        }
    }

    pub fn get_array(&self, key: &str) -> Result<&GgufArray> {
        match self.require(key)? {
            GgufValue::Array(a) => Ok(a),
            other => Err(self.wrong(key, "an array", other)),
        }
    }

    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.get_array(key)? {
            GgufArray::String(v) => Ok(v),
            other => Err(Error::file(&self.origin, format!("metadata key `{key}` is an array of {}, expected strings", other.elem_name()))),
        }
    }

    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.get_array(key)? {
            GgufArray::F32(v) => Ok(v),
            other => Err(Error::file(&self.origin, format!("metadata key `{key}` is an array of {}, expected f32", other.elem_name()))),
        }
    }

    /// An array of integers of any width, each of which must fit an i32.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>> {
        self.int_array(key, "i32", |v| i32::try_from(v).ok())
    }

    /// An array of integers of any width, each of which must fit a u32.
    pub fn get_u32_array(&self, key: &str) -> Result<Vec<u32>> {
        self.int_array(key, "u32", |v| u32::try_from(v).ok())
    }

    fn int_array<T>(&self, key: &str, want: &str, convert: impl Fn(i64) -> Option<T>) -> Result<Vec<T>> {
        let a = self.get_array(key)?;
        let ints = a.integers().ok_or_else(|| {
            Error::file(&self.origin, format!("metadata key `{key}` is an array of {}, expected integers", a.elem_name()))
        })?;
        ints.into_iter()
            .enumerate()
            .map(|(i, v)| {
                convert(v).ok_or_else(|| Error::file(&self.origin, format!("metadata key `{key}`: element {i} = {v} does not fit {want}")))
            })
            .collect()
    }
}

/// A bounds-checked reader over the header bytes; every read that runs out says what it was
/// reading, so a truncated file names the part that is cut.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    origin: &'a str,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::file(
                self.origin,
                format!("truncated GGUF: {} needs {n} bytes at offset {}, only {} remain", what(), self.pos, self.remaining()),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of elements each at least `min_size` bytes: more than the remaining bytes could
    /// hold is corrupt, and is caught before anything is allocated for it.
    fn count(&mut self, min_size: u64, what: &dyn Fn() -> String) -> Result<usize> {
        let n = self.u64(what)?;
        if n.saturating_mul(min_size.max(1)) > self.remaining() as u64 {
            return Err(Error::file(
                self.origin,
                format!("truncated or corrupt GGUF: {} says {n} elements, but only {} bytes follow", what(), self.remaining()),
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let len = self.count(1, &|| format!("the length of {}", what()))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::file(self.origin, format!("corrupt GGUF: {} is not UTF-8", what())))
    }
}

/// The smallest encoding of one element of value type `ty` (for count checks).
fn min_size(ty: u32) -> u64 {
    match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 4 + 8,
        _ => 8,
    }
}

fn read_value(c: &mut Cursor<'_>, ty: u32, key: &str, depth: usize) -> Result<GgufValue> {
    let what = || format!("the value of metadata key `{key}`");
    Ok(match ty {
        0 => GgufValue::U8(c.array::<1>(&what)?[0]),
        1 => GgufValue::I8(c.array::<1>(&what)?[0] as i8),
        2 => GgufValue::U16(u16::from_le_bytes(c.array(&what)?)),
        3 => GgufValue::I16(i16::from_le_bytes(c.array(&what)?)),
        4 => GgufValue::U32(c.u32(&what)?),
        5 => GgufValue::I32(i32::from_le_bytes(c.array(&what)?)),
        6 => GgufValue::F32(f32::from_le_bytes(c.array(&what)?)),
        7 => GgufValue::Bool(c.array::<1>(&what)?[0] != 0),
        8 => GgufValue::String(c.string(&what)?),
        9 => GgufValue::Array(read_array(c, key, depth)?),
        10 => GgufValue::U64(c.u64(&what)?),
        11 => GgufValue::I64(i64::from_le_bytes(c.array(&what)?)),
        12 => GgufValue::F64(f64::from_le_bytes(c.array(&what)?)),
        other => return Err(Error::file(c.origin, format!("corrupt GGUF: metadata key `{key}` has unknown value type {other}"))),
    })
}

fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<GgufArray> {
    // Real files nest at most once; a deep nest is corruption (and would recurse without bound).
    if depth > 8 {
        return Err(Error::file(c.origin, format!("corrupt GGUF: metadata key `{key}` nests arrays more than 8 deep")));
    }
    let what = || format!("the array of metadata key `{key}`");
    let ty = c.u32(&what)?;
    let n = c.count(min_size(ty), &what)?;
    macro_rules! each {
        ($variant:ident, $read:expr) => {{
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push($read);
            }
            GgufArray::$variant(v)
        }};
    }
    Ok(match ty {
        0 => GgufArray::U8(c.take(n, &what)?.to_vec()),
        1 => GgufArray::I8(c.take(n, &what)?.iter().map(|&b| b as i8).collect()),
        2 => each!(U16, u16::from_le_bytes(c.array(&what)?)),
        3 => each!(I16, i16::from_le_bytes(c.array(&what)?)),
        4 => each!(U32, c.u32(&what)?),
        5 => each!(I32, i32::from_le_bytes(c.array(&what)?)),
        6 => each!(F32, f32::from_le_bytes(c.array(&what)?)),
        7 => GgufArray::Bool(c.take(n, &what)?.iter().map(|&b| b != 0).collect()),
        8 => each!(String, c.string(&what)?),
        9 => each!(Array, read_array(c, key, depth + 1)?),
        10 => each!(U64, c.u64(&what)?),
        11 => each!(I64, i64::from_le_bytes(c.array(&what)?)),
        12 => each!(F64, f64::from_le_bytes(c.array(&what)?)),
        other => return Err(Error::file(c.origin, format!("corrupt GGUF: metadata key `{key}` is an array of unknown type {other}"))),
    })
}

/// Parses everything before the tensor data from `prefix`: the whole file, or its first bytes
/// when streaming (a prefix too short is a "truncated" error; retry with more bytes).
pub fn parse_header(prefix: &[u8], origin: &str) -> Result<GgufHeader> {
    let mut c = Cursor { bytes: prefix, pos: 0, origin };
    let magic = c.array::<4>(&|| "the magic number".into())?;
    if &magic != MAGIC {
        return Err(Error::file(origin, format!("not a GGUF file: it starts with {magic:02x?}, not `GGUF`")));
    }
    let version = c.u32(&|| "the version".into())?;
    if !(2..=3).contains(&version) {
        return Err(Error::file(origin, format!("GGUF version {version} is not supported (only versions 2 and 3)")));
    }
    let n_tensors = c.count(MIN_TENSOR_INFO, &|| "the tensor count".into())?;
    let n_kv = c.count(MIN_KV, &|| "the metadata count".into())?;

    let mut metadata = GgufMetadata { origin: origin.to_string(), ..Default::default() };
    for i in 0..n_kv {
        let key = c.string(&|| format!("metadata key {i}"))?;
        let ty = c.u32(&|| format!("the type of metadata key `{key}`"))?;
        let value = read_value(&mut c, ty, &key, 0)?;
        if metadata.values.insert(key.clone(), value).is_some() {
            return Err(Error::file(origin, format!("corrupt GGUF: metadata key `{key}` appears twice")));
        }
        metadata.keys.push(key);
    }

    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(v) => match v.as_i128() {
            Some(a) if a > 0 && a <= 1 << 20 && (a as u64).is_power_of_two() => a as usize,
            _ => return Err(Error::file(origin, format!("general.alignment {v:?} is not a power of two up to 1 MiB"))),
        },
    };

    let mut infos = Vec::with_capacity(n_tensors);
    let mut names = std::collections::HashSet::new();
    for i in 0..n_tensors {
        let name = c.string(&|| format!("the name of tensor {i}"))?;
        let what = |part: &str| format!("the {part} of tensor `{name}`");
        let rank = c.u32(&|| what("rank"))?;
        if rank > MAX_DIMS {
            return Err(Error::file(origin, format!("corrupt GGUF: tensor `{name}` has {rank} dims (at most {MAX_DIMS})")));
        }
        let mut ggml_dims = Vec::with_capacity(rank as usize);
        for _ in 0..rank {
            ggml_dims.push(c.u64(&|| what("dims"))?);
        }
        let type_id = c.u32(&|| what("type"))?;
        let offset = c.u64(&|| what("data offset"))?;
        if !names.insert(name.clone()) {
            return Err(Error::file(origin, format!("corrupt GGUF: tensor `{name}` appears twice")));
        }
        infos.push((name, ggml_dims, type_id, offset));
    }
    let data_start = c.pos.div_ceil(alignment) * alignment;

    let mut tensors = Vec::with_capacity(infos.len());
    let mut data_end = data_start;
    for (name, ggml_dims, type_id, offset) in infos {
        let bad = |msg: String| Error::weight(&name, format!("{msg} (in {origin})"));
        let numel = ggml_dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let numel = numel.filter(|&n| n <= 1 << 48).ok_or_else(|| bad(format!("implausible dims {ggml_dims:?}")))?;
        let dims: Vec<usize> = ggml_dims.iter().rev().map(|&d| d as usize).collect();
        if offset % alignment as u64 != 0 {
            return Err(bad(format!("data offset {offset} is not a multiple of the alignment {alignment}")));
        }
        let (type_name, dtype) = ggml_type(type_id);
        let start = (data_start as u64)
            .checked_add(offset)
            .filter(|&s| s <= 1 << 56)
            .ok_or_else(|| bad(format!("data offset {offset} is implausible")))?;
        let range = match dtype {
            Some(dtype) => {
                let inner = ggml_dims.first().copied().unwrap_or(1);
                if inner % dtype.block_len() as u64 != 0 {
                    return Err(bad(format!("rows of {inner} values are not whole {dtype} blocks of {}", dtype.block_len())));
                }
                let bytes = numel / dtype.block_len() as u64 * dtype.block_bytes() as u64;
                // (On wasm32 a file past 4 GiB could not be in memory anyway.)
                let end = usize::try_from(start + bytes)
                    .map_err(|_| bad(format!("ends past this platform's address space ({} bytes)", start + bytes)))?;
                data_end = data_end.max(end);
                start as usize..end
            }
            // Its size is unknown (or unneeded); loading it is an error that names its type.
            None => {
                log::debug!("{origin}: tensor `{name}` has ggml type {type_id} ({type_name}), which webformers does not support");
                start as usize..start as usize
            }
        };
        tensors.push(GgufTensor { name, type_id, dtype, dims, range });
    }
    Ok(GgufHeader { version, metadata, tensors, alignment, data_start, data_end })
}

/// A GGUF file, mapped (or held) in memory.
pub struct GgufFile {
    origin: String,
    bytes: SharedBytes,
    header: GgufHeader,
    infos: HashMap<String, TensorInfo>,
    /// Tensors of types no kernel handles: their names and a description of the type.
    unsupported: HashMap<String, String>,
    /// Tensors stored in a format no kernel reads, rewritten at open into one that a kernel
    /// does, exactly (Q5_0 as Q8_0): their bytes (their `infos` describe these, not the file).
    transcoded: HashMap<String, SharedBytes>,
}

impl GgufFile {
    /// Reads a whole file held in memory (or mapped). Truncated or corrupt files are errors.
    pub fn from_bytes(bytes: SharedBytes, origin: &str) -> Result<GgufFile> {
        let all = (*bytes).as_ref();
        let header = parse_header(all, origin)?;
        if header.data_end > all.len() {
            let cut = header
                .tensors
                .iter()
                .find(|t| t.range.end > all.len())
                .map(|t| format!(" (tensor `{}` ends at byte {})", t.name, t.range.end));
            return Err(Error::file(
                origin,
                format!(
                    "truncated GGUF: the tensor data needs {} bytes, the file has {}{}",
                    header.data_end,
                    all.len(),
                    cut.unwrap_or_default()
                ),
            ));
        }
        let mut infos = HashMap::new();
        let mut unsupported = HashMap::new();
        let mut transcoded = HashMap::new();
        for t in &header.tensors {
            match t.dtype {
                Some(dtype) => {
                    infos.insert(t.name.clone(), TensorInfo { dtype, dims: t.dims.clone(), range: t.range.clone() });
                }
                None if t.type_id == GGML_Q5_0 => {
                    let bytes = q5_0_bytes(t, all, origin)?;
                    let q8 = crate::quant::q5_0_to_q8_0(bytes).map_err(|e| Error::weight(&t.name, e))?;
                    infos.insert(t.name.clone(), TensorInfo { dtype: DType::Q8_0, dims: t.dims.clone(), range: 0..q8.len() });
                    transcoded.insert(t.name.clone(), std::sync::Arc::new(q8) as SharedBytes);
                }
                None => {
                    let (name, _) = ggml_type(t.type_id);
                    unsupported.insert(t.name.clone(), format!("ggml type {} ({name})", t.type_id));
                }
            }
        }
        Ok(GgufFile { origin: origin.to_string(), bytes, header, infos, unsupported, transcoded })
    }

    /// Memory-maps a file (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::file(&origin, e))?;
        // SAFETY: a read-only map; see SafetensorsFile::open.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::file(&origin, e))?;
        Self::from_bytes(std::sync::Arc::new(map), &origin)
    }

    pub fn version(&self) -> u32 {
        self.header.version
    }

    pub fn metadata(&self) -> &GgufMetadata {
        &self.header.metadata
    }

    /// Every tensor, in file order (unsupported types included).
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.header.tensors
    }

    pub fn alignment(&self) -> usize {
        self.header.alignment
    }

    pub fn data_start(&self) -> usize {
        self.header.data_start
    }

    /// A tensor's info; an error naming the tensor (and its type, when unsupported).
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        if let Some(t) = self.unsupported.get(name) {
            return Err(Error::weight(name, format!("{t} tensors are not supported (in {})", self.origin)));
        }
        self.infos.get(name).ok_or_else(|| Error::weight(name, format!("not found in {}", self.origin)))
    }

    /// A tensor's bytes, as stored (as transcoded, for the types `transcoded` holds).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.tensor(name)?;
        let bytes = self.transcoded.get(name).unwrap_or(&self.bytes);
        Ok(&(**bytes).as_ref()[info.range.clone()])
    }
}

const GGML_Q5_0: u32 = 6;

/// The bytes of Q5_0 tensor `t` in the file `all`.
fn q5_0_bytes<'a>(t: &GgufTensor, all: &'a [u8], origin: &str) -> Result<&'a [u8]> {
    let bad = |msg: String| Error::weight(&t.name, format!("{msg} (in {origin})"));
    let range = q5_0_range(t).ok_or_else(|| bad(format!("rows of {:?} are not whole q5_0 blocks of 32", t.dims)))?;
    if range.end > all.len() {
        return Err(bad(format!("truncated GGUF: its q5_0 data ends past the file's {} bytes", all.len())));
    }
    Ok(&all[range])
}

/// Where a Q5_0 tensor's bytes are in the file (blocks of 32 values in 22 bytes); None for other
/// types, or rows that are not whole blocks.
pub(crate) fn q5_0_range(t: &GgufTensor) -> Option<std::ops::Range<usize>> {
    if t.type_id != GGML_Q5_0 || t.dims.last().is_none_or(|&inner| inner % 32 != 0) {
        return None;
    }
    let numel = t.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    Some(t.range.start..t.range.start.checked_add(numel / 32 * 22)?)
}

impl WeightSource for GgufFile {
    fn origin(&self) -> &str {
        &self.origin
    }
    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.infos.get(name)
    }
    fn unsupported_dtype(&self, name: &str) -> Option<&str> {
        self.unsupported.get(name).map(String::as_str)
    }
    fn names(&self) -> Vec<&str> {
        self.header.tensors.iter().map(|t| t.name.as_str()).collect()
    }
    fn bytes(&self) -> &SharedBytes {
        &self.bytes
    }
    fn tensor(&self, name: &str, device: &Device) -> Option<Result<Tensor>> {
        let bytes = self.transcoded.get(name)?;
        let info = &self.infos[name];
        Some(Tensor::from_shared(bytes.clone(), info.range.clone(), info.dtype, &info.dims, device))
    }
}
