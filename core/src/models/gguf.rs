//! Models from GGUF files: the architecture's hyperparameters come from the metadata, the
//! tensors are renamed to their Hugging Face names so the model files load them unchanged, and
//! the tokenizer and chat template come from `tokenizer.*` metadata.

use std::collections::HashMap;
use std::sync::Arc;

use super::gemma3::{Gemma3, Gemma3Config};
use super::llama::{Llama, LlamaConfig};
use super::{DecoderModel, ModelConfig};
use crate::chat::ChatTemplate;
use crate::gguf_tokenizer::{GgufVocab, build_tokenizer};
use crate::tokenizer::Tokenizer;
use crate::weights::gguf::{GgufFile, GgufMetadata, parse_header};
use crate::weights::{DeviceWeights, Precision, SharedBytes, TensorInfo, WeightSource, Weights};
use crate::{Device, Error, Result, Tensor};

/// Architectures whose GGUF tensors map onto `Llama`.
pub const GGUF_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "mistral", "gemma3", "phi3", "smollm3"];

/// Tensors the loader reads as numbers on the host (f32 rotary factors): a streamed load keeps
/// their bytes (`DeviceWeights::host_bytes`).
pub const HOST_TENSORS: &[&str] = &["rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight"];

/// The f32 values of `HOST_TENSORS` a file has, by name.
type HostTensors = HashMap<&'static str, Vec<f64>>;

fn host_tensors(bytes: impl Fn(&str) -> Option<Vec<u8>>) -> HostTensors {
    HOST_TENSORS
        .iter()
        .filter_map(|&name| {
            let values = bytes(name)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect();
            Some((name, values))
        })
        .collect()
}

/// A source that answers to Hugging Face names for tensors stored under other names.
struct Renamed {
    inner: Arc<dyn WeightSource>,
    /// Hugging Face name -> name in the file.
    names: HashMap<String, String>,
}

impl WeightSource for Renamed {
    fn origin(&self) -> &str {
        self.inner.origin()
    }
    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.names.get(name).and_then(|n| self.inner.info(n))
    }
    fn unsupported_dtype(&self, name: &str) -> Option<&str> {
        self.names.get(name).and_then(|n| self.inner.unsupported_dtype(n))
    }
    fn names(&self) -> Vec<&str> {
        self.names.keys().map(String::as_str).collect()
    }
    fn bytes(&self) -> &SharedBytes {
        self.inner.bytes()
    }
    fn tensor(&self, name: &str, device: &Device) -> Option<Result<Tensor>> {
        self.inner.tensor(self.names.get(name)?, device)
    }
}

/// llama.cpp's tensor names for one block, and their Hugging Face names.
const BLOCK_NAMES: &[(&str, &str)] = &[
    ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_q.bias", "self_attn.q_proj.bias"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_v.bias", "self_attn.v_proj.bias"),
    ("attn_qkv.weight", "self_attn.qkv_proj.weight"),
    ("attn_q_norm.weight", "self_attn.q_norm.weight"),
    ("attn_k_norm.weight", "self_attn.k_norm.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_up.weight", "mlp.gate_up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
];

/// Gemma 3's block names where they differ from Llama's (four norms a block).
const GEMMA3_BLOCK_NAMES: &[(&str, &str)] = &[
    ("ffn_norm.weight", "pre_feedforward_layernorm.weight"),
    ("post_attention_norm.weight", "post_attention_layernorm.weight"),
    ("post_ffw_norm.weight", "post_feedforward_layernorm.weight"),
];

fn hf_names(file: &dyn WeightSource, arch: &str, layers: usize) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for (gguf, hf) in [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ] {
        names.insert(hf.to_string(), gguf.to_string());
    }
    for l in 0..layers {
        for (gguf, hf) in BLOCK_NAMES {
            names.insert(format!("model.layers.{l}.{hf}"), format!("blk.{l}.{gguf}"));
        }
        if arch == "gemma3" {
            names.retain(|hf, _| hf != &format!("model.layers.{l}.post_attention_layernorm.weight"));
            for (gguf, hf) in GEMMA3_BLOCK_NAMES {
                names.insert(format!("model.layers.{l}.{hf}"), format!("blk.{l}.{gguf}"));
            }
        }
    }
    names.retain(|_, gguf| file.info(gguf).is_some() || file.unsupported_dtype(gguf).is_some());
    names
}

