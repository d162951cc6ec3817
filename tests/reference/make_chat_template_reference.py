"""Chat templates rendered by transformers (`render_jinja_template`, what `apply_chat_template`
calls), for webformers' renderer (core/src/chat.rs) to match byte for byte.

Templates: the tiny decoders' (ChatML, from their tokenizer_config.json), SmolLM2-135M-Instruct's
(from its GGUF's metadata: `tokenizer.chat_template`), and tests/fixtures/chat/tools-template.jinja,
written for these tests (no model of ours ships a tool-calling template; gemma-3-270m's GGUF has
no template at all), which uses tools with each `tojson` option, documents, tool calls and
results, content parts, a namespace, loop controls, `enable_thinking` and an extra variable.

Output: tests/fixtures/chat/reference.json: {versions, cases: [{name, template (a path under
tests/fixtures, or `gguf:smollm2`), source (its text), bos_token, eos_token, messages, tools, documents,
add_generation_prompt, extra, rendered}]}. `extra` holds the further template variables
(`enable_thinking`), passed beside the special tokens.

Run once, by hand, in the reference environment (CI never does; the SmolLM2 GGUF comes from
scripts/fetch-models.sh):
    /work/main/.cache/pyref-venv/bin/python tests/reference/make_chat_template_reference.py
"""

import json
import pathlib

import gguf
import jinja2
import transformers
from transformers.utils.chat_template_utils import render_jinja_template

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures"
OUT = FIXTURES / "chat/reference.json"
SMOLLM2 = ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather at a place, \"now\" or later.\tIn °C or °F 🌧",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "A town: Saint-Malo, Reykjavík"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
                    "hours": {"type": "integer", "minimum": 0, "maximum": 48},
                    "threshold": {"type": "number", "default": 0.5, "multipleOf": 1e-05, "scale": 2.0},
                    "strict": {"type": "boolean", "default": False, "nullable": None},
                },
                "required": ["location"],
            },
        },
    },
    {"type": "function", "function": {"name": "lamp", "description": "Lights the lamp.", "parameters": {"type": "object", "properties": {}}}},
]

HISTORY = [
    {"role": "system", "content": "You keep the light."},
    {"role": "user", "content": "  Is the storm over? "},
    {"role": "assistant", "content": "Not yet."},
    {"role": "user", "content": "When will it end?"},
]

TOOL_TURNS = [
    {"role": "system", "content": "You keep the light."},
    {"role": "user", "content": "Weather in Saint-Malo?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"location": "Saint-Malo", "hours": 3}}}],
    },
    {"role": "tool", "name": "get_weather", "content": "Rain, 12 °C, \"heavy\""},
    {"role": "assistant", "content": "Rain, 12 °C."},
    {"role": "user", "content": [{"type": "text", "text": "And "}, {"type": "image"}, {"type": "text", "text": "tomorrow?"}]},
]

DOCUMENTS = [{"title": "Log", "text": "The lamp was lit at dusk."}, {"title": "Tides", "text": "High water at 6."}]


def gguf_template(path):
    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


def main():
    cases = []

    def case(name, template, source, bos, eos, messages, tools=None, documents=None, add_generation_prompt=True, extra=None):
        extra = extra or {}
        rendered, _ = render_jinja_template(
            conversations=[messages],
            tools=tools,
            documents=documents,
            chat_template=source,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos,
            eos_token=eos,
            **extra,
        )
        cases.append({
            "name": name, "template": template, "source": source, "bos_token": bos, "eos_token": eos, "messages": messages, "tools": tools,
            "documents": documents, "add_generation_prompt": add_generation_prompt, "extra": extra, "rendered": rendered[0],
        })

    for model in ["tiny-llama", "tiny-qwen2"]:
        cfg = json.loads((FIXTURES / model / "tokenizer_config.json").read_text())
        src, bos, eos = cfg["chat_template"], cfg.get("bos_token") or "", cfg.get("eos_token") or ""
        path = f"{model}/tokenizer_config.json"
        case(f"{model} history", path, src, bos, eos, HISTORY)
        case(f"{model} no generation prompt", path, src, bos, eos, HISTORY[:3], add_generation_prompt=False)
    smol = gguf_template(SMOLLM2)
    for bos, eos in [("<|im_start|>", "<|im_end|>")]:
        case("smollm2 history", "gguf:smollm2", smol, bos, eos, HISTORY)
        case("smollm2 without system", "gguf:smollm2", smol, bos, eos, HISTORY[1:])
        case("smollm2 no generation prompt", "gguf:smollm2", smol, bos, eos, HISTORY[1:3], add_generation_prompt=False)
    tools_src = (FIXTURES / "chat/tools-template.jinja").read_text()
    path = "chat/tools-template.jinja"
    case("tools", path, tools_src, "<s>", "</s>", TOOL_TURNS, tools=TOOLS)
    case("tools, thinking off", path, tools_src, "<s>", "</s>", TOOL_TURNS, tools=TOOLS, extra={"enable_thinking": False})
    case("tools, thinking on", path, tools_src, "<s>", "</s>", HISTORY, tools=TOOLS, extra={"enable_thinking": True})
    case("documents and extra variables", path, tools_src, "", "\n", HISTORY, documents=DOCUMENTS,
         extra={"custom_instructions": "Answer in French.", "enable_thinking": False})
    case("no tools, no system", path, tools_src, "<s>", "</s>", HISTORY[1:], add_generation_prompt=False)
    # With tiny-llama's special tokens: what its pipeline renders with this template as an override.
    llama = json.loads((FIXTURES / "tiny-llama/tokenizer_config.json").read_text())
    bos, eos = llama["bos_token"], llama["eos_token"]
    # These two are also the npm tests' cases: a JS number has no integral float (2.0 is 2), so
    # their tools hold the int a JS caller's would (the cases above keep Python's 2.0 for the
    # native renderer, which gets JSON's own numbers).
    js_tools = json.loads(json.dumps(TOOLS).replace('"scale": 2.0', '"scale": 2'))
    case("tiny-llama override: tools", path, tools_src, bos, eos, TOOL_TURNS, tools=js_tools, extra={"enable_thinking": False})
    case("tiny-llama override: documents", path, tools_src, bos, eos, HISTORY, documents=DOCUMENTS,
         extra={"custom_instructions": "Answer in French."})
    doc = {
        "versions": {"transformers": transformers.__version__, "jinja2": jinja2.__version__},
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases -> {OUT}")


if __name__ == "__main__":
    main()
