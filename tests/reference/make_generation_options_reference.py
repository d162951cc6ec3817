"""Reference token ids for the text-generation options that transformers.js code passes
(max_length, min_new_tokens, no_repeat_ngram_size, eos_token_id as a number or a list,
repetition_penalty), from transformers' own `generate()` on the tiny decoders of
make_tiny_decoders.py, greedy, CPU, float32.

Output: tests/fixtures/generation/options-reference.json:
    {versions, note, cases: [{model, prompt, prompt_ids, options, token_ids, margin}]}
where `options` are the pipeline call's options (transformers.js's names, as webformers takes
them), `token_ids` what generate() returned after the prompt, and `margin` the smallest gap
between the chosen token's processed score and the runner-up's over the steps (greedy choices
closer than the test's tolerance would not be a fair test; none is).

The tokenizer adds BOS as the pipeline's does for a text prompt; an `eos_token_id` option
replaces the model's own EOS ids, as in transformers (and transformers.js).

Run once, by hand, in the reference environment (CI never does):
    /work/main/.cache/pyref-venv/bin/python tests/reference/make_generation_options_reference.py
"""

import json
import pathlib

import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures"
OUT = FIXTURES / "generation/options-reference.json"

MODELS = ["tiny-llama", "tiny-qwen3", "tiny-gemma3"]
PROMPTS = ["The keeper lit the lamp", "Boats came home"]


def run(model, ids, options):
    kwargs = dict(options)
    out = model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        do_sample=False,
        return_dict_in_generate=True,
        output_scores=True,
        **kwargs,
    )
    new = out.sequences[0, len(ids):].tolist()
    margin = float("inf")
    for s in out.scores:  # processed scores of each step
        top = torch.topk(s[0], 2).values
        if torch.isfinite(top[1]):
            margin = min(margin, float(top[0] - top[1]))
    return new, margin


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cases = []
    for name in MODELS:
        folder = FIXTURES / name
        model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(folder)
        for prompt in PROMPTS:
            ids = tok(prompt)["input_ids"]
            # Tokens that greedy decoding produces, so that the EOS overrides stop it early (the
            # tiny models repeat themselves, so the n-gram ban is on in those cases).
            varied, _ = run(model, ids, {"max_new_tokens": 16, "no_repeat_ngram_size": 2})
            distinct = list(dict.fromkeys(varied))
            assert len(distinct) >= 4, (name, prompt, varied)
            nr = {"no_repeat_ngram_size": 2}
            option_sets = [
                {"max_new_tokens": 16},
                {"max_length": len(ids) + 7},
                {"max_new_tokens": 16, "no_repeat_ngram_size": 2},
                {"max_new_tokens": 16, "no_repeat_ngram_size": 3},
                {"max_new_tokens": 16, **nr, "eos_token_id": distinct[2]},
                {"max_new_tokens": 16, **nr, "eos_token_id": [distinct[3], distinct[1]]},
                {"max_new_tokens": 16, **nr, "eos_token_id": distinct[1], "min_new_tokens": 6},
                {"max_new_tokens": 12, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2},
            ]
            for options in option_sets:
                new, margin = run(model, ids, options)
                cases.append({"model": name, "prompt": prompt, "prompt_ids": ids, "options": options, "token_ids": new, "margin": margin})
    doc = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
        "note": __doc__.split("\n\n")[1].strip(),
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(cases)} cases, smallest margin {min(c['margin'] for c in cases):.4f} -> {OUT}")


if __name__ == "__main__":
    main()
