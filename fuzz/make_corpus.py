"""Writes the seed corpora under fuzz/corpus/<target>/ from the real model files: configs whole,
tokenizer.json files cut down to a few KB, safetensors and GGUF files with the real headers'
names and dtypes but tiny tensors, chat templates, and the first bytes of the image and audio
fixtures. Each seed is at most MAX bytes. Run from the repository root:

    .cache/pyref-venv/bin/python fuzz/make_corpus.py

(needs numpy and gguf, both in the reference venv). Deterministic: rerunning rewrites the same files.
"""

import glob
import hashlib
import json
import os
import struct
import sys

import numpy as np

MAX = 16 * 1024
ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(ROOT)
FIX = os.path.join(REPO, "tests", "fixtures")
MODELS = os.path.join(REPO, ".cache", "models")


def out(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    assert len(data) <= MAX, (target, name, len(data))
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def files(pattern):
    return sorted(glob.glob(os.path.join(FIX, "**", pattern), recursive=True) + glob.glob(os.path.join(MODELS, "**", pattern), recursive=True))


def short(path):
    rel = os.path.relpath(path, REPO)
    return rel.replace("tests/fixtures/", "").replace(".cache/models/", "").replace("/", "_")


def read_json(path):
    with open(path, "rb") as f:
        return json.load(f)


# config.json, generation_config.json, preprocessor_config.json: whole (they are small).
for p in files("config.json"):
    if os.path.getsize(p) <= MAX:
        out("model_config", short(p), open(p, "rb").read())
for p in files("generation_config.json"):
    gen = read_json(p)
    cfg_path = os.path.join(os.path.dirname(p), "config.json")
    cfg = read_json(cfg_path) if os.path.exists(cfg_path) else None
    out("generation_config", short(p), json.dumps(gen))
    both = {"generation": gen, "config": cfg, "options": {"max_new_tokens": 5, "do_sample": True, "top_k": 3, "stop": ["\n"]}}
    out("generation_config", "with-config_" + short(p), json.dumps(both))
for p in files("preprocessor_config.json"):
    out("preprocessor_config", short(p), open(p, "rb").read())


# tokenizer.json: the vocabulary and merges cut to the first N entries (ids stay consistent).
def cut_tokenizer(t, n):
    t = json.loads(json.dumps(t))
    model = t.get("model") or {}
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        keep = {k: v for k, v in vocab.items() if v < n}
        # Unknown and special tokens the model names must stay.
        for k in (model.get("unk_token"),):
            if k in vocab:
                keep[k] = vocab[k]
        model["vocab"] = keep
    elif isinstance(vocab, list):
        model["vocab"] = vocab[:n]
        if isinstance(model.get("unk_id"), int) and model["unk_id"] >= n:
            model["unk_id"] = 0
    if isinstance(model.get("merges"), list):
        names = set(model["vocab"]) if isinstance(model["vocab"], dict) else set()

        def ok(m):
            parts = m.split(" ") if isinstance(m, str) else m
            return len(parts) == 2 and parts[0] in names and parts[1] in names and (parts[0] + parts[1]) in names

        model["merges"] = [m for m in model["merges"] if ok(m)][:n]
    t["added_tokens"] = [a for a in t.get("added_tokens", []) if a["id"] < n or a.get("special")]
    return t


seen = set()
for p in files("tokenizer.json"):
    t = read_json(p)
    kind = (t.get("model") or {}).get("type"), json.dumps(t.get("normalizer"))[:200], json.dumps(t.get("pre_tokenizer"))[:200]
    if kind in seen:
        continue
    seen.add(kind)
    for n in (300, 120, 40):
        data = json.dumps(cut_tokenizer(t, n), ensure_ascii=False, separators=(",", ":"))
        if len(data.encode()) <= MAX:
            out("tokenizer_json", short(p), data)
            break


# Chat templates: every distinct one in a tokenizer_config.json, and a few hostile ones.
templates = {}
for p in files("tokenizer_config.json"):
    t = read_json(p).get("chat_template")
    if isinstance(t, list):
        t = next((x["template"] for x in t if x.get("name") == "default"), None)
    if isinstance(t, str):
        templates[hashlib.sha1(t.encode()).hexdigest()[:10]] = t
for h, t in sorted(templates.items()):
    if len(t.encode()) <= MAX:
        out("chat_template", "real_" + h, t)
out("chat_template", "chatml", "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'].strip() + '<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
out("chat_template", "recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
out("chat_template", "loops", "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}")
out("chat_template", "huge-string", "{% set s = 'x' * 100000000 %}{{ s }}{{ s }}{{ s }}")
out("chat_template", "doubling", "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}")
out("chat_template", "raise", "{{ raise_exception('roles must alternate') }}{{ strftime_now('%d %B %Y') }}")


# safetensors: the real files' tensor names and dtypes with tiny shapes, and an index.
ST_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2), "I64": (np.int64, 8), "I32": (np.int32, 4), "U8": (np.uint8, 1)}


def safetensors_bytes(tensors, metadata=None):
    header, data = {}, b""
    for name, dtype, shape in tensors:
        n = int(np.prod(shape)) if shape else 1
        size = n * ST_DTYPES[dtype][1]
        blob = bytes((i * 37 + 11) % 251 for i in range(size))
        if dtype in ("F32", "F16"):
            blob = (np.arange(n, dtype=np.float32) / 7).astype(ST_DTYPES[dtype][0]).tobytes()
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + size]}
        data += blob
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


