"""Makes tests/fixtures/minilm-reference.json: golden outputs of all-MiniLM-L6-v2.

Run once, by hand, in the reference environment (CI never does):
    scripts/fetch-models.sh minilm && scripts/pyref-env.sh
    .cache/pyref-venv/bin/python tests/reference/make_minilm_reference.py

Every value comes from sentence-transformers (what users compare against), and
is cross-checked here against plain transformers and a padded batch, so the
fixture does not depend on batching or padding.
"""

import json
import sys
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from texts import INPUTS, WITH_HIDDEN_STATES  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
from golden_json import dump, f32_list  # noqa: E402
MODEL_DIR = ROOT / ".cache" / "models" / "all-MiniLM-L6-v2"
OUT = ROOT / "tests" / "fixtures" / "minilm-reference.json"

# Published values (shared/MODELS.md) that this run must reproduce.
HELLO_IDS = [101, 7592, 2088, 102]
HELLO_MEAN5 = [-0.197446, 0.177666, 0.03857, 0.149522, -0.22542]
HELLO_NORM5 = [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362]

BATCH_TOL = 1e-5


def main():
    # One thread: the machine is shared, and the work is small.
    torch.set_num_threads(1)
    torch.manual_seed(0)

    st = SentenceTransformer(str(MODEL_DIR), device="cpu")
    st.eval()
    max_len = st.max_seq_length
    assert max_len == 256, max_len

    # Plain transformers, for an independent check of the pooled values.
    hf_tok = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    hf_model = AutoModel.from_pretrained(str(MODEL_DIR), dtype=torch.float32).eval()

    texts = [t for _, t in INPUTS]
    records = []
    with torch.inference_mode():
        for name, text in INPUTS:
            # Exactly what sentence-transformers feeds the model (truncated to
            # max_seq_length, [CLS] ... [SEP]).
            feats = st.preprocess([text])
            ids = feats["input_ids"][0].tolist()
            assert ids[0] == 101 and ids[-1] == 102 and len(ids) <= max_len

            # Transformer + Pooling modules only: mean pooled, unnormalized.
            out = st[1](st[0](dict(feats)))
            tokens = out["token_embeddings"][0].float().numpy()
            mean = out["sentence_embedding"][0].float().numpy()

            # What users call: one input at a time, normalized.
            emb = st.encode(text, convert_to_numpy=True)
            assert emb.dtype == np.float32 and emb.shape == (384,)
            np.testing.assert_allclose(emb, mean / np.linalg.norm(mean), atol=1e-6)

            # Independent path: BertModel + attention-mask mean.
            enc = hf_tok([text], truncation=True, max_length=max_len, return_tensors="pt")
            assert enc["input_ids"][0].tolist() == ids, name
            hs = hf_model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            hf_mean = ((hs * m).sum(1) / m.sum(1))[0].numpy()
            np.testing.assert_allclose(hf_mean, mean, atol=1e-5)

            rec = {
                "name": name,
                "text": text,
                "num_tokens": len(ids),
                # Before truncation, so a tokenizer test can see that it cut.
                "num_tokens_untruncated": len(hf_tok(text, verbose=False)["input_ids"]),
                "token_ids": ids,
                "embedding": emb,
                "mean_unnormalized": mean,
                "cls": tokens[0],
            }
            if name in WITH_HIDDEN_STATES:
                rec["last_hidden_state"] = [row for row in tokens]
            records.append(rec)

        # The same inputs as padded batches must give the same embeddings, so
        # the fixture holds whatever batching a test uses.
        batch = st.encode(texts, batch_size=len(texts), convert_to_numpy=True)
        single = np.stack([r["embedding"] for r in records])
        diff = float(np.abs(batch - single).max())
        assert diff < BATCH_TOL, f"batch vs single differ by {diff}"
        enc = hf_tok(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
        hs = hf_model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        hf_batch_mean = ((hs * m).sum(1) / m.sum(1)).numpy()
        mean_single = np.stack([r["mean_unnormalized"] for r in records])
        mdiff = float(np.abs(hf_batch_mean - mean_single).max())
        assert mdiff < BATCH_TOL, f"padded batch mean differs by {mdiff}"

    hello = records[0]
    assert hello["text"] == "Hello world" and hello["token_ids"] == HELLO_IDS
    np.testing.assert_allclose(hello["mean_unnormalized"][:5], HELLO_MEAN5, atol=1e-5)
    np.testing.assert_allclose(hello["embedding"][:5], HELLO_NORM5, atol=1e-6)
    long_inputs = [r for r in records if r["num_tokens"] == max_len]
    assert len(long_inputs) >= 2, "need two inputs truncated at max_seq_length"

    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "max_seq_length": max_len,
        "hidden_size": 384,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
        "note": (
            "Made by tests/reference/make_minilm_reference.py from the model that "
            "scripts/fetch-models.sh unpacks, on CPU in float32, one input at a time. "
            "token_ids: what sentence-transformers feeds the model (truncated to "
            "max_seq_length, [CLS] and [SEP] kept). embedding: SentenceTransformer.encode "
            "(mean pooling over the attention mask, then L2 normalization). "
            "mean_unnormalized: the same mean pooling before normalization. cls: the "
            "last hidden state of token 0. last_hidden_state (a few short inputs only): "
            "all tokens x 384 (pooling 'none'). num_tokens_untruncated: the length "
            "before truncation. Checked in the script: a padded batch of "
            f"all inputs gives the same values within {BATCH_TOL}; plain transformers "
            "BertModel with mask-mean gives the same mean within 1e-5. Floats are the "
            "shortest decimals that round-trip to float32."
        ),
        "inputs": records,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = dump(fixture) + "\n"
    json.loads(text)  # never write a file that does not parse
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(records)} inputs, {len(text) / 1e6:.2f} MB, "
          f"batch max diff {diff:.2e}, padded mean max diff {mdiff:.2e}")


if __name__ == "__main__":
    main()
