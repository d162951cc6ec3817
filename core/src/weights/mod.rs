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
pub(crate) use writer::{TensorWriter, check_weights_fit};

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

/// How weights are stored on the device: transformers.js's `dtype` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightDType {
    /// As in the file (bf16 becomes f32, since no backend computes in bf16).
    #[default]
    Auto,
    F32,
    /// Matmul and embedding weights in f16 (half the memory and bandwidth); norms stay f32.
    F16,
    /// Linear layers' float weights quantized at load to Q8_0 (see `quantized_target`); the
    /// rest as stored.
    Q8,
    /// Linear layers' float weights quantized at load to 4 bits (Q4_1: a scale and a minimum per
    /// 32 values, chosen for least squared error by `quant::q4_1_searched`: all-MiniLM-L6-v2's
    /// lowest cosine to fp32 is 0.935 with it, 0.90 with round-to-nearest; Q4_0 and Q4_K were no
    /// better; llama.cpp's Q5_0 where rows are not whole Q4_K blocks reaches 0.965 at 5.2 bits a
    /// weight, but Q5_0 has no kernel here: BENCHMARKS.md, "Precision"); the rest as stored.
    Q4,
    /// Q4 linear weights, every other matmul and embedding weight in f16.
    Q4F16,
}

impl WeightDType {
    /// transformers.js's name (`'q8'`, `'fp16'`, ...) or the CLI's short one (`'f16'`).
    pub fn parse(name: &str) -> Result<WeightDType> {
        Ok(match name {
            "" | "auto" => WeightDType::Auto,
            "fp32" | "f32" => WeightDType::F32,
            "fp16" | "f16" => WeightDType::F16,
            "q8" | "int8" | "uint8" => WeightDType::Q8,
            "q4" | "bnb4" => WeightDType::Q4,
            "q4f16" => WeightDType::Q4F16,
            other => {
                return Err(Error::Input(format!("unknown dtype `{other}`; use auto, fp32, fp16, q8, q4 or q4f16")));
            }
        })
    }

    /// The plain float type a weight that is not quantized gets (None: as stored).
    fn float(self) -> Option<DType> {
        match self {
            WeightDType::F32 => Some(DType::F32),
            WeightDType::F16 | WeightDType::Q4F16 => Some(DType::F16),
            WeightDType::Auto | WeightDType::Q8 | WeightDType::Q4 => None,
        }
    }

    /// The quantized type of a linear layer's float weight [N, K] at this dtype, or None where it
    /// stays float. The written policy (llama.cpp keeps one too):
    /// - only weights that are the right-hand side of matmuls (`Weights::get_linear`) are
    ///   quantized: embedding tables, norms, biases, convolution kernels and position tables are
    ///   read by ops that need floats, and are small beside the projections;
    /// - rows must be whole 32-value blocks (K % 32 == 0);
    /// - a projection to fewer than 64 outputs (a classifier's labels, question answering's
    ///   start/end) stays float: it is tiny, and its outputs are the answer.
    pub fn quantized_target(self, dims: &[usize]) -> Option<DType> {
        let [n, k] = dims else { return None };
        if k % 32 != 0 || *n < 64 {
            return None;
        }
        match self {
            WeightDType::Q8 => Some(DType::Q8_0),
            WeightDType::Q4 | WeightDType::Q4F16 => Some(DType::Q4_1),
            _ => None,
        }
    }
}

/// The dtype of each part of a model: one for all, or, as transformers.js's per-module object
/// (`{encoder_model: 'fp32', decoder_model_merged: 'q4'}`), one for an encoder-decoder model's
/// encoder (tensors under an `encoder` path segment) and one for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Precision {
    pub main: WeightDType,
    pub encoder: Option<WeightDType>,
}

impl From<WeightDType> for Precision {
    fn from(main: WeightDType) -> Precision {
        Precision { main, encoder: None }
    }
}

impl Precision {
    /// transformers.js's module names: the encoder's, and those of the decoder or the whole model.
    pub const ENCODER_MODULES: &[&str] = &["encoder_model", "vision_encoder", "audio_encoder"];
    pub const MAIN_MODULES: &[&str] = &["model", "decoder_model_merged", "decoder_model", "decoder_with_past_model", "embed_tokens"];

