"""The chat-template registry: named Jinja templates for models that ship none (base models), or to
override a model's own (`data.template`). The model's own template is used by default (`auto`).

A template must render a conversation so that each prefix ending in an assistant turn is a prefix of
the whole (engine/data/masking.py finds the trained spans that way); tests/test_templates.py checks
every entry. The texts follow the published formats of each family.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.registry import TEMPLATES


@dataclass(frozen=True)
class Template:
    key: str
    description: str
    jinja: str


def _register(key: str, description: str, jinja: str) -> None:
    TEMPLATES.register(key, Template(key, description, jinja))


_register("chatml", "ChatML (<|im_start|>role ... <|im_end|>): Qwen, SmolLM, many instruction models; the "
          "fallback for models without a template",
          "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
_register("llama3", "Llama 3 (<|start_header_id|>role<|end_header_id|> ... <|eot_id|>)",
          "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n'"
          " + m['content'] + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
_register("zephyr", "Zephyr (<|user|> ... </s>)",
          "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + eos_token + '\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")
_register("alpaca", "Alpaca (### Instruction: / ### Response:), for base models trained on it",
          "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] + '\n\n' }}"
          "{% elif m['role'] == 'user' %}{{ '### Instruction:\n' + m['content'] + '\n\n' }}"
          "{% else %}{{ '### Response:\n' + m['content'] + eos_token + '\n\n' }}{% endif %}{% endfor %}"
          "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}")
# ChatML with tools in the published Hermes / Qwen2.5 convention: the tools' JSON schemas in the system turn inside
# <tools></tools>, each call of an assistant turn as {"name", "arguments"} JSON inside <tool_call></tool_call>, tool
# results as a user turn of <tool_response></tool_response> blocks, and an assistant's reasoning in <think></think>
# before its answer. Without tools or reasoning it renders exactly as `chatml`. Written by hand: the models that ship
# this convention (Qwen2.5, Hermes) ship it inside much larger templates. Used for base models trained on
# tool-calling data, and for chat models whose own ChatML template has no place for tools (SmolLM2).
_register("chatml-tools", "ChatML with tool calling (Hermes / Qwen2.5 convention: <tools> in the system turn, "
          "<tool_call> JSON in assistant turns, <tool_response> for results) and reasoning (<think>), for models "
          "whose own template has no place for tools (SmolLM2)",
          "{% if tools %}{{ '<|im_start|>system\n' }}{% if messages and messages[0]['role'] == 'system' %}"
          "{{ messages[0]['content'] + '\n\n' }}{% endif %}"
          "{{ '# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided '"
          "'with function signatures within <tools></tools> XML tags:\n<tools>' }}"
          "{% for tool in tools %}{{ '\n' + (tool | tojson) }}{% endfor %}"
          "{{ '\n</tools>\n\nFor each function call, return a json object with function name and arguments within '"
          "'<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": '"
          "'<args-json-object>}\n</tool_call><|im_end|>\n' }}{% endif %}"
          "{% for m in messages %}"
          "{% if m['role'] == 'system' and loop.first and tools %}"
          "{% elif m['role'] == 'tool' %}"
          "{% if loop.first or loop.previtem['role'] != 'tool' %}{{ '<|im_start|>user' }}{% endif %}"
          "{{ '\n<tool_response>\n' + (m['content'] or '') + '\n</tool_response>' }}"
          "{% if loop.last or loop.nextitem['role'] != 'tool' %}{{ '<|im_end|>\n' }}{% endif %}"
          "{% elif m['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}"
          "{% if m.get('reasoning_content') %}{{ '<think>\n' + m['reasoning_content'] + '\n</think>\n\n' }}"
          "{% endif %}{{ m['content'] or '' }}"
          "{% for call in m.get('tool_calls') or [] %}{% if not loop.first or m['content'] %}{{ '\n' }}{% endif %}"
          "{% set f = call['function'] if call['function'] is defined else call %}"
          "{{ '<tool_call>\n{\"name\": \"' + f['name'] + '\", \"arguments\": ' }}"
          "{% if f['arguments'] is string %}{{ f['arguments'] }}{% else %}{{ f['arguments'] | tojson }}{% endif %}"
          "{{ '}\n</tool_call>' }}{% endfor %}{{ '<|im_end|>\n' }}"
          "{% else %}{{ '<|im_start|>' + m['role'] + '\n' + (m['content'] or '') + '<|im_end|>\n' }}{% endif %}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
