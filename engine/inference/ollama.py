"""An Ollama Modelfile for an exported GGUF: the chat template (as a Go template), stop tokens, system prompt.

Ollama templates are Go templates, HF chat templates are Jinja: no library translates one into the
other, so this is written here. Each known template family is declared once as the text around every
role's content (`Turns`); the family is recognised by rendering probe conversations with the model's
own Jinja template and comparing them with the family's rendering of the same conversations, and
the Go template is generated from the same parts. A model whose template matches no family gets no
TEMPLATE line: Ollama then falls back on the chat template stored in the GGUF's metadata
(tokenizer.chat_template), and the Modelfile says so.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Turns:
    """A chat format as literal text around each message; "{eos}" / "{bos}" stand for the tokenizer's tokens."""
    name: str
    system: tuple[str, str] | None  # (before, after) the content; None: no system role
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation: str  # what opens the assistant's reply
    start: str = ""  # once, before the first message
    stops: tuple[str, ...] = ()  # end-of-turn markers besides EOS

    def _fill(self, text: str, tokenizer) -> str:
        return text.replace("{eos}", tokenizer.eos_token or "").replace("{bos}", tokenizer.bos_token or "")

    def render(self, messages: list[dict], tokenizer, generation: bool = True) -> str:
        parts = {"system": self.system, "user": self.user, "assistant": self.assistant}
        out = self.start
        for m in messages:
            before, after = parts[m["role"]]
            out += before + m["content"] + after
        out += self.generation if generation else ""
        return self._fill(out, tokenizer)

    def go_template(self, tokenizer) -> str:
        """The same format as an Ollama (Go) template over .Messages; no whitespace trimming, so the literal
        text is emitted exactly as written."""
        branches = []
        for role in ("system", "user", "assistant"):
            before, after = getattr(self, role)
            keyword = "if" if not branches else "else if"
            branches.append(f'{{{{ {keyword} eq .Role "{role}" }}}}{before}{{{{ .Content }}}}{after}')
        body = "".join(branches) + "{{ end }}"
        return self._fill(f"{self.start}{{{{ range .Messages }}}}{body}{{{{ end }}}}{self.generation}", tokenizer)


FAMILIES = (
    Turns("chatml", ("<|im_start|>system\n", "<|im_end|>\n"), ("<|im_start|>user\n", "<|im_end|>\n"),
          ("<|im_start|>assistant\n", "<|im_end|>\n"), "<|im_start|>assistant\n", stops=("<|im_end|>",)),
    Turns("llama3", ("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
          ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
          ("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
          "<|start_header_id|>assistant<|end_header_id|>\n\n", start="{bos}", stops=("<|eot_id|>",)),
    Turns("zephyr", ("<|system|>\n", "{eos}\n"), ("<|user|>\n", "{eos}\n"), ("<|assistant|>\n", "{eos}\n"),
          "<|assistant|>\n"),
    Turns("alpaca", ("", "\n\n"), ("### Instruction:\n", "\n\n"), ("### Response:\n", "{eos}\n\n"),
          "### Response:\n", stops=("### Instruction:",)),
)
PROBE = [{"role": "system", "content": "SYSTEM-TEXT"}, {"role": "user", "content": "USER-ONE"},
         {"role": "assistant", "content": "ASSISTANT-ONE"}, {"role": "user", "content": "USER-TWO"}]


def _jinja(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def family_of(tokenizer) -> Turns | None:
    """The known family whose rendering equals the model's own template on the probe conversation."""
    try:
        own = _jinja(tokenizer, PROBE)
    except Exception:  # a template that refuses system turns etc.: no family
        return None
    return next((f for f in FAMILIES if f.render(PROBE, tokenizer) == own), None)


def default_system(tokenizer, family: Turns) -> str:
    """The system prompt the template adds when a conversation has none (SmolLM2's "You are a helpful AI
    assistant named SmolLM..."), or ""."""
    user = [{"role": "user", "content": "USER-ONE"}]
    rendered = _jinja(tokenizer, user)
    if rendered == family.render(user, tokenizer) or family.system is None:
        return ""
    before, after = (family._fill(x, tokenizer) for x in family.system)
    start = family._fill(family.start, tokenizer)
    head = rendered[len(start):] if rendered.startswith(start) else rendered
    if head.startswith(before) and after in head[len(before):]:
        text = head[len(before):head.index(after, len(before))]
        if family.render([{"role": "system", "content": text}] + user, tokenizer) == rendered:
            return text
    return ""


def modelfile(gguf_name: str, tokenizer, parameters: dict | None = None) -> tuple[str, str | None]:
    """(the Modelfile text, the family recognised or None)."""
    family = family_of(tokenizer)
    lines = ["# Made by Tuneloom. Create the model with: ollama create NAME -f Modelfile", f"FROM ./{gguf_name}", ""]
    if family is None:
        lines += ["# The chat template matches no format Tuneloom translates to Ollama's; Ollama uses the template",
                  "# stored in the GGUF (tokenizer.chat_template). Check `ollama show NAME --template`.", ""]
        stops = [tokenizer.eos_token] if tokenizer.eos_token else []
    else:
        lines += [f"# chat format: {family.name} (the model's own template, translated)",
                  f'TEMPLATE """{family.go_template(tokenizer)}"""', ""]
        system = default_system(tokenizer, family)
        if system:
            lines += [f'SYSTEM """{system}"""', ""]
        stops = list(dict.fromkeys([*family.stops, tokenizer.eos_token or ""]))
    lines += [f'PARAMETER stop "{stop}"' for stop in stops if stop]
    lines += [f"PARAMETER {key} {value}" for key, value in (parameters or {}).items()]
    return "\n".join(lines) + "\n", family.name if family else None
