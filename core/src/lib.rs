//! webformers: Hugging Face models on WebGPU and SIMD CPUs, natively and in WebAssembly.
//!
//! See ARCHITECTURE.md at the repository root for the map of this crate.

// The threaded wasm build (nightly, `+atomics`) waits with `memory.atomic.wait32`.
#![cfg_attr(all(target_arch = "wasm32", target_feature = "atomics"), feature(stdarch_wasm_atomic_wait))]

pub mod cpu;
pub mod device;
pub mod dtype;
mod error;
pub mod gpu;
mod graph;
pub mod layout;
pub mod ops;
pub mod quant;
pub mod reference;
mod tensor;

pub use device::{Device, DeviceChoice};
pub use dtype::DType;
pub use error::{Error, HubErrorKind, Result};
pub use gpu::{GpuContext, GpuOptions};
pub use layout::Layout;
pub use ops::{Activation, BinaryOp, Conv2dParams, GateAct, NormKind, PoolMode, UnaryOp};
pub use tensor::{HostData, Tensor};

pub mod audio;
pub mod chat;
pub mod files;
pub mod generation;
pub mod gguf_tokenizer;
pub mod hub;
pub mod image;
pub mod models;
pub mod nn;
pub mod tasks;
pub mod tokenizer;
pub mod weights;