    /// A per-module object's entries; unknown module names are an error that names them.
    pub fn from_modules<'a>(modules: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Precision> {
        let mut precision = Precision::default();
        let mut main: Option<WeightDType> = None;
        for (module, name) in modules {
            let dtype = WeightDType::parse(name)?;
            if Self::ENCODER_MODULES.contains(&module) {
                precision.encoder = Some(dtype);
            } else if Self::MAIN_MODULES.contains(&module) {
                // transformers.js names the decoder several ways; they must agree.
                if main.is_some_and(|m| m != dtype) {
                    return Err(Error::Input(format!("dtype `{module}`: {name} differs from another decoder module's dtype")));
                }
                main = Some(dtype);
            } else {
                let known: Vec<&str> = Self::ENCODER_MODULES.iter().chain(Self::MAIN_MODULES).copied().collect();
                return Err(Error::Input(format!("dtype names an unknown module `{module}` (known: {})", known.join(", "))));
            }
        }
        precision.main = main.unwrap_or_default();
        Ok(precision)
    }

    /// `q8`, or per module: `encoder_model=fp32,decoder_model_merged=q4` (the CLI's `--dtype`;
    /// the npm package writes transformers.js's object this way).
    pub fn parse(spec: &str) -> Result<Precision> {
        if !spec.contains('=') {
            return WeightDType::parse(spec.trim()).map(Precision::from);
        }
        let entries = spec
            .split(',')
            .map(|entry| {
                entry
                    .split_once('=')
                    .map(|(m, d)| (m.trim(), d.trim()))
                    .ok_or_else(|| Error::Input(format!("dtype entry `{entry}`: write module=dtype, e.g. encoder_model=fp32")))
            })
            .collect::<Result<Vec<_>>>()?;
        Precision::from_modules(entries)
    }

    /// The dtype of the tensor `name`.
    pub fn of(&self, name: &str) -> WeightDType {
        match self.encoder {
            Some(e) if name.split('.').any(|seg| seg == "encoder") => e,
            _ => self.main,
        }
    }
}

#[derive(Clone)]
pub struct Weights {
    source: Arc<dyn WeightSource>,
    device: Device,
    prefix: String,
    dtype: Precision,
    /// Tensors already uploaded, so a weight used twice (tied embeddings) is stored once.
    cache: Arc<std::sync::Mutex<HashMap<(String, Role), Tensor>>>,
}

impl Weights {
    pub fn new(source: Arc<dyn WeightSource>, device: &Device, dtype: impl Into<Precision>) -> Weights {
        Weights { source, device: device.clone(), prefix: String::new(), dtype: dtype.into(), cache: Default::default() }
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

    /// The dtype of a decoder's KV cache: f16 where the user asked for f16 activations (`fp16`,
    /// `q4f16`: transformers.js's fp16 exports keep their past keys and values in f16 too) and
    /// the GPU stores f16 natively (shader-f16), halving the cache and what attention reads per
    /// token; else f32.
    pub fn kv_cache_dtype(&self) -> DType {
        let half = matches!(self.dtype.main, WeightDType::F16 | WeightDType::Q4F16);
        if half && self.device.has_shader_f16() { DType::F16 } else { DType::F32 }
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
        self.load(name, dims, Role::Float)
    }

    /// A linear layer's weight [out, in], used only as the right-hand side of matmuls: quantized
    /// at load when the dtype asks for it (`WeightDType::quantized_target`), else as `get`.
    pub fn get_linear(&self, name: &str, dims: &[usize]) -> Result<Tensor> {
        self.load(name, dims, Role::Linear)
    }

    /// A linear weight stored transposed, [in, out] (GPT-2's Conv1D): as `get`, or, when the
    /// dtype quantizes it, quantized as [out, in] (whole blocks along `in`) and given back as
    /// the [in, out] view of that, which the quantized matmul reads.
    pub fn get_linear_transposed(&self, name: &str, dims: &[usize]) -> Result<Tensor> {
        let (full, info) = self.info(name, dims)?;
        let &[k, n] = dims else { return Err(Error::weight(full, "a transposed linear weight must be 2-D")) };
        let target = self.target_dtype(&full, info.dtype, &[n, k], Role::Linear);
        if !target.is_quantized() || target == info.dtype {
            return self.get(name, dims);
        }
        let key = (full.clone(), Role::Linear);
        if let Some(t) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(t.clone());
        }
        let float = match self.source.tensor(&full, &self.device) {
            Some(made) => made,
            None => Tensor::from_shared(self.source.bytes().clone(), info.range.clone(), info.dtype, dims, &self.device),
        };
        let tensor = float
            .and_then(|t| t.t()?.contiguous())
            .and_then(|t| converted_on_device(t, target))
            .and_then(|t| t.t())
            .map_err(|e| Error::weight(&full, e))?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, tensor.clone());
        Ok(tensor)
    }

    /// A parameter that ops need in f32 (norm weights, biases).
    pub fn get_f32(&self, name: &str, dims: &[usize]) -> Result<Tensor> {
        self.load(name, dims, Role::F32)
    }

    pub fn get_opt_f32(&self, name: &str, dims: &[usize]) -> Result<Option<Tensor>> {
        if self.contains(name) { self.get_f32(name, dims).map(Some) } else { Ok(None) }
    }

    /// The dtype a stored tensor gets: quantized and integer tensors stay as stored.
    fn target_dtype(&self, full: &str, stored: DType, dims: &[usize], role: Role) -> DType {
        if !matches!(stored, DType::F32 | DType::F16 | DType::BF16) {
            return stored;
        }
        if role == Role::F32 {
            return DType::F32;
        }
        let dtype = self.dtype.of(full);
        if role == Role::Linear
            && let Some(quantized) = dtype.quantized_target(dims)
        {
            return quantized;
        }
        match (dtype.float(), stored) {
            (Some(float), _) => float,
            (None, DType::BF16) => DType::F32,
            (None, stored) => stored,
        }
    }

    fn load(&self, name: &str, dims: &[usize], role: Role) -> Result<Tensor> {
        let (full, info) = self.info(name, dims)?;
        let key = (full.clone(), role);
        if let Some(t) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(t.clone());
        }
        let target = self.target_dtype(&full, info.dtype, dims, role);
        if let Some(made) = self.source.tensor(&full, &self.device) {
            let tensor = made.and_then(|t| converted_on_device(t, target)).map_err(|e| Error::weight(&full, e))?;
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
        .map_err(|e| Error::in_weight(&full, e))?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, tensor.clone());
        Ok(tensor)
    }

    /// Several weights stacked along dim 0 into one tensor (a fused q/k/v projection): linear
    /// weights (quantized as the stacked shape allows) or, with `force_f32`, f32 parameters.
    pub fn get_concat(&self, names: &[&str], dims: &[&[usize]], force_f32: bool) -> Result<Tensor> {
        let role = if force_f32 { Role::F32 } else { Role::Linear };
        let mut host = Vec::new();
        let mut made = Vec::new();
        let mut rows = 0;
        let mut cols: Option<&[usize]> = None;
        let mut infos = Vec::new();
        for (name, d) in names.iter().zip(dims) {
            let (full, info) = self.info(name, d)?;
            if cols.is_some_and(|c| c != &d[1..]) {
                return Err(Error::weight(full, format!("shape {d:?} does not stack with {:?}", cols)));
            }
            cols = Some(&d[1..]);
            rows += d[0];
            infos.push((full, info));
        }
        let mut out_dims = vec![rows];
        out_dims.extend_from_slice(cols.unwrap_or(&[]));
        let Some((first, first_info)) = infos.first() else {
            return Err(Error::Input("a fused weight of no parts".into()));
        };
        let target = self.target_dtype(first, first_info.dtype, &out_dims, role);
        // Parts are stacked in the float type the target is made from.
        let part_dtype = if target.is_quantized() && first_info.dtype != target { DType::F32 } else { target };
        // Each part's bytes on the host (None: the source made that part on the device).
        let mut host_parts: Vec<(Option<Vec<u8>>, String, &[usize], DType)> = Vec::new();
        for ((full, info), d) in infos.into_iter().zip(dims) {
            // Parts the source already made on the device are stacked there.
            if let Some(part) = self.source.tensor(&full, &self.device) {
                made.push(part.map_err(|e| Error::weight(&full, e))?);
                host_parts.push((None, full, d, info.dtype));
                continue;
            }
            let bytes = &(**self.source.bytes()).as_ref()[info.range.clone()];
            let part = to_host(bytes, info.dtype, part_dtype).map_err(|e| Error::weight(&full, e))?;
            host.extend_from_slice(&part);
            host_parts.push((Some(part), full, d, part_dtype));
        }
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
            let stacked = Tensor::concat_loaded(&parts).map_err(|e| Error::weight(names.join(", "), e))?;
            return converted_on_device(stacked, target).map_err(|e| Error::weight(names.join(", "), e));
        }
        convert(&host, part_dtype, target, &out_dims, &self.device).map_err(|e| Error::weight(names.join(", "), e))
    }
}

