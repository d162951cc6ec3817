//! Where tensors live. A `Device` is cheap to clone; GPU storage holds pooled wgpu buffers and CPU
//! storage holds host bytes (owned, or mapped from a weights file without a copy).

use std::sync::Arc;

use crate::cpu::CpuStorage;
use crate::gpu::{GpuContext, GpuStorage};

#[derive(Clone)]
pub enum Device {
    Cpu,
    Gpu(Arc<GpuContext>),
}

impl Device {
    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    pub fn same(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Gpu(a), Device::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// A short human description ("cpu (avx2+fma, 2 threads)", "gpu (llvmpipe, vulkan)").
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => format!("cpu ({})", crate::cpu::describe()),
            Device::Gpu(gpu) => format!("gpu ({})", gpu.describe()),
        }
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

#[derive(Clone)]
pub(crate) enum Storage {
    Cpu(CpuStorage),
    Gpu(GpuStorage),
}

impl Storage {
    pub(crate) fn cpu(&self) -> &CpuStorage {
        match self {
            Storage::Cpu(s) => s,
            Storage::Gpu(_) => unreachable!("the graph runner keeps every node of a run on one device"),
        }
    }
    pub(crate) fn gpu(&self) -> &GpuStorage {
        match self {
            Storage::Gpu(s) => s,
            Storage::Cpu(_) => unreachable!("the graph runner keeps every node of a run on one device"),
        }
    }
}
