//! `Tensor`: a node of the lazy graph plus a view of its storage.
//!
//! Creating a tensor from host data uploads it at once; every op only records a node. Reading a
//! tensor (`to_vec_f32().await`) runs whatever is pending behind it, on the CPU or in one GPU
//! submission, and copies the values out.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::{Device, Storage};
use crate::dtype::DType;
use crate::layout::Layout;
use crate::ops::Op;
use crate::{Error, Result, cpu, graph};

#[derive(Clone)]
pub struct Tensor {
    pub(crate) node: Arc<Node>,
    pub(crate) layout: Layout,
}

pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) dtype: DType,
    /// Elements in the node's storage (its layout is contiguous over them when produced by an op).
    pub(crate) numel: usize,
    pub(crate) device: Device,
    /// Storage that ops write in place (`write_rows`): a KV cache.
    pub(crate) cache: bool,
    state: Mutex<NodeState>,
}

pub(crate) enum NodeState {
    Pending(Op),
    /// Taken by a running realization; ops never form cycles, so nothing else sees this.
    Running,
    Ready(Storage),
    /// An intermediate nobody can reach any more; its storage went back to the pool.
    Released,
}

fn next_node_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Node {
    pub(crate) fn state(&self) -> MutexGuard<'_, NodeState> {
        // A poisoned lock only means another thread panicked mid-update; the state enum is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn storage(&self) -> Option<Storage> {
        match &*self.state() {
            NodeState::Ready(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Host values read back from a tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

impl Tensor {
    pub(crate) fn from_parts(node: Arc<Node>, layout: Layout) -> Tensor {
        Tensor { node, layout }
    }

    pub(crate) fn new_pending(op: Op, dtype: DType, dims: &[usize], device: Device) -> Tensor {
        let layout = Layout::contiguous(dims);
        let node =
            Node { id: next_node_id(), dtype, numel: layout.numel(), device, cache: false, state: Mutex::new(NodeState::Pending(op)) };
        Tensor { node: Arc::new(node), layout }
    }

    /// A pending op whose result is a cache tensor's own storage, updated (`write_rows`): later
    /// writes may chain on it, so that they run after it (a copy into a cache, then an append).
    pub(crate) fn new_pending_cache(op: Op, dtype: DType, dims: &[usize], device: Device) -> Tensor {
        let layout = Layout::contiguous(dims);
        let node =
            Node { id: next_node_id(), dtype, numel: layout.numel(), device, cache: true, state: Mutex::new(NodeState::Pending(op)) };
        Tensor { node: Arc::new(node), layout }
    }

    pub(crate) fn new_ready(storage: Storage, dtype: DType, dims: &[usize], device: Device) -> Tensor {
        let layout = Layout::contiguous(dims);
        let node =
            Node { id: next_node_id(), dtype, numel: layout.numel(), device, cache: false, state: Mutex::new(NodeState::Ready(storage)) };
        Tensor { node: Arc::new(node), layout }
    }

    /// A zeroed tensor that `write_rows` updates in place, kept on the device across forward
    /// passes (a KV cache). f32 or f16.
    pub fn cache(dtype: DType, dims: &[usize], device: &Device) -> Result<Tensor> {
        if !matches!(dtype, DType::F32 | DType::F16) {
            return Err(Error::dtype("cache", format!("{dtype} caches")));
        }
        let bytes = dtype.bytes_for(dims.iter().product())?;
        let storage = match device {
            Device::Cpu => Storage::Cpu(cpu::CpuStorage::writable(bytes)),
            Device::Gpu(gpu) => Storage::Gpu(gpu.zeroed(bytes as u64, "cache")?),
        };
        let layout = Layout::contiguous(dims);
        let node = Node {
            id: next_node_id(),
            dtype,
            numel: layout.numel(),
            device: device.clone(),
            cache: true,
            state: Mutex::new(NodeState::Ready(storage)),
        };
        Ok(Tensor { node: Arc::new(node), layout })
    }

    pub(crate) fn is_cache(&self) -> bool {
        self.node.cache
    }

    /// Uploads raw little-endian bytes of `dtype` (quantized blocks included) as a tensor of `dims`.
    pub fn from_bytes(bytes: &[u8], dtype: DType, dims: &[usize], device: &Device) -> Result<Tensor> {
        let numel: usize = dims.iter().product();
        let expected = dtype.bytes_for(numel)?;
        if bytes.len() != expected {
            return Err(Error::shape("from_bytes", format!("{dims:?} of {dtype} needs {expected} bytes, got {}", bytes.len())));
        }
        let storage = match device {
            Device::Cpu => Storage::Cpu(cpu::CpuStorage::from_bytes(bytes)),
            // Matrices may exceed one binding: they are split by rows (see GpuContext::upload_rows).
            Device::Gpu(gpu) if dims.len() == 2 => Storage::Gpu(gpu.upload_rows(bytes, dims[0], "tensor")?),
            Device::Gpu(gpu) => Storage::Gpu(gpu.upload(bytes, "tensor")?),
        };
        Ok(Tensor::new_ready(storage, dtype, dims, device.clone()))
    }

    /// A tensor over a range of shared bytes: zero-copy on the CPU (when aligned), one upload on
    /// the GPU.
    pub fn from_shared(
        bytes: crate::weights::SharedBytes,
        range: std::ops::Range<usize>,
        dtype: DType,
        dims: &[usize],
        device: &Device,
    ) -> Result<Tensor> {
        let numel: usize = dims.iter().product();
        let slice =
            (*bytes).as_ref().get(range.clone()).ok_or_else(|| Error::Input(format!("byte range {range:?} is outside the data")))?;
        if slice.len() != dtype.bytes_for(numel)? {
            return Err(Error::shape(
                "from_shared",
                format!("{dims:?} of {dtype} needs {} bytes, got {}", dtype.bytes_for(numel)?, slice.len()),
            ));
        }
        match device {
            Device::Cpu => Ok(Tensor::new_ready(Storage::Cpu(cpu::CpuStorage::from_shared(bytes, range)), dtype, dims, Device::Cpu)),
            Device::Gpu(_) => Tensor::from_bytes(slice, dtype, dims, device),
        }
    }

    /// Weights already on the device stacked along dim 0 into a new tensor, at load time (a fused
    /// q/k/v projection of weights streamed to the device). It runs at once rather than as a graph
    /// op, so every part must be materialized (as loaded weights are), dense, and of one dtype.
    pub(crate) fn concat_loaded(parts: &[Tensor]) -> Result<Tensor> {
        const OP: &str = "concat_loaded";
        let first = parts.first().ok_or_else(|| Error::shape(OP, "no parts"))?;
        let mut rows = 0;
        let mut storages = Vec::new();
        for p in parts {
            if p.dtype() != first.dtype() || p.rank() == 0 || p.dims()[1..] != first.dims()[1..] || !p.device().same(first.device()) {
                return Err(Error::shape(
                    OP,
                    format!("{:?} ({}) does not stack on {:?} ({})", p.dims(), p.dtype(), first.dims(), first.dtype()),
                ));
            }
            let storage = match p.node.storage() {
                Some(s) if p.is_contiguous() && p.layout().offset() == 0 => s,
                _ => return Err(Error::Input(format!("{OP}: a part is not a loaded weight"))),
            };
            rows += p.dims()[0];
            storages.push((storage, p.dtype().bytes_for(p.numel())?));
        }
        let mut dims = first.dims().to_vec();
        dims[0] = rows;
        let storage = match first.device() {
            Device::Cpu => {
                let mut bytes = Vec::with_capacity(storages.iter().map(|(_, n)| n).sum());
                for (s, n) in &storages {
                    bytes.extend_from_slice(&s.cpu().bytes()[..*n]);
                }
                Storage::Cpu(cpu::CpuStorage::from_bytes(&bytes))
            }
            Device::Gpu(gpu) => {
                let parts: Vec<(&crate::gpu::GpuStorage, u64)> = storages.iter().map(|(s, n)| (s.gpu(), *n as u64)).collect();
                Storage::Gpu(gpu.concat(&parts)?)
            }
        };
        Ok(Tensor::new_ready(storage, first.dtype(), &dims, first.device().clone()))
    }

    pub fn from_f32(values: &[f32], dims: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::from_bytes(bytemuck::cast_slice(values), DType::F32, dims, device)
    }

    pub fn from_u32(values: &[u32], dims: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::from_bytes(bytemuck::cast_slice(values), DType::U32, dims, device)
    }

    pub fn from_f16(values: &[half::f16], dims: &[usize], device: &Device) -> Result<Tensor> {
        Tensor::from_bytes(bytemuck::cast_slice(values), DType::F16, dims, device)
    }

    pub fn dims(&self) -> &[usize] {
        self.layout.dims()
    }
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }
    pub fn dtype(&self) -> DType {
        self.node.dtype
    }
    pub fn device(&self) -> &Device {
        &self.node.device
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The size of dim `d`, counting from the end when negative.
    pub fn dim(&self, d: isize) -> Result<usize> {
        let r = self.rank() as isize;
        let i = if d < 0 { r + d } else { d };
        if i < 0 || i >= r {
            return Err(Error::shape("dim", format!("dim {d} of a rank-{r} tensor")));
        }
        Ok(self.dims()[i as usize])
    }

    fn view(&self, layout: Layout) -> Tensor {
        Tensor { node: self.node.clone(), layout }
    }

    /// A new shape over the same values: a free view where the strides allow, else a copy.
    pub fn reshape(&self, dims: &[usize]) -> Result<Tensor> {
        match self.layout.reshape(dims) {
            Ok(layout) => Ok(self.view(layout)),
            Err(_) if self.numel() == dims.iter().product::<usize>() => self.contiguous()?.reshape(dims),
            Err(e) => Err(e),
        }
    }
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        Ok(self.view(self.layout.permute(perm)?))
    }
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        Ok(self.view(self.layout.transpose(a, b)?))
    }
    /// The transpose of the last two dims (`w.t()` turns an HF `[out, in]` weight into `[in, out]`).
    pub fn t(&self) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return Err(Error::shape("t", format!("needs rank 2 or more, got {:?}", self.dims())));
        }
        self.transpose(r - 2, r - 1)
    }
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        Ok(self.view(self.layout.narrow(dim, start, len)?))
    }
    pub fn broadcast_to(&self, dims: &[usize]) -> Result<Tensor> {
        Ok(self.view(self.layout.broadcast_to(dims)?))
    }

    /// Runs everything pending behind these tensors (one GPU submission for all of them).
    pub async fn realize(tensors: &[&Tensor]) -> Result<()> {
        graph::realize(tensors).await
    }

    /// Reads several tensors with one realization: values in row-major order of each view.
    pub async fn read_all(tensors: &[&Tensor]) -> Result<Vec<HostData>> {
        graph::read(tensors).await
    }

    pub async fn to_vec_f32(&self) -> Result<Vec<f32>> {
        let t = if self.dtype() == DType::F32 { self.clone() } else { self.to_dtype(DType::F32)? };
        match Tensor::read_all(&[&t]).await?.pop() {
            Some(HostData::F32(v)) => Ok(v),
            _ => Err(Error::dtype("to_vec_f32", "read back a non-f32 tensor")),
        }
    }

    pub async fn to_vec_u32(&self) -> Result<Vec<u32>> {
        match Tensor::read_all(&[self]).await?.pop() {
            Some(HostData::U32(v)) => Ok(v),
            _ => Err(Error::dtype("to_vec_u32", format!("tensor is {}", self.dtype()))),
        }
    }

    /// Blocking read for native callers (tests, the CLI).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_vec_u32_blocking(&self) -> Result<Vec<u32>> {
        pollster::block_on(self.to_vec_u32())
    }

    /// Blocking read for native callers (tests, the CLI). Not available in wasm, where nothing may block.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_vec_f32_blocking(&self) -> Result<Vec<f32>> {
        pollster::block_on(self.to_vec_f32())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {}, {:?})", self.dims(), self.dtype(), self.device())
    }
}