/// The transformers model_type of a GGUF architecture, as this engine's registry knows it.
fn hf_model_type(arch: &str) -> &str {
    match arch {
        "qwen2" | "qwen3" | "phi3" | "smollm3" => arch,
        "gemma3" => "gemma3_text",
        _ => "llama",
    }
}

fn llama_config(meta: &GgufMetadata, arch: &str, vocab_size: usize, tied: bool, host: &HostTensors) -> Result<LlamaConfig> {
    let key = |k: &str| format!("{arch}.{k}");
    let heads = meta.get_usize(&key("attention.head_count"))?;
    let hidden = meta.get_usize(&key("embedding_length"))?;
    let head_dim =
        if meta.contains(&key("attention.key_length")) { meta.get_usize(&key("attention.key_length"))? } else { hidden / heads.max(1) };
    let mut config = serde_json::json!({
        // SmolLM3: no key names its NoPE layers; llama.cpp fixes every 4th, the config's default.
        "model_type": hf_model_type(arch),
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": meta.get_usize(&key("feed_forward_length"))?,
        "num_hidden_layers": meta.get_usize(&key("block_count"))?,
        "num_attention_heads": heads,
        "num_key_value_heads": if meta.contains(&key("attention.head_count_kv")) { meta.get_usize(&key("attention.head_count_kv"))? } else { heads },
        "head_dim": head_dim,
        "rms_norm_eps": meta.get_f32(&key("attention.layer_norm_rms_epsilon"))? as f64,
        "rope_theta": if meta.contains(&key("rope.freq_base")) { meta.get_f32(&key("rope.freq_base"))? as f64 } else { 10000.0 },
        "max_position_embeddings": meta.get_usize(&key("context_length"))?,
        "tie_word_embeddings": tied,
        "rope_scaling": match meta.get_str(&key("rope.scaling.type")).ok() {
            Some("linear") => serde_json::json!({"rope_type": "linear", "factor": meta.get_f32(&key("rope.scaling.factor"))? as f64}),
            Some("none") | None => serde_json::Value::Null,
            Some(other) => return Err(Error::Unsupported(format!("GGUF rope scaling `{other}`"))),
        },
    });
    if arch == "phi3" {
        phi3_config(meta, host, head_dim, &mut config)?;
    }
    super::parse(&config)
}

/// Phi-3's additions as llama.cpp's converter writes them: the rotated dims, a sliding window (0:
/// none, Phi-4), and LongRoPE's factors as two f32 tensors beside its pretraining context and
/// attention factor.
fn phi3_config(meta: &GgufMetadata, host: &HostTensors, head_dim: usize, config: &mut serde_json::Value) -> Result<()> {
    let key = |k: &str| format!("phi3.{k}");
    if meta.contains(&key("rope.dimension_count")) {
        config["partial_rotary_factor"] = (meta.get_usize(&key("rope.dimension_count"))? as f64 / head_dim as f64).into();
    }
    if meta.contains(&key("attention.sliding_window")) {
        let w = meta.get_usize(&key("attention.sliding_window"))?;
        config["sliding_window"] = if w > 0 { w.into() } else { serde_json::Value::Null };
    }
    match (host.get("rope_factors_short.weight"), host.get("rope_factors_long.weight")) {
        (Some(short), Some(long)) => {
            let original = meta.get_usize(&key("rope.scaling.original_context_length"))?;
            let mut scaling = serde_json::json!({"rope_type": "longrope", "short_factor": short, "long_factor": long, "original_max_position_embeddings": original});
            if meta.contains(&key("rope.scaling.attn_factor")) {
                scaling["attention_factor"] = (meta.get_f32(&key("rope.scaling.attn_factor"))? as f64).into();
            }
            config["rope_scaling"] = scaling;
            config["original_max_position_embeddings"] = original.into();
        }
        (None, None) => {}
        _ => return Err(Error::Config("a Phi-3 GGUF with only one of rope_factors_short and rope_factors_long".into())),
    }
    Ok(())
}

