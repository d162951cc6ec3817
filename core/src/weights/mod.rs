//! Weights by their Hugging Face names. A `WeightSource` (a safetensors or GGUF file, several
//! shards, or tensors streamed to the device from the Hub) says what tensors exist and gives their
//! bytes or the tensors themselves; `Weights` is what model code uses: a
//! prefix builder (`vb.pp("encoder.layer.0")`) whose `get` checks the shape, names the tensor in
//! every error, converts dtypes for the device, and uploads.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::{DType, Device, Error, Result, Tensor};

pub mod gguf;
mod resident;
pub mod safetensors;
mod writer;

pub use resident::{DeviceWeights, Shards};
pub(crate) use writer::TensorWriter;

/// Bytes that may be shared without a copy (a memory map, a downloaded file).
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub dtype: DType,
    pub dims: Vec<usize>,
    /// Where the tensor's bytes are in `WeightSource::bytes()`.
    pub range: Range<usize>,
}

/// `Send + Sync` natively. In the browser GPU handles are neither (and there is one thread), so
/// sources holding tensors (`DeviceWeights`) could not be weight sources there otherwise.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

pub trait WeightSource: MaybeSendSync {
    /// Where the weights came from, for error messages.
    fn origin(&self) -> &str;
    fn info(&self, name: &str) -> Option<&TensorInfo>;
    fn names(&self) -> Vec<&str>;
    /// The dtype name of a tensor the file has but no op can use.
    fn unsupported_dtype(&self, _name: &str) -> Option<&str> {
        None
    }
    /// The bytes the `TensorInfo` ranges point into.
    fn bytes(&self) -> &SharedBytes;
    /// The tensor already made on `device` by the source itself (weights streamed to the device as
    /// they arrived, or one shard of several), in its stored dtype; `Weights` then converts it
    /// there. None: take the bytes from `bytes()`.
    fn tensor(&self, _name: &str, _device: &Device) -> Option<Result<Tensor>> {
        None
    }
}

/// How weights are stored on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightDType {
    /// As in the file (bf16 becomes f32, since no backend computes in bf16).
    #[default]
    Auto,
    F32,
    /// Matmul and embedding weights in f16 (half the memory and bandwidth); norms stay f32.
    F16,
}

#[derive(Clone)]
pub struct Weights {
    source: Arc<dyn WeightSource>,
    device: Device,
    prefix: String,
    dtype: WeightDType,
    /// Tensors already uploaded, so a weight used twice (tied embeddings) is stored once.
    cache: Arc<std::sync::Mutex<HashMap<(String, bool), Tensor>>>,
}

impl Weights {
    pub fn new(source: Arc<dyn WeightSource>, device: &Device, dtype: WeightDType) -> Weights {
        Weights { source, device: device.clone(), prefix: String::new(), dtype, cache: Default::default() }
    }

    /// The same weights under `prefix.` (like `vb.pp("attention")`).
    pub fn pp(&self, prefix: impl std::fmt::Display) -> Weights {
        let mut w = self.clone();
        w.prefix = self.full_name(&prefix.to_string());
        w
    }

    /// The same weights without any prefix (for names already made full).
    pub fn pp_root(&self) -> Weights {
        let mut w = self.clone();
        w.prefix = String::new();
        w
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.source.info(&self.full_name(name)).is_some()
    }

    fn info(&self, name: &str, dims: &[usize]) -> Result<(String, TensorInfo)> {
        let full = self.full_name(name);
        if let Some(dtype) = self.source.unsupported_dtype(&full) {
            return Err(Error::weight(&full, format!("{dtype} tensors are not supported")));
        }
        let info = self.source.info(&full).ok_or_else(|| {
            let hint =
                self.source.names().into_iter().find(|n| n.ends_with(name)).map(|n| format!(" (the file has `{n}`)")).unwrap_or_default();
            Error::weight(&full, format!("not found in {}{hint}", self.source.origin()))
        })?;
        if info.dims != dims {
            return Err(Error::weight(&full, format!("expected shape {dims:?}, {} has {:?}", self.source.origin(), info.dims)));
        }
        Ok((full, info.clone()))
    }

    /// The stored dims of `name`, when the weights have it.
    pub fn dims(&self, name: &str) -> Option<Vec<usize>> {
        self.source.info(&self.full_name(name)).map(|i| i.dims.clone())
    }

    /// A matmul or embedding weight: kept in f32 or f16 as the dtype policy says.
    pub fn get(&self, name: &str, dims: &[usize]) -> Result<Tensor> {
        self.load(name, dims, false)
    }

    /// A parameter that ops need in f32 (norm weights, biases).
    pub fn get_f32(&self, name: &str, dims: &[usize]) -> Result<Tensor> {
        self.load(name, dims, true)
    }

