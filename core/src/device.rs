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

    /// A GPU whose shaders can store f16 values natively (shader-f16): where an f16 KV cache is
    /// written and attended in place.
    pub fn has_shader_f16(&self) -> bool {
        matches!(self, Device::Gpu(gpu) if gpu.features().f16)
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

/// Which backend to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The GPU when an adapter exists, else the CPU.
    #[default]
    Auto,
    Gpu,
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<DeviceChoice> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "gpu" | "webgpu" => Ok(DeviceChoice::Gpu),
            "cpu" | "wasm" => Ok(DeviceChoice::Cpu),
            other => Err(crate::Error::Input(format!("unknown device `{other}`; use auto, gpu or cpu"))),
        }
    }
}

impl Device {
    /// Opens the device `choice` asks for. `Gpu` fails without an adapter; `Auto` falls back to
    /// the CPU and says why in the returned note.
    pub async fn select(choice: DeviceChoice, options: crate::GpuOptions) -> crate::Result<(Device, Option<String>)> {
        match choice {
            DeviceChoice::Cpu => Ok((Device::Cpu, None)),
            DeviceChoice::Gpu => Ok((Device::Gpu(GpuContext::new(options).await?), None)),
            // A software adapter runs WGSL on the CPU about 30x slower than the CPU backend (MiniLM,
            // one sentence: 2.75 s on lavapipe against 0.09 s), so `auto` never takes one.
            DeviceChoice::Auto => match GpuContext::new(options).await {
                Ok(gpu) if gpu.is_software() => Ok((
                    Device::Cpu,
                    Some(format!(
                        "the only GPU adapter, {}, is a software one, slower than the CPU backend (--device gpu uses it anyway)",
                        gpu.adapter_name()
                    )),
                )),
                Ok(gpu) => Ok((Device::Gpu(gpu), None)),
                Err(e) => Ok((Device::Cpu, Some(e.to_string()))),
            },
        }
    }
}

impl Device {
    /// Where a load that failed with `e` on this device goes next: under `auto`, a GPU that
    /// failed for its own fault ([`crate::Error::is_device_fault`]: out of memory, lost, a limit
    /// exceeded) gives way to the CPU, with a note saying why for the caller to log once. `None`:
    /// the error stands (another device would fail the same way, or the caller chose the device).
    pub fn fallback(&self, choice: DeviceChoice, e: &crate::Error) -> Option<(Device, String)> {
        match self {
            Device::Gpu(gpu) if choice == DeviceChoice::Auto && e.is_device_fault() => {
                Some((Device::Cpu, format!("the model could not load on the GPU ({}): {e}", gpu.adapter_name())))
            }
            _ => None,
        }
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