/// Gemma 3's hyperparameters as transformers reads them from a GGUF: what the file lacks takes
/// Gemma3TextConfig's defaults (a global layer every 6th, local RoPE base 10000), and queries are
/// scaled by the head size, as llama.cpp does.
fn gemma3_config(meta: &GgufMetadata, vocab_size: usize) -> Result<Gemma3Config> {
    let key = |k: &str| format!("gemma3.{k}");
    let heads = meta.get_usize(&key("attention.head_count"))?;
    let hidden = meta.get_usize(&key("embedding_length"))?;
    let head_dim =
        if meta.contains(&key("attention.key_length")) { meta.get_usize(&key("attention.key_length"))? } else { hidden / heads.max(1) };
    let optional_f32 =
        |k: &str| -> Result<Option<f64>> { if meta.contains(&key(k)) { Ok(Some(meta.get_f32(&key(k))? as f64)) } else { Ok(None) } };
    let config = serde_json::json!({
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": meta.get_usize(&key("feed_forward_length"))?,
        "num_hidden_layers": meta.get_usize(&key("block_count"))?,
        "num_attention_heads": heads,
        "num_key_value_heads": if meta.contains(&key("attention.head_count_kv")) { meta.get_usize(&key("attention.head_count_kv"))? } else { heads },
        "head_dim": head_dim,
        "rms_norm_eps": meta.get_f32(&key("attention.layer_norm_rms_epsilon"))? as f64,
        "rope_theta": optional_f32("rope.freq_base")?,
        "rope_local_base_freq": optional_f32("rope.freq_base_swa")?,
        "sliding_window": if meta.contains(&key("attention.sliding_window")) { Some(meta.get_usize(&key("attention.sliding_window"))?) } else { None },
        "max_position_embeddings": meta.get_usize(&key("context_length"))?,
        "query_pre_attn_scalar": head_dim,
        "final_logit_softcapping": optional_f32("final_logit_softcapping")?,
        "tie_word_embeddings": true,
    });
    let mut config: Gemma3Config = super::parse(&config)?;
    // llama.cpp's converter stores Gemma's norm weights with the 1 added.
    config.norms_include_one = true;
    Ok(config)
}

/// The decoder, tokenizer, chat template and end-of-sequence ids of a GGUF language model.
pub struct GgufParts {
    pub model: Box<dyn DecoderModel>,
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
    pub eos_ids: Vec<u32>,
    /// What the model's `AutoModel` view (`Pipeline::auto_model`) needs of a config.json, which a
    /// GGUF has none of: its name (the file), model_type and vocabulary.
    pub config: ModelConfig,
}

/// From a whole GGUF file (mapped, or in memory).
pub fn load(file: GgufFile, device: &Device, dtype: impl Into<Precision>) -> Result<GgufParts> {
    let file = Arc::new(file);
    let host = host_tensors(|name| file.tensor_bytes(name).ok().map(<[u8]>::to_vec));
    load_from(file.metadata(), file.clone(), &host, device, dtype.into())
}

/// From a GGUF whose tensors were streamed onto `device` as they arrived
/// (`HubModel::gguf_weights`): the metadata comes from the header it kept.
pub fn load_streamed(weights: DeviceWeights, device: &Device, dtype: impl Into<Precision>) -> Result<GgufParts> {
    let header = parse_header(weights.header(), weights.origin())?;
    let host = host_tensors(|name| weights.host_bytes(name).map(<[u8]>::to_vec));
    load_from(&header.metadata, Arc::new(weights), &host, device, dtype.into())
}