    pub fn get_opt_f32(&self, name: &str, dims: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) { self.get_f32(name, dims).map(Some) } else { Ok(None) }
    }

    fn target_dtype(&self, stored: DType, force_f32: bool) -> DType {
        match (stored, force_f32, self.dtype) {
            (DType::F32 | DType::F16 | DType::BF16, true, _) => DType::F32,
            (DType::F32 | DType::F16 | DType::BF16, false, WeightDType::F16) => DType::F16,
            (DType::F32 | DType::F16 | DType::BF16, false, WeightDType::F32) => DType::F32,
            (DType::BF16, false, WeightDType::Auto) => DType::F32,
            (other, _, _) => other,
        }
    }

    fn load(&self, name: &str, dims: &[usize], force_f32: bool) -> Result<Tensor> {
        let (full, info) = self.info(name, dims)?;
        let key = (full.clone(), force_f32);
        if let Some(t) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(t.clone());
        }
        let target = self.target_dtype(info.dtype, force_f32);
        if let Some(made) = self.source.tensor(&full, &self.device) {
            let tensor = made.and_then(|t| t.to_dtype(target)).map_err(|e| Error::weight(&full, e))?;
            self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, tensor.clone());
            return Ok(tensor);
        }
        let bytes = &(**self.source.bytes()).as_ref()[info.range.clone()];
        let expected = info.dtype.bytes_for(dims.iter().product()).map_err(|e| Error::weight(&full, e))?;
        if bytes.len() != expected {
            return Err(Error::weight(&full, format!("has {} bytes for {dims:?} of {}, expected {expected}", bytes.len(), info.dtype)));
        }
        let tensor = if target == info.dtype {
            Tensor::from_shared(self.source.bytes().clone(), info.range.clone(), info.dtype, dims, &self.device)
        } else {
            convert(bytes, info.dtype, target, dims, &self.device)
        }
        .map_err(|e| match e {
            // Keep the kind, so callers can fall back to another device; name the tensor.
            Error::OverLimit { what, needed, limit } => Error::OverLimit { what: format!("weight `{full}` ({what})"), needed, limit },
            e => Error::weight(&full, e),
        })?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, tensor.clone());
        Ok(tensor)
    }

    /// Several weights stacked along dim 0 into one tensor (a fused q/k/v projection), in the
    /// dtype the first would get.
    pub fn get_concat(&self, names: &[&str], dims: &[&[usize]], force_f32: bool) -> Result<Tensor> {
        let mut host = Vec::new();
        let mut made = Vec::new();
        let mut rows = 0;
        let mut cols: Option<&[usize]> = None;
        let mut target = None;
        // Each part's bytes on the host (None: the source made that part on the device).
        let mut host_parts: Vec<(Option<Vec<u8>>, String, &[usize], DType)> = Vec::new();
        for (name, d) in names.iter().zip(dims) {
            let (full, info) = self.info(name, d)?;
            if cols.is_some_and(|c| c != &d[1..]) {
                return Err(Error::weight(full, format!("shape {d:?} does not stack with {:?}", cols)));
            }
            cols = Some(&d[1..]);
            rows += d[0];
            let t = *target.get_or_insert(self.target_dtype(info.dtype, force_f32));
            // Parts the source already made on the device are stacked there.
            if let Some(part) = self.source.tensor(&full, &self.device) {
                made.push(part.map_err(|e| Error::weight(&full, e))?);
                host_parts.push((None, full, d, info.dtype));
                continue;
            }
            let bytes = &(**self.source.bytes()).as_ref()[info.range.clone()];
            let part = to_host(bytes, info.dtype, t).map_err(|e| Error::weight(&full, e))?;
            host.extend_from_slice(&part);
            host_parts.push((Some(part), full, d, t));
        }
        let target = target.unwrap_or(DType::F32);
        if !made.is_empty() {
            // Some parts came from the source's device tensors (a stream, a shard, a transcoded
            // GGUF type): the others join them there, in order.
            let mut made = made.into_iter();
            let parts = host_parts
                .into_iter()
                .map(|(bytes, full, d, dtype)| match bytes {
                    None => Ok(made.next().expect("one made tensor per device part")),
                    Some(b) => Tensor::from_bytes(&b, dtype, d, &self.device).map_err(|e| Error::weight(full, e)),
                })
                .collect::<Result<Vec<_>>>()?;
            return Tensor::concat_loaded(&parts).map_err(|e| Error::weight(names.join(", "), e))?.to_dtype(target);
        }
        let mut out_dims = vec![rows];
        out_dims.extend_from_slice(cols.unwrap_or(&[]));
        Tensor::from_bytes(&host, target, &out_dims, &self.device)
    }
}

/// Converts float weights on the host (at load time only).
fn to_host(bytes: &[u8], from: DType, to: DType) -> Result<Vec<u8>> {
    use half::{bf16, f16};
    let values: Vec<f32> = match from {
        DType::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        DType::F16 => bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        DType::BF16 => bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        other if other == to => return Ok(bytes.to_vec()),
        other => return Err(Error::Unsupported(format!("converting {other} weights to {to}"))),
    };
    Ok(match to {
        DType::F32 => bytemuck::cast_slice(&values).to_vec(),
        DType::F16 => values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
        other => return Err(Error::Unsupported(format!("converting weights to {other}"))),
    })
}

fn convert(bytes: &[u8], from: DType, to: DType, dims: &[usize], device: &Device) -> Result<Tensor> {
    Tensor::from_bytes(&to_host(bytes, from, to)?, to, dims, device)
}
