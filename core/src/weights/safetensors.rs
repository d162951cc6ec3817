//! safetensors files: an 8-byte header length, a JSON header, then the tensors' bytes. Natively
//! the file is memory-mapped, so CPU tensors point into the map without a copy.

use std::collections::HashMap;

use super::{SharedBytes, TensorInfo, WeightSource};
use crate::{DType, Error, Result};

pub struct SafetensorsFile {
    origin: String,
    bytes: SharedBytes,
    tensors: HashMap<String, TensorInfo>,
    /// Tensors of dtypes no op uses (such as BERT's i64 `position_ids` buffer): an error only if asked for.
    unsupported: HashMap<String, String>,
}

/// What `parse_header` finds: usable tensors (ranges relative to the data section), the others'
/// dtypes, where the data section starts, and its length.
pub struct Header {
    pub tensors: HashMap<String, TensorInfo>,
    pub unsupported: HashMap<String, String>,
    pub data_start: usize,
    pub data_len: usize,
}

fn dtype_of(d: safetensors::Dtype) -> Option<DType> {
    use safetensors::Dtype as D;
    Some(match d {
        D::F32 => DType::F32,
        D::F16 => DType::F16,
        D::BF16 => DType::BF16,
        D::U32 => DType::U32,
        D::I32 => DType::I32,
        _ => return None,
    })
}

/// The longest header a file may claim (the safetensors crate's own limit): a longer claim is
/// refused before any of it is read, also when streaming (`hub::stream`), where honouring it would
/// mean buffering that much.
pub(crate) const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The error for a header length over `MAX_HEADER_BYTES`.
pub(crate) fn implausible_header(header_len: u64, origin: &str) -> Error {
    Error::file(origin, format!("not a valid safetensors file: header length {header_len} is implausible"))
}

/// Parses the header at the start of `prefix` (the whole file, or just its first bytes when
/// streaming).
pub fn parse_header(prefix: &[u8], origin: &str) -> Result<Header> {
    let bad = |msg: String| Error::file(origin, format!("not a valid safetensors file: {msg}"));
    let len_bytes: [u8; 8] =
        prefix.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("shorter than its 8-byte header length".into()))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_BYTES {
        return Err(implausible_header(header_len, origin));
    }
    let header_end = 8 + header_len as usize;
    let header =
        prefix.get(8..header_end).ok_or_else(|| bad(format!("the header needs {header_end} bytes, the file has {}", prefix.len())))?;
    let metadata: safetensors::tensor::Metadata =
        serde_json::from_slice(header).map_err(|e| beyond_address_space(header).unwrap_or_else(|| bad(format!("header: {e}"))))?;
    let mut tensors = HashMap::new();
    let mut unsupported = HashMap::new();
    for (name, info) in metadata.tensors() {
        let Some(dtype) = dtype_of(info.dtype) else {
            unsupported.insert(name, format!("{:?}", info.dtype));
            continue;
        };
        let (start, end) = info.data_offsets;
        let numel: usize = info.shape.iter().product();
        if end < start || dtype.bytes_for(numel).ok() != Some(end - start) {
            return Err(Error::weight(&name, format!("{:?} of {dtype} does not fit its byte range {start}..{end}", info.shape)));
        }
        tensors.insert(name, TensorInfo { dtype, dims: info.shape.clone(), range: start..end });
    }
    Ok(Header { tensors, unsupported, data_start: header_end, data_len: metadata.data_len() })
}

/// Where a header failed to parse because a tensor is past what this build can address (in
/// wasm32: ending past 4 GiB, or over 512 MiB, since the safetensors crate counts a tensor's size
/// in bits), that tensor as an `OutOfMemory` error: "expected usize" or "overflow" say nothing of why.
fn beyond_address_space(header: &[u8]) -> Option<Error> {
    let value: serde_json::Value = serde_json::from_slice(header).ok()?;
    let bits = usize::BITS;
    value.as_object()?.iter().find_map(|(name, info)| {
        let offsets = info.get("data_offsets")?.as_array()?;
        let (start, end) = (offsets.first()?.as_u64()?, offsets.get(1)?.as_u64()?);
        let needed = end.saturating_sub(start);
        let why = if usize::try_from(end).is_err() {
            format!("it ends at byte {end} of the weights, past what a {bits}-bit build (WebAssembly: 4 GiB) can address")
        } else if usize::try_from(needed.saturating_mul(8)).is_err() {
            format!("a {bits}-bit build reads at most {} bytes per tensor (the safetensors crate sizes tensors in bits)", usize::MAX / 8)
        } else {
            return None;
        };
        Some(Error::OutOfMemory { what: format!("weight `{name}`"), needed, why })
    })
}

/// The index of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The shard files a `model.safetensors.index.json` names (its `weight_map` values), in order.
pub fn shard_files(index: &[u8], origin: &str) -> Result<Vec<String>> {
    let bad = |msg: &str| Error::file(origin, format!("not a valid safetensors index: {msg}"));
    let value: serde_json::Value = serde_json::from_slice(index).map_err(|e| bad(&e.to_string()))?;
    let map = value.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| bad("it has no `weight_map` object"))?;
    let mut files = Vec::new();
    for file in map.values() {
        let file = file.as_str().ok_or_else(|| bad("a `weight_map` value is not a file name"))?;
        // Names only: an index must not point outside the model.
        if !crate::files::is_file_in_model(file) {
            return Err(bad(&format!("shard name `{file}` is not a plain file name")));
        }
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(bad("its `weight_map` is empty"));
    }
    Ok(files)
}

impl SafetensorsFile {
    /// Reads a whole file held in memory (or mapped). Truncated or corrupt files are errors.
    pub fn from_bytes(bytes: SharedBytes, origin: &str) -> Result<SafetensorsFile> {
        let all = (*bytes).as_ref();
        let Header { mut tensors, unsupported, data_start, data_len } = parse_header(all, origin)?;
        if data_start + data_len != all.len() {
            return Err(Error::file(
                origin,
                format!("truncated or padded: the header describes {} bytes, the file has {}", data_start + data_len, all.len()),
            ));
        }
        for info in tensors.values_mut() {
            info.range = info.range.start + data_start..info.range.end + data_start;
        }
        Ok(SafetensorsFile { origin: origin.to_string(), bytes, tensors, unsupported })
    }

    /// Memory-maps a file (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<SafetensorsFile> {
        let origin = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::file(&origin, e))?;
        // SAFETY: the map is read-only; a file changed underneath would give wrong weights, not UB
        // in our code (the same contract every mmap-based loader has).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::file(&origin, e))?;
        Self::from_bytes(std::sync::Arc::new(map), &origin)
    }
}

impl WeightSource for SafetensorsFile {
    fn origin(&self) -> &str {
        &self.origin
    }
    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }
    fn unsupported_dtype(&self, name: &str) -> Option<&str> {
        self.unsupported.get(name).map(String::as_str)
    }
    fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }
    fn bytes(&self) -> &SharedBytes {
        &self.bytes
    }
}