for p in files("model.safetensors")[:12]:
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    tensors = [(k, v["dtype"], [min(d, 3) for d in v["shape"]]) for k, v in sorted(header.items())][:24]
    data = safetensors_bytes(tensors, {"format": "pt"})
    if len(data) <= MAX:
        out("safetensors", short(p), data)
out("safetensors", "dtypes", safetensors_bytes([("a", "F32", [2, 3]), ("b", "F16", [4]), ("c", "BF16", [2, 2]), ("d", "I64", [3]), ("e", "I32", [1]), ("f", "U8", [5]), ("g", "F32", [])]))
out("safetensors", "index.json", json.dumps({"metadata": {"total_size": 100}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))


# GGUF: a tiny llama and a tiny gemma3, with the real files' tokenizer metadata cut down.
import gguf  # noqa: E402

def tiny_gguf(name, src, arch, n_tokens=64):
    reader = gguf.GGUFReader(src)
    f = reader.fields

    def strs(key):
        fld = f.get(key)
        return [bytes(fld.parts[i]).decode("utf-8", "replace") for i in fld.data] if fld else []

    def scalar(key):
        fld = f.get(key)
        return fld.parts[fld.data[0]][0].item() if fld else None

    tokens = strs("tokenizer.ggml.tokens")[:n_tokens]
    types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data][:n_tokens] if "tokenizer.ggml.token_type" in f else []
    vocab = set(tokens)
    merges = [m for m in strs("tokenizer.ggml.merges") if all(x in vocab for x in m.split(" ")) and m.replace(" ", "") in vocab][:40]
    path = os.path.join("/tmp", name)
    w = gguf.GGUFWriter(path, arch)
    hidden, heads, ff, layers = 8, 2, 16, 1
    w.add_block_count(layers)
    w.add_context_length(64)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    if arch == "gemma3":
        w.add_key_length(4)
        w.add_value_length(4)
        w.add_uint32("gemma3.attention.sliding_window", 16)
    w.add_tokenizer_model(str(bytes(f["tokenizer.ggml.model"].parts[-1]), "utf-8"))
    pre = f.get("tokenizer.ggml.pre")
    if pre:
        w.add_tokenizer_pre(bytes(pre.parts[-1]).decode())
    w.add_token_list(tokens)
    if types:
        w.add_token_types(types)
    if merges:
        w.add_token_merges(merges)
    w.add_bos_token_id(min(scalar("tokenizer.ggml.bos_token_id") or 1, n_tokens - 1))
    w.add_eos_token_id(min(scalar("tokenizer.ggml.eos_token_id") or 2, n_tokens - 1))
    w.add_add_bos_token(bool(scalar("tokenizer.ggml.add_bos_token")))
    tmpl = f.get("tokenizer.chat_template")
    if tmpl:
        w.add_chat_template(bytes(tmpl.parts[-1]).decode()[:2000])
    rng = np.random.default_rng(0)
    t = lambda *s: (rng.standard_normal(s) * 0.1).astype(np.float32)  # noqa: E731
    head_dim = 4
    w.add_tensor("token_embd.weight", t(n_tokens, hidden))
    w.add_tensor("output_norm.weight", t(hidden))
    for i in range(layers):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", t(hidden))
        w.add_tensor(b + "attn_q.weight", t(heads * head_dim, hidden).astype(np.float16))
        w.add_tensor(b + "attn_k.weight", t(head_dim, hidden))
        w.add_tensor(b + "attn_v.weight", t(head_dim, hidden))
        w.add_tensor(b + "attn_output.weight", t(hidden, heads * head_dim))
        w.add_tensor(b + "ffn_norm.weight", t(hidden))
        w.add_tensor(b + "ffn_gate.weight", t(ff, hidden))
        w.add_tensor(b + "ffn_up.weight", t(ff, hidden))
        w.add_tensor(b + "ffn_down.weight", t(hidden, ff))
        if arch == "gemma3":
            for n in ("attn_q_norm", "attn_k_norm"):
                w.add_tensor(b + n + ".weight", t(head_dim))
            for n in ("post_attention_norm", "post_ffw_norm"):
                w.add_tensor(b + n + ".weight", t(hidden))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = open(path, "rb").read()
    out("gguf", name, data)
    # The same vocabulary as the gguf_tokenizer target's JSON.
    out("gguf_tokenizer", name + ".json", json.dumps({
        "model": str(bytes(f["tokenizer.ggml.model"].parts[-1]), "utf-8"), "pre": bytes(pre.parts[-1]).decode() if pre else None,
        "tokens": tokens, "token_types": types, "merges": merges, "bos_id": 1, "add_bos": True, "arch": arch,
        "text": "Hello world, héllo 12345!"}, ensure_ascii=False))


