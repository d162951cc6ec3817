"""Makes tiny random Whisper models (transformers `WhisperForConditionalGeneration`) for the
paths the real checkpoints (whisper-tiny.en, whisper-base: 80 mel bins, fp16) do not cover.

Outputs under tests/fixtures/whisper/:
    tiny-whisper-en/      English-only (vocab 51864, whisper-tiny.en's tokenizer), 80 mel bins,
                          float32 weights, 3 encoder layers and 2 decoder layers (distil-whisper's
                          decoder depth), d_model 8, 2 heads
    tiny-whisper-multi/   multilingual (vocab 51865, whisper-base's tokenizer: language detection,
                          translate), 128 mel bins like large-v3, float16 weights, 2 + 2 layers,
                          d_model 16, 4 heads

Each folder: config.json, generation_config.json (whisper's layout: suppress tokens, timestamps,
lang_to_id, alignment heads of these shapes), preprocessor_config.json, model.safetensors,
tokenizer.json (minified copy of the real model's) and tokenizer_config.json.

Needs the real models converted first (scripts/fetch-models.sh whisper-tiny.en whisper-base).
Run once, by hand, in the reference environment (CI never does):
    .cache/pyref-venv/bin/python tests/reference/make_tiny_whisper.py

Weights come from a torch.Generator with a fixed seed (not transformers' init, which leaves
norms at 1 and biases at 0 and so would test neither), scaled so that logits spread and greedy
choices have clear margins. The encoder's embed_positions stay transformers' sinusoids (as
in real checkpoints). CPU, float32, one thread: rerunning gives identical files.
"""

import json
import os
import sys
from pathlib import Path

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "whisper"
MODELS = Path(os.environ.get("WEBFORMERS_MODELS", ROOT / ".cache" / "models"))

SPECS = {
    "tiny-whisper-en": dict(
        source="whisper-tiny.en",
        d_model=8,
        heads=2,
        encoder_layers=3,
        decoder_layers=2,
        ffn=16,
        mels=80,
        dtype=torch.float32,
        seed=11,
        alignment_heads=[[1, 0], [1, 1]],
    ),
    "tiny-whisper-multi": dict(
        source="whisper-base",
        d_model=16,
        heads=4,
        encoder_layers=2,
        decoder_layers=2,
        ffn=32,
        mels=128,
        dtype=torch.float16,
        seed=12,
        alignment_heads=[[0, 1], [1, 0], [1, 3]],
    ),
}


def make(name, spec):
    src = MODELS / spec["source"]
    real_config = json.loads((src / "config.json").read_text())
    real_generation = json.loads((src / "generation_config.json").read_text())
    config = WhisperConfig(
        vocab_size=real_config["vocab_size"],
        num_mel_bins=spec["mels"],
        encoder_layers=spec["encoder_layers"],
        decoder_layers=spec["decoder_layers"],
        encoder_attention_heads=spec["heads"],
        decoder_attention_heads=spec["heads"],
        encoder_ffn_dim=spec["ffn"],
        decoder_ffn_dim=spec["ffn"],
        d_model=spec["d_model"],
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=real_config["decoder_start_token_id"],
        bos_token_id=real_config["bos_token_id"],
        eos_token_id=real_config["eos_token_id"],
        pad_token_id=real_config["pad_token_id"],
        suppress_tokens=real_config["suppress_tokens"],
        begin_suppress_tokens=real_config["begin_suppress_tokens"],
        tie_word_embeddings=True,
    )
    config.architectures = ["WhisperForConditionalGeneration"]
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    gen = torch.Generator().manual_seed(spec["seed"])
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname == "model.encoder.embed_positions.weight":
                continue  # transformers' sinusoids, as real checkpoints store them
            if pname.endswith("layer_norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif pname.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif pname == "model.decoder.embed_tokens.weight":
                p.copy_(torch.randn(p.shape, generator=gen))
            elif pname == "model.decoder.embed_positions.weight":
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                # fan-in scaled, a little above 1/sqrt(fan_in) so activations keep their size
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) * (1.5 / fan_in**0.5))
    model = model.to(spec["dtype"])
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    # generate()'s settings: the real model's, with alignment heads of this shape.
    generation = dict(real_generation)
    generation["alignment_heads"] = spec["alignment_heads"]
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    cfg = json.loads((out / "config.json").read_text())
    cfg["alignment_heads"] = spec["alignment_heads"]
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    pre = json.loads((src / "preprocessor_config.json").read_text())
    pre["feature_size"] = spec["mels"]
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    tok = json.loads((src / "tokenizer.json").read_text())
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, separators=(",", ":")))
    (out / "tokenizer_config.json").write_text((src / "tokenizer_config.json").read_text())
    print(name, sum(p.numel() for p in model.parameters()), "parameters")


def main():
    torch.set_num_threads(1)
    for name, spec in SPECS.items():
        make(name, spec)


if __name__ == "__main__":
    sys.exit(main())
