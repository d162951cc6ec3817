//! Where a model's files come from: a folder on disk (weights memory-mapped), or files already in
//! memory (fetched by the browser package). Models and tasks only see `ModelFiles`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::weights::safetensors::{self, SafetensorsFile};
use crate::weights::{Shards, SharedBytes, WeightSource};
use crate::{Device, Error, Result};

/// Whether `name` is a file inside a model (a repository or folder), whatever says it (a task, an
/// index's shard list, a Hub server): relative, `/`-separated, without `.` or `..` segments,
/// backslashes, drive letters or other colons, or control characters, so that joined to the
/// model's folder or a cache's snapshot folder it stays inside it on every platform.
pub fn is_file_in_model(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1024
        && !name.starts_with('/')
        && !name.contains(['\\', ':'])
        && !name.chars().any(char::is_control)
        && name.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
}

pub trait ModelFiles {
    /// The model's name or path, for messages.
    fn name(&self) -> &str;
    /// A file's bytes, or None when the model has no such file.
    fn read(&self, file: &str) -> Result<Option<SharedBytes>>;

    /// A file that must exist.
    fn require(&self, file: &str) -> Result<SharedBytes> {
        self.read(file)?.ok_or_else(|| Error::file(format!("{}/{file}", self.name()), "missing: this file is required"))
    }

    /// A JSON file, parsed, or None when absent.
    fn json(&self, file: &str) -> Result<Option<serde_json::Value>> {
        match self.read(file)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice((*bytes).as_ref())
                .map(Some)
                .map_err(|e| Error::file(format!("{}/{file}", self.name()), format!("invalid JSON: {e}"))),
        }
    }

    /// tokenizer.json, already parsed by the source (a Hub load parses it while the weights
    /// stream); None means: parse the file.
    fn parsed_tokenizer(&self) -> Option<crate::tokenizer::ParsedTokenizer> {
        None
    }

    /// Whether the model has `file`; sources that hold a file elsewhere answer without reading it.
    fn has(&self, file: &str) -> Result<bool> {
        Ok(self.read(file)?.is_some())
    }

    /// One safetensors file of the weights, for `device`.
    fn weight_file(&self, file: &str, _device: &Device) -> Result<Arc<dyn WeightSource>> {
        let bytes = self.require(file)?;
        Ok(Arc::new(SafetensorsFile::from_bytes(bytes, &format!("{}/{file}", self.name()))?))
    }

    /// The weights for `device`: model.safetensors, or the shards its index names. Sources that
    /// stream weights (the Hub) hand back tensors already on the device.
    fn weights(&self, device: &Device) -> Result<Arc<dyn WeightSource>> {
        if !self.has("model.safetensors")?
            && let Some(index) = self.read(safetensors::INDEX_FILE)?
        {
            let origin = format!("{}/{}", self.name(), safetensors::INDEX_FILE);
            let mut parts: Vec<Arc<dyn WeightSource>> = Vec::new();
            for shard in safetensors::shard_files((*index).as_ref(), &origin)? {
                parts.push(self.weight_file(&shard, device)?);
            }
            return Ok(Arc::new(Shards::new(origin, parts)?));
        }
        self.weight_file("model.safetensors", device)
    }
}

/// A model folder, as Hugging Face lays it out.
#[cfg(not(target_arch = "wasm32"))]
pub struct DirFiles {
    dir: std::path::PathBuf,
    name: String,
}

#[cfg(not(target_arch = "wasm32"))]
impl DirFiles {
    pub fn open(dir: impl Into<std::path::PathBuf>) -> Result<DirFiles> {
        let dir = dir.into();
        let name = dir.display().to_string();
        if !dir.is_dir() {
            let why = if dir.exists() { "is not a folder" } else { "does not exist" };
            return Err(Error::file(&name, format!("{why} (expected a model folder with config.json)")));
        }
        if !dir.join("config.json").is_file() {
            return Err(Error::file(&name, "is not a model folder: it has no config.json"));
        }
        Ok(DirFiles { dir, name })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ModelFiles for DirFiles {
    fn name(&self) -> &str {
        &self.name
    }
    fn read(&self, file: &str) -> Result<Option<SharedBytes>> {
        let path = self.dir.join(file);
        if !path.is_file() {
            return Ok(None);
        }
        let shown = path.display().to_string();
        let f = std::fs::File::open(&path).map_err(|e| Error::file(&shown, e))?;
        let len = f.metadata().map_err(|e| Error::file(&shown, e))?.len();
        // Large files (weights) are mapped, not read: CPU tensors then point into the map.
        if len > 1 << 20 {
            // SAFETY: read-only map; see SafetensorsFile::open.
            let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::file(&shown, e))?;
            return Ok(Some(Arc::new(map)));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::file(&shown, e))?;
        Ok(Some(Arc::new(bytes)))
    }
}

/// Files already in memory, by name.
pub struct MemoryFiles {
    name: String,
    files: HashMap<String, SharedBytes>,
}

impl MemoryFiles {
    pub fn new(name: impl Into<String>) -> MemoryFiles {
        MemoryFiles { name: name.into(), files: HashMap::new() }
    }
    pub fn insert(&mut self, file: impl Into<String>, bytes: Vec<u8>) {
        self.files.insert(file.into(), Arc::new(bytes));
    }
}

impl ModelFiles for MemoryFiles {
    fn name(&self) -> &str {
        &self.name
    }
    fn read(&self, file: &str) -> Result<Option<SharedBytes>> {
        Ok(self.files.get(file).cloned())
    }
}
