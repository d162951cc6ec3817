//! Element types. Plain types have one element per "block"; ggml's quantized types pack a block of
//! 32 or 256 values into a fixed number of bytes. Byte sizes are computed from blocks everywhere,
//! so quantized weights fit the same storage and layout code as plain ones.

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F16,
    /// Only at load time: converted to f32 (or f16) on upload, since WGSL has no bf16.
    BF16,
    U32,
    I32,
    Q8_0,
    Q4_0,
    Q4_1,
    Q4K,
    Q5K,
    Q6K,
}

/// ggml's quantized block sizes: (values per block, bytes per block).
pub const Q8_0_BLOCK: (usize, usize) = (32, 2 + 32);
pub const Q4_0_BLOCK: (usize, usize) = (32, 2 + 16);
pub const Q4_1_BLOCK: (usize, usize) = (32, 2 + 2 + 16);
pub const Q4K_BLOCK: (usize, usize) = (256, 2 + 2 + 12 + 128);
pub const Q5K_BLOCK: (usize, usize) = (256, 2 + 2 + 12 + 32 + 128);
pub const Q6K_BLOCK: (usize, usize) = (256, 128 + 64 + 16 + 2);

const _: () = assert!(Q8_0_BLOCK.1 == 34 && Q4_0_BLOCK.1 == 18 && Q4_1_BLOCK.1 == 20);
const _: () = assert!(Q4K_BLOCK.1 == 144 && Q5K_BLOCK.1 == 176 && Q6K_BLOCK.1 == 210);

impl DType {
    /// Values per block (1 for plain types).
    pub fn block_len(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 | DType::U32 | DType::I32 => 1,
            DType::Q8_0 => Q8_0_BLOCK.0,
            DType::Q4_0 => Q4_0_BLOCK.0,
            DType::Q4_1 => Q4_1_BLOCK.0,
            DType::Q4K => Q4K_BLOCK.0,
            DType::Q5K => Q5K_BLOCK.0,
            DType::Q6K => Q6K_BLOCK.0,
        }
    }

    /// Bytes per block (the element size for plain types).
    pub fn block_bytes(self) -> usize {
        match self {
            DType::F32 | DType::U32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Q8_0 => Q8_0_BLOCK.1,
            DType::Q4_0 => Q4_0_BLOCK.1,
            DType::Q4_1 => Q4_1_BLOCK.1,
            DType::Q4K => Q4K_BLOCK.1,
            DType::Q5K => Q5K_BLOCK.1,
            DType::Q6K => Q6K_BLOCK.1,
        }
    }

    pub fn is_quantized(self) -> bool {
        self.block_len() > 1
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    /// Bytes that `n` values take; an error if `n` is not a whole number of blocks.
    pub fn bytes_for(self, n: usize) -> Result<usize> {
        let block = self.block_len();
        if n % block != 0 {
            return Err(Error::dtype("storage", format!("{n} values are not a whole number of {self:?} blocks of {block}")));
        }
        Ok(n / block * self.block_bytes())
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::U32 => "u32",
            DType::I32 => "i32",
            DType::Q8_0 => "q8_0",
            DType::Q4_0 => "q4_0",
            DType::Q4_1 => "q4_1",
            DType::Q4K => "q4_k",
            DType::Q5K => "q5_k",
            DType::Q6K => "q6_k",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