/// From a GGUF's metadata and its tensors (`source`, by their names in the file); `host`: the
/// values of the `HOST_TENSORS` the file has.
fn load_from(meta: &GgufMetadata, file: Arc<dyn WeightSource>, host: &HostTensors, device: &Device, dtype: Precision) -> Result<GgufParts> {
    let arch = meta.get_str("general.architecture")?.to_string();
    if !GGUF_ARCHITECTURES.contains(&arch.as_str()) {
        return Err(Error::Unsupported(format!(
            "GGUF architecture `{arch}` (from {}); supported: {}",
            file.origin(),
            GGUF_ARCHITECTURES.join(", ")
        )));
    }
    let tokens = meta.get_str_array("tokenizer.ggml.tokens")?.to_vec();
    let id = |k: &str| -> Option<u32> { meta.get_u32(k).ok() };
    let vocab = GgufVocab {
        model: meta.get_str("tokenizer.ggml.model")?.to_string(),
        pre: meta.get_str("tokenizer.ggml.pre").ok().map(str::to_string),
        token_types: meta.get_i32_array("tokenizer.ggml.token_type").unwrap_or_default(),
        merges: meta.get_str_array("tokenizer.ggml.merges").map(|m| m.to_vec()).unwrap_or_default(),
        bos_id: id("tokenizer.ggml.bos_token_id"),
        add_bos: meta.get_bool("tokenizer.ggml.add_bos_token").unwrap_or(false),
        arch: arch.clone(),
        tokens: tokens.clone(),
    };
    let tokenizer = build_tokenizer(&vocab)?;
    check_block_count(meta, &arch, file.as_ref())?;
    let tied = file.info("output.weight").is_none();
    let model: Box<dyn DecoderModel> = if arch == "gemma3" {
        let config = gemma3_config(meta, tokens.len())?;
        let names = hf_names(file.as_ref(), &arch, config.num_hidden_layers);
        let vb = Weights::new(Arc::new(Renamed { inner: file.clone(), names }), device, dtype);
        Box::new(Gemma3::load(config, &vb)?)
    } else {
        Box::new(load_llama(meta, &arch, file.clone(), tokens.len(), tied, host, device, dtype)?)
    };
    let token_text = |id: Option<u32>| id.and_then(|i| tokens.get(i as usize).cloned()).unwrap_or_default();
    let template = meta
        .get_str("tokenizer.chat_template")
        .ok()
        .map(|t| ChatTemplate::new(t, token_text(id("tokenizer.ggml.bos_token_id")), token_text(id("tokenizer.ggml.eos_token_id"))));
    let eos_ids = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]
        .iter()
        .filter_map(|k| id(k))
        .collect();
    let config = ModelConfig::from_json(
        file.origin(),
        serde_json::json!({ "model_type": hf_model_type(&arch), "vocab_size": tokens.len(), "gguf_architecture": arch }),
    )?;
    Ok(GgufParts { model, tokenizer, template, eos_ids, config })
}

/// A header may claim any number of layers; the names and configuration made per layer would
/// then cost time and memory before the first missing tensor shows (a 7 KB file claiming 12801
/// layers took 0.24 s: found by fuzzing). The file must hold tensors for every layer it claims.
fn check_block_count(meta: &GgufMetadata, arch: &str, file: &dyn WeightSource) -> Result<()> {
    let claimed = meta.get_usize(&format!("{arch}.block_count"))?;
    let present = file
        .names()
        .iter()
        .filter_map(|n| n.strip_prefix("blk.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |last| last + 1);
    if claimed > present {
        return Err(Error::Config(format!(
            "{}: {arch}.block_count says {claimed} layers, but the file has tensors for {present}",
            file.origin()
        )));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn load_llama(
    meta: &GgufMetadata,
    arch: &str,
    file: Arc<dyn WeightSource>,
    vocab_size: usize,
    tied: bool,
    host: &HostTensors,
    device: &Device,
    dtype: Precision,
) -> Result<Llama> {
    let mut config = llama_config(meta, arch, vocab_size, tied, host)?;
    // llama.cpp keeps Llama 3's rope scaling as per-pair divisors in a tensor.
    config.rope_freq_factors = host.get("rope_freqs.weight").cloned();
    let names = hf_names(file.as_ref(), arch, config.num_hidden_layers);
    let vb = Weights::new(Arc::new(Renamed { inner: file, names }), device, dtype);
    // llama.cpp permutes Llama's q/k rows for pairwise rotation (Qwen2, Qwen3 and Phi-3 files are
    // not permuted).
    Llama::load(config, &vb, !matches!(arch, "qwen2" | "qwen3" | "phi3"))
}
