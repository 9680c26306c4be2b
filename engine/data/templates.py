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
# ChatML with a place for tools, tool calls, tool results and reasoning, in the Hermes / Qwen conventions
# (<tools> in the system turn, <tool_call> JSON in the assistant's, <tool_response> in the tool's, <think>):
# written here for base models trained on tool-calling data
_register("chatml-tools", "ChatML with tools (<tools>, <tool_call>, <tool_response>) and reasoning (<think>), "
          "the Hermes / Qwen conventions",
          "{%- if tools %}{{ '<|im_start|>system\n' }}{% if messages[0]['role'] == 'system' %}"
          "{{ messages[0]['content'] + '\n\n' }}{% endif %}{{ '# Tools\n<tools>' }}"
          "{% for tool in tools %}{{ '\n' + (tool | tojson) }}{% endfor %}"
          "{{ '\n</tools>\nTo call a function, answer with <tool_call>{\"name\": ..., \"arguments\": ...}"
          "</tool_call>.<|im_end|>\n' }}"
          "{%- elif messages[0]['role'] == 'system' %}{{ '<|im_start|>system\n' + messages[0]['content'] + "
          "'<|im_end|>\n' }}{%- endif %}"
          "{%- for m in messages %}"
          "{%- if m['role'] == 'system' %}{% if not loop.first %}"
          "{{ '<|im_start|>system\n' + m['content'] + '<|im_end|>\n' }}{% endif %}"
          "{%- elif m['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}"
          "{% if m.reasoning_content %}{{ '<think>\n' + m.reasoning_content + '\n</think>\n\n' }}{% endif %}"
          "{{ m['content'] }}{% for call in m.tool_calls or [] %}{% if not loop.first or m['content'] %}"
          "{{ '\n' }}{% endif %}{{ '<tool_call>\n{\"name\": \"' + call.function.name + '\", \"arguments\": ' + "
          "(call.function.arguments | tojson) + '}\n</tool_call>' }}{% endfor %}{{ '<|im_end|>\n' }}"
          "{%- elif m['role'] == 'tool' %}"
          "{{ '<|im_start|>tool\n<tool_response>\n' + m['content'] + '\n</tool_response><|im_end|>\n' }}"
          "{%- else %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{%- endif %}"
          "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{%- endif %}")
