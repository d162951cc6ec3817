//! Weight sources that hand `Weights` whole tensors instead of bytes: `DeviceWeights`, filled
//! tensor by tensor while a file streams in (so no copy of the file is ever held), and `Shards`,
//! the tensors of several files (`model-00001-of-00002.safetensors`, ...) under one name space.

use std::collections::HashMap;
use std::sync::Arc;

use super::{SharedBytes, TensorInfo, WeightSource};
use crate::{Device, Error, Result, Tensor};

fn no_bytes() -> SharedBytes {
    Arc::new(Vec::<u8>::new())
}

/// Tensors already on one device, by name.
pub struct DeviceWeights {
    origin: String,
    device: Device,
    /// Dtype and dims of each tensor; the ranges are empty (there are no bytes to point into).
    infos: HashMap<String, TensorInfo>,
    tensors: HashMap<String, Tensor>,
    unsupported: HashMap<String, String>,
    /// Leading bytes of the file (its header), for formats whose header also holds metadata (GGUF).
    header: Vec<u8>,
    /// Bytes of tensors a loader also reads on the host (GGUF's `rope_freqs.weight`).
    host: HashMap<String, Vec<u8>>,
    /// The most host bytes a streamed tensor was staged in (the largest tensor that spanned reads).
    staging_peak: usize,
    empty: SharedBytes,
}

impl DeviceWeights {
    pub fn new(origin: impl Into<String>, device: &Device) -> DeviceWeights {
        DeviceWeights {
            origin: origin.into(),
            device: device.clone(),
            infos: HashMap::new(),
            tensors: HashMap::new(),
            unsupported: HashMap::new(),
            header: Vec::new(),
            host: HashMap::new(),
            staging_peak: 0,
            empty: no_bytes(),
        }
    }

    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        let name = name.into();
        self.infos.insert(name.clone(), TensorInfo { dtype: tensor.dtype(), dims: tensor.dims().to_vec(), range: 0..0 });
        self.tensors.insert(name, tensor);
    }

    /// A tensor the file has in a dtype no op uses: an error only if a model asks for it.
    pub fn insert_unsupported(&mut self, name: impl Into<String>, dtype: impl Into<String>) {
        self.unsupported.insert(name.into(), dtype.into());
    }

    pub fn set_header(&mut self, header: Vec<u8>) {
        self.header = header;
    }

    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Keeps a tensor's bytes on the host too (small tensors a loader reads as numbers).
    pub fn set_host_bytes(&mut self, name: &str, bytes: Vec<u8>) {
        self.host.insert(name.to_string(), bytes);
    }

    /// A tensor's bytes kept on the host by `set_host_bytes`.
    pub fn host_bytes(&self, name: &str) -> Option<&[u8]> {
        self.host.get(name).map(Vec::as_slice)
    }

    pub fn set_staging_peak(&mut self, bytes: usize) {
        self.staging_peak = bytes;
    }

    /// The most host memory one tensor took while streaming (0 when none spanned two reads).
    pub fn staging_peak(&self) -> usize {
        self.staging_peak
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

impl WeightSource for DeviceWeights {
    fn origin(&self) -> &str {
        &self.origin
    }
    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.infos.get(name)
    }
    fn names(&self) -> Vec<&str> {
        self.infos.keys().map(String::as_str).collect()
    }
    fn unsupported_dtype(&self, name: &str) -> Option<&str> {
        self.unsupported.get(name).map(String::as_str)
    }
    fn bytes(&self) -> &SharedBytes {
        &self.empty
    }
    fn tensor(&self, name: &str, device: &Device) -> Option<Result<Tensor>> {
        let tensor = self.tensors.get(name)?;
        if !device.same(&self.device) {
            return Some(Err(Error::DeviceMismatch("weights streamed to another device")));
        }
        Some(Ok(tensor.clone()))
    }
}

/// Several weight sources seen as one (a sharded checkpoint).
pub struct Shards {
    origin: String,
    parts: Vec<Arc<dyn WeightSource>>,
    /// Tensor name → index into `parts`.
    owner: HashMap<String, usize>,
    empty: SharedBytes,
}

impl Shards {
    /// Fails when two parts hold a tensor of the same name.
    pub fn new(origin: impl Into<String>, parts: Vec<Arc<dyn WeightSource>>) -> Result<Shards> {
        let origin = origin.into();
        let mut owner = HashMap::new();
        for (i, part) in parts.iter().enumerate() {
            for name in part.names() {
                if let Some(j) = owner.insert(name.to_string(), i) {
                    return Err(Error::weight(name, format!("is in both {} and {}", parts[j].origin(), part.origin())));
                }
            }
        }
        Ok(Shards { origin, parts, owner, empty: no_bytes() })
    }
}

impl WeightSource for Shards {
    fn origin(&self) -> &str {
        &self.origin
    }
    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.parts[*self.owner.get(name)?].info(name)
    }
    fn names(&self) -> Vec<&str> {
        self.owner.keys().map(String::as_str).collect()
    }
    fn unsupported_dtype(&self, name: &str) -> Option<&str> {
        self.parts.iter().find_map(|p| p.unsupported_dtype(name))
    }
    fn bytes(&self) -> &SharedBytes {
        &self.empty
    }
    fn tensor(&self, name: &str, device: &Device) -> Option<Result<Tensor>> {
        let part = &self.parts[*self.owner.get(name)?];
        if let Some(made) = part.tensor(name, device) {
            return Some(made);
        }
        // A shard held as bytes (a mapped file): zero-copy on the CPU, one upload on the GPU.
        let info = part.info(name)?;
        Some(Tensor::from_shared(part.bytes().clone(), info.range.clone(), info.dtype, &info.dims, device))
    }
}