/// What a weight is for, which decides its dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    /// Read by ops that need f32 (norms, biases).
    F32,
    /// A matmul or embedding weight: f32 or f16.
    Float,
    /// Only the right-hand side of matmuls: may be quantized.
    Linear,
}

/// A tensor the source made on the device, in the target dtype. Quantizing on the CPU happens
/// now, so the float original can be freed as the load goes on; on the GPU the conversion runs
/// with the first pass (a load cannot wait for the GPU: in the browser that is asynchronous).
fn converted_on_device(tensor: Tensor, target: DType) -> Result<Tensor> {
    let converted = tensor.to_dtype(target)?;
    if target.is_quantized() && matches!(converted.device(), Device::Cpu) {
        // CPU realization completes on its first poll.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let pending = [&converted];
        let mut realize = std::pin::pin!(Tensor::realize(&pending));
        match realize.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(done) => done?,
            std::task::Poll::Pending => return Err(Error::Unsupported("a CPU realization that waits (engine bug)".into())),
        }
    }
    Ok(converted)
}

/// Converts float weights on the host (at load time only), quantizing where `to` is a block type.
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
        quantized if quantized.is_quantized() => crate::quant::quantize_at_load(quantized, &values)?,
        other => return Err(Error::Unsupported(format!("converting weights to {other}"))),
    })
}

fn convert(bytes: &[u8], from: DType, to: DType, dims: &[usize], device: &Device) -> Result<Tensor> {
    let tensor = Tensor::from_bytes(&to_host(bytes, from, to)?, to, dims, device)?;
    if to.is_quantized() && from != to {
        mark_quantized_at_load(&tensor);
    }
    Ok(tensor)
}

/// Weights quantized from floats here take the CPU's int8 path by default (cpu/int8.rs); the
/// CPU copy kernel marks those it quantizes itself.
fn mark_quantized_at_load(tensor: &Tensor) {
    if let Some(crate::device::Storage::Cpu(storage)) = tensor.node.storage() {
        storage.mark_quantized_at_load();
    }
}
