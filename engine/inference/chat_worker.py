"""The inference worker process: `python -m engine chat-worker`.

Reads one JSON request per line on stdin and answers with JSON lines on stdout (tokens are
streamed as they are generated). Running in its own process means unloading frees all of the
model's memory and a crash here is a message in the UI, not a dead app.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback

from engine.core.messages import as_dict
from engine.inference.tools import parse_reply, tool_ready


def generation_kwargs(params: dict, eos_token_id=None) -> dict:
    """`model.generate` keyword arguments (engine/inference/generation.py checks them; ValueError says why)."""
    from engine.inference.generation import to_generate_kwargs

    return to_generate_kwargs(params, eos_token_id)


class Session:
    def __init__(self, out):
        self.out = out
        self.model = self.tokenizer = None
        self.tools_note = self.tools_refusal = None  # how this model renders tools (engine/inference/tools.py)

    def send(self, **event):
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    def load(self, request: dict):
        from engine.inference.loading import load_base, load_result

        started = time.time()
        self.model = self.tokenizer = None
        if request.get("run"):
            self.model, self.tokenizer, note = load_result(request["run"], merge=True)
        else:
            self.model, self.tokenizer, note = load_base(request["model"], request.get("trust_remote_code", False))
        self.model.eval()
        self.tools_note = self.tools_refusal = None
        try:
            self.tools_note = tool_ready(self.tokenizer)
        except ValueError as err:
            self.tools_refusal = err
        self.send(event="loaded", note=note, note_i18n=as_dict(note), seconds=round(time.time() - started, 2),
                  tools_note=as_dict(self.tools_note) if self.tools_note else None)

    def generate(self, request: dict):
        import torch
        from transformers import TextIteratorStreamer

        from engine.inference.generation import resolve, seed_of, stream_note, streams

        if self.model is None:
            raise RuntimeError("no model loaded")
        params = request.get("params", {})
        eos = None if resolve(params)["stop_on_eos"] else self.tokenizer.eos_token_id
        gen = generation_kwargs(params, eos)  # raises ValueError with every problem, sent as an error event
        tools = request.get("tools") or None
        if tools and self.tools_refusal is not None:
            raise self.tools_refusal
        inputs = self.tokenizer.apply_chat_template(request["messages"], tools=tools, add_generation_prompt=True,
                                                    return_tensors="pt", return_dict=True)
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        if seed_of(params) is not None:
            torch.manual_seed(seed_of(params))
        started = time.time()
        if not streams(params):
            # beams / several sequences: TextIteratorStreamer cannot follow them; answer whole
            with torch.inference_mode():
                out = self.model.generate(**inputs, pad_token_id=self.tokenizer.pad_token_id, **gen)
            prompt_len = inputs["input_ids"].shape[1]
            texts = [self.tokenizer.decode(row[prompt_len:], skip_special_tokens=True) for row in out]
            self.send(event="sequences", texts=texts, note=stream_note(params))
            if tools:
                self.send_reply(inputs["input_ids"], out[0][prompt_len:], tools)
            self.send(event="done", seconds=round(time.time() - started, 3), first_token_s=None, pieces=len(texts))
            return
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**inputs, streamer=streamer, pad_token_id=self.tokenizer.pad_token_id, **gen)
        errors, outputs = [], []

        def work():
            try:
                with torch.inference_mode():
                    outputs.append(self.model.generate(**kwargs))
            except Exception as err:  # surfaced to the client below
                errors.append(err)
                streamer.end()

        first = None
        thread = threading.Thread(target=work)
        thread.start()
        pieces = 0
        for text in streamer:
            if text:
                first = first or time.time()
                pieces += 1
                self.send(event="token", text=text)
        thread.join()
        if errors:
            raise errors[0]
        if tools and outputs:
            self.send_reply(inputs["input_ids"], outputs[0][0][inputs["input_ids"].shape[1]:], tools)
        self.send(event="done", seconds=round(time.time() - started, 3),
                  first_token_s=round((first or time.time()) - started, 3), pieces=pieces)


    def send_reply(self, prompt_ids, generated_ids, tools) -> None:
        """The reply read by the template's convention: its text and its tool calls (engine/inference/tools.py).
        The raw decode keeps special tokens, as `transformers serve` parses it: some templates mark calls with
        them."""
        prompt = self.tokenizer.decode(prompt_ids[0], skip_special_tokens=False)
        raw = self.tokenizer.decode(generated_ids, skip_special_tokens=False)
        reply = parse_reply(self.tokenizer, raw, prompt, tools)
        if not reply["tool_calls"] and not reply.get("error"):
            return  # plain text: what streamed is the reply
        self.send(event="reply", **reply, note_i18n=as_dict(self.tools_note) if self.tools_note else None)


def main() -> int:
    # the protocol owns the real stdout; anything libraries print goes to stderr
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    session = Session(out)
    session.send(event="ready", pid=os.getpid())
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            op = request.get("op")
            if op == "load":
                session.load(request)
            elif op == "generate":
                session.generate(request)
            elif op == "quit":
                break
            else:
                session.send(event="error", message=f"unknown op {op!r}")
        except Exception as err:
            traceback.print_exc()
            session.send(event="error", message=f"{type(err).__name__}: {err}", message_i18n=as_dict(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
