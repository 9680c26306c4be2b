"""Generation settings: one dict, checked in words, turned into `model.generate` keyword arguments.

Pure and import-light: the UI checks a setting before sending it, the chat worker checks it
again before generating, and both read the same rules. Nothing here imports torch.
"""
from __future__ import annotations

from engine.core.messages import Message

# every setting a user can change, with the value a fresh chat starts from
DEFAULTS = {
    "max_new_tokens": 256, "min_new_tokens": 0, "do_sample": False, "temperature": 0.7, "top_k": 50,
    "top_p": 1.0, "repetition_penalty": 1.0, "num_beams": 1, "num_return_sequences": 1, "seed": None,
    "stop_on_eos": True,
}
PRESETS = {
    # greedy: the likeliest token each time; the same prompt gives the same answer
    "precise": {"do_sample": False, "num_beams": 1, "num_return_sequences": 1, "repetition_penalty": 1.0},
    # sampling with a moderate temperature and nucleus limit: varied but coherent
    "creative": {"do_sample": True, "temperature": 0.9, "top_p": 0.95, "top_k": 50, "num_beams": 1,
                 "num_return_sequences": 1, "repetition_penalty": 1.1},
}
# The short form of the CLI's `chat` and the API's `chat`: one temperature, where 0 means greedy, as a fresh
# chat on the page (DEFAULTS: do_sample off). The same length as the page's.
SHORT_FORM = {"max_new_tokens": DEFAULTS["max_new_tokens"], "temperature": 0.0, "top_p": DEFAULTS["top_p"],
              "top_k": DEFAULTS["top_k"], "repetition_penalty": DEFAULTS["repetition_penalty"]}
# An evaluation's generated answers (Evaluate tab, the API's `evaluate`, `python -m engine evaluate`): greedy,
# and short, since each sample is scored against its reference and costs a generation on the CPU.
EVALUATION = {"samples": 5, "max_new_tokens": 64}
LIMITS = {"max_new_tokens": (1, 8192), "min_new_tokens": (0, 8192), "temperature": (0.0, 100.0),
          "top_k": (0, 100000), "top_p": (0.0, 1.0), "repetition_penalty": (0.01, 100.0), "num_beams": (1, 64),
          "num_return_sequences": (1, 64)}
INTS = ("max_new_tokens", "min_new_tokens", "top_k", "num_beams", "num_return_sequences")


def resolve(params: dict | None) -> dict:
    """DEFAULTS overlaid with `params` (unknown keys dropped); old chats that send only a temperature
    (no do_sample) sample when it is above 0, as they always did."""
    params = dict(params or {})
    out = dict(DEFAULTS)
    if "do_sample" not in params and params.get("temperature") is not None:
        out["do_sample"] = float(params["temperature"]) > 0
    for key in DEFAULTS:
        if params.get(key) is not None:
            out[key] = params[key]
    return out


def check_generation(params: dict | None) -> list[str]:
    """Every problem with these settings, in words; an empty list means they can be used as they are."""
    p = resolve(params)
    problems = []
    for key, (low, high) in LIMITS.items():
        value = p.get(key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append(Message("gen.not_number", field=key, value=repr(value)))
            continue
        if key in INTS and number != int(number):
            problems.append(Message("gen.not_whole", field=key, value=value))
        if not low <= number <= high:
            problems.append(Message("gen.outside", field=key, value=value, low=low, high=high))
    if problems:
        return problems
    if p["seed"] not in (None, "") and not str(p["seed"]).lstrip("-").isdigit():
        problems.append(Message("gen.seed", value=repr(p["seed"])))
    if int(p["min_new_tokens"]) > int(p["max_new_tokens"]):
        problems.append(Message("gen.min_max", min=p["min_new_tokens"], max=p["max_new_tokens"]))
    beams, sequences = int(p["num_beams"]), int(p["num_return_sequences"])
    if p["do_sample"]:
        if float(p["temperature"]) <= 0:
            problems.append(Message("gen.temperature"))
        if beams > 1 and (int(p["top_k"]) > 0 or float(p["top_p"]) < 1.0):
            # transformers would combine them (beam-sample), which is rarely what anyone means
            problems.append(Message("gen.beam_sampling", beams=beams, top_k=p["top_k"], top_p=p["top_p"]))
    elif sequences > beams:
        problems.append(Message("gen.too_many_sequences", sequences=sequences, beams=beams))
    return problems


def streams(params: dict | None) -> bool:
    """Token-by-token streaming works for one sequence from one beam; beams and alternatives come whole."""
    p = resolve(params)
    return int(p["num_beams"]) == 1 and int(p["num_return_sequences"]) == 1


def stream_note(params: dict | None) -> str:
    """Why a reply arrives whole instead of token by token (empty when it streams)."""
    if streams(params):
        return ""
    p = resolve(params)
    why = Message("gen.beams", n=p["num_beams"]) if int(p["num_beams"]) > 1 else \
        Message("gen.sequences", n=p["num_return_sequences"])
    return Message("gen.no_stream", why=why)


def to_generate_kwargs(params: dict | None, eos_token_id=None) -> dict:
    """Keyword arguments for `model.generate` (raises ValueError listing the problems if any).

    Sampling-only settings are left out when sampling is off (transformers warns about them);
    `stop_on_eos` off means generation runs to max_new_tokens regardless of the end token.
    """
    problems = check_generation(params)
    if problems:
        raise ValueError("; ".join(problems))
    p = resolve(params)
    kwargs = {"max_new_tokens": int(p["max_new_tokens"]), "do_sample": bool(p["do_sample"]),
              "num_beams": int(p["num_beams"]), "num_return_sequences": int(p["num_return_sequences"])}
    if int(p["min_new_tokens"]) > 0:
        kwargs["min_new_tokens"] = int(p["min_new_tokens"])
    if float(p["repetition_penalty"]) != 1.0:
        kwargs["repetition_penalty"] = float(p["repetition_penalty"])
    if p["do_sample"]:
        kwargs["temperature"] = float(p["temperature"])
        kwargs["top_p"] = float(p["top_p"])
        kwargs["top_k"] = int(p["top_k"])  # 0 = no limit
    if not p["stop_on_eos"]:
        kwargs["eos_token_id"] = None  # never stop early: run to max_new_tokens
        kwargs["suppress_tokens"] = [eos_token_id] if eos_token_id is not None else None
        if kwargs["suppress_tokens"] is None:
            kwargs.pop("suppress_tokens")
    elif eos_token_id is not None:
        kwargs["eos_token_id"] = eos_token_id
    if int(p["num_beams"]) > 1:
        kwargs["early_stopping"] = True
    return kwargs


def seed_of(params: dict | None) -> int | None:
    seed = resolve(params).get("seed")
    return None if seed in (None, "") else int(seed)


def generate_answer(model, tokenizer, messages: list[dict], params: dict) -> str:
    """One greedy-or-sampled answer of `model` to `messages` (evaluation and judging; chat has its worker)."""
    import torch

    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    inputs = {k: v.to(next(model.parameters()).device) for k, v in inputs.items()}
    with torch.inference_mode():
        out = model.generate(**inputs, pad_token_id=tokenizer.pad_token_id,
                             **{**to_generate_kwargs(params), "num_return_sequences": 1})
    return tokenizer.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