tiny_gguf("llama-smollm2.gguf", os.path.join(MODELS, "SmolLM2-135M-Instruct.Q4_1.gguf"), "llama")
tiny_gguf("gemma3.gguf", os.path.join(MODELS, "gemma-3-270m-q4_k_m.gguf"), "gemma3", n_tokens=120)
tiny_gguf("phi3.gguf", os.path.join(FIX, "tiny-phi3.gguf"), "phi3")


# Hub exchanges: the answers a Hub gives to a load (see fuzz_targets/hub_responses.rs).
C = "0123456789abcdef0123456789abcdef01234567"
cfg = '{"model_type": "bert"}'
st = safetensors_bytes([("a", "F32", [2])]).decode("latin-1")
hub = [
    {"status": 200, "headers": [["x-repo-commit", C], ["etag", '"abc"'], ["content-length", str(len(cfg))]]},
    {"status": 200, "headers": [["content-length", str(len(cfg))]], "body": cfg},
    {"status": 302, "headers": [["x-repo-commit", C], ["x-linked-etag", '"sha"'], ["x-linked-size", "20"], ["location", "https://cdn.test/x?sig=1"]]},
    {"status": 206, "headers": [["content-range", "bytes 0-19/20"]], "body": "0123456789abcdefghij"},
    {"status": 404, "headers": [["x-error-code", "EntryNotFound"]]},
    {"status": 200, "headers": [["link", '<https://hub.test/api/models/org/model/tree/x?cursor=2>; rel="next"']], "body": json.dumps([{"type": "file", "path": "config.json", "size": 3, "oid": "abc", "lfs": {"oid": "def", "size": 3}}])},
    {"status": 503, "headers": [["retry-after", "1"]]},
    {"status": 200, "headers": [], "body": json.dumps({"sha": C})},
]
out("hub_responses", "load", json.dumps(hub))
out("hub_responses", "followed", json.dumps([{"status": 200, "redirected_to": "https://cdn.test/blob", "headers": [["etag", '"e"'], ["content-length", "5"]], "body": "hello"}, {"status": 200, "body": json.dumps({"sha": C})}]))
out("hub_responses", "redirects", json.dumps([{"status": 307, "headers": [["location", "../../x/resolve/main/config.json"]]}] * 12))


# Images and audio: the small fixtures whole, the larger ones' first bytes.
for p in sorted(glob.glob(os.path.join(FIX, "images", "**", "*.*"), recursive=True)):
    if p.endswith(".u8"):
        continue
    data = open(p, "rb").read()
    out("image_decode", short(p), data[:MAX])
for p in sorted(glob.glob(os.path.join(FIX, "audio", "*.*"))):
    out("audio_decode", short(p), open(p, "rb").read()[:MAX])
# A WAV that claims 4 GB of samples.
wav = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 48000, 48000 * 4, 4, 16) + b"data" + struct.pack("<I", 0xFFFFFFE0) + bytes(400)
out("audio_decode", "claims-4gb.wav", wav)
print("corpus written under", os.path.join(ROOT, "corpus"))
