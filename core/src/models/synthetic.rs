//! Random-weight models with real models' shapes, for benchmarks: decode speed depends on
//! shapes and weight formats, not on what the weights say, so a Llama-3.2-1B-shaped model with
//! random Q4_0 blocks measures what the real one would, without its 700 MB download.

use std::collections::HashMap;
use std::sync::Arc;

use super::DecoderModel;
use super::llama::{Llama, LlamaConfig};
use crate::weights::{SharedBytes, TensorInfo, WeightDType, WeightSource, Weights};
use crate::{DType, Device, Error, Result};

/// All tensors in one buffer, by Hugging Face name.
struct Synthetic {
    bytes: SharedBytes,
    tensors: HashMap<String, TensorInfo>,
}

impl WeightSource for Synthetic {
    fn origin(&self) -> &str {
        "a synthetic model"
    }
    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }
    fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }
    fn bytes(&self) -> &SharedBytes {
        &self.bytes
    }
}

/// Llama 3.2 1B's shapes (16 layers, hidden 2048, 32 heads / 8 KV heads, MLP 8192, vocab 128256,
/// tied embeddings).
pub fn llama_3_2_1b() -> LlamaConfig {
    let config = serde_json::json!({
        "model_type": "llama", "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 131072, "tie_word_embeddings": true,
    });
    // The literal above is well-formed; parsing cannot fail.
    super::parse(&config).unwrap_or_else(|_| unreachable!())
}

/// Fills `out` with plausible blocks of `dtype`: small f16 scales (so activations stay finite
/// through the layers) and random quants.
fn random_blocks(dtype: DType, out: &mut [u8], state: &mut u64) {
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    for b in out.iter_mut() {
        *b = next() as u8;
    }
    let scale = half::f16::from_f32(0.002).to_le_bytes();
    let (block, scale_offsets): (usize, &[usize]) = match dtype {
        DType::Q4_0 | DType::Q8_0 => (dtype.block_bytes(), &[0]),
        DType::Q4_1 => (dtype.block_bytes(), &[0, 2]),
        DType::Q4K | DType::Q5K => (dtype.block_bytes(), &[0, 2]),
        DType::Q6K => (dtype.block_bytes(), &[208]),
        _ => return,
    };
    for chunk in out.chunks_exact_mut(block) {
        for &o in scale_offsets {
            chunk[o..o + 2].copy_from_slice(&scale);
        }
    }
}

/// A Llama with `config`'s shapes, every matrix in `dtype` (f32 norms), on `device`.
pub fn llama(config: LlamaConfig, dtype: DType, device: &Device, seed: u64, precision: WeightDType) -> Result<Box<dyn DecoderModel>> {
    if !dtype.is_quantized() {
        return Err(Error::Unsupported(format!("synthetic models in {dtype}: use a quantized type")));
    }
    let (h, i, v) = (config.hidden_size, config.intermediate_size, config.vocab_size);
    let (d, hq, hkv) = (config.head_dim(), config.num_attention_heads, config.kv_heads());
    let mut shapes: Vec<(String, DType, Vec<usize>)> =
        vec![("model.embed_tokens.weight".into(), dtype, vec![v, h]), ("model.norm.weight".into(), DType::F32, vec![h])];
    for l in 0..config.num_hidden_layers {
        let p = |n: &str| format!("model.layers.{l}.{n}");
        shapes.extend([
            (p("input_layernorm.weight"), DType::F32, vec![h]),
            (p("post_attention_layernorm.weight"), DType::F32, vec![h]),
            (p("self_attn.q_proj.weight"), dtype, vec![hq * d, h]),
            (p("self_attn.k_proj.weight"), dtype, vec![hkv * d, h]),
            (p("self_attn.v_proj.weight"), dtype, vec![hkv * d, h]),
            (p("self_attn.o_proj.weight"), dtype, vec![h, hq * d]),
            (p("mlp.gate_proj.weight"), dtype, vec![i, h]),
            (p("mlp.up_proj.weight"), dtype, vec![i, h]),
            (p("mlp.down_proj.weight"), dtype, vec![h, i]),
        ]);
    }
    let mut tensors = HashMap::new();
    let mut total: usize = 0;
    for (name, t, dims) in &shapes {
        let bytes = t.bytes_for(dims.iter().product())?;
        // Keep every tensor 4-byte aligned, as GPU copies need.
        let start = total.div_ceil(4) * 4;
        tensors.insert(name.clone(), TensorInfo { dtype: *t, dims: dims.clone(), range: start..start + bytes });
        total = start + bytes;
    }
    let mut buffer = vec![0u8; total];
    let mut state = seed | 1;
    for info in tensors.values() {
        let slice = &mut buffer[info.range.clone()];
        if info.dtype == DType::F32 {
            for c in slice.chunks_exact_mut(4) {
                c.copy_from_slice(&1.0f32.to_le_bytes());
            }
        } else {
            random_blocks(info.dtype, slice, &mut state);
        }
    }
    let source = Synthetic { bytes: Arc::new(buffer), tensors };
    // `precision` as a user's dtype: fp16 keeps an f16 KV cache on a GPU with shader-f16.
    let vb = Weights::new(Arc::new(source), device, precision);
    Ok(Box::new(Llama::load(config, &vb, false)?))
}

/// Bytes of weights one decoding step reads: every matrix once (the tied embedding as lm_head),
/// the norms, but only one embedding row.
pub fn weight_bytes_per_token(config: &LlamaConfig, dtype: DType) -> u64 {
    let (h, i, v) = (config.hidden_size, config.intermediate_size, config.vocab_size);
    let (d, hq, hkv) = (config.head_dim(), config.num_attention_heads, config.kv_heads());
    let per_layer = (hq * d * h) * 2 + (hkv * d * h) * 2 + 3 * i * h;
    let matrices = per_layer * config.num_hidden_layers + v * h;
    dtype.bytes_for(matrices).unwrap_or(0) as u64 + (4 * h * (2 * config.num_hidden_layers + 1)) as u64
}
