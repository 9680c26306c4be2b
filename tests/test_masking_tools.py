"""The masking oracle for tool-calling and reasoning chats: the trained text is exactly each trained assistant
turn as the model must write it (its reasoning where kept, its answer, its tool calls, its end-of-turn marker),
and nothing of the system, the user, the tools list or the tools' outputs, on the default model's template
(no place for tools or reasoning: they are written in the Hermes convention) and on a template that has a place
for them (`chatml-tools`, engine/data/templates.py)."""
import json

import pytest
from test_masking import trained_text as trained_runs  # each trained run of tokens, decoded

from engine.core.models import load_tokenizer
from engine.data.formats import Example
from engine.data.masking import encode, token_preview
from engine.data.turns import apply_reasoning

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}}


def call(name, **arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


CHAT = [
    {"role": "system", "content": "You look up the weather."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": "", "reasoning_content": "I need both cities.",
     "tool_calls": [call("get_weather", city="Paris"), call("get_weather", city="Rome")]},
    {"role": "tool", "content": "18 C and sunny", "name": "get_weather"},
    {"role": "tool", "content": "24 C and cloudy", "name": "get_weather"},
    {"role": "assistant", "content": "Paris is sunny, Rome is cloudy.", "reasoning_content": "Compare the two."},
    {"role": "user", "content": "Thanks, and Oslo?"},
    {"role": "assistant", "content": "Checking Oslo.", "weight": 0, "tool_calls": [call("get_weather", city="Oslo")]},
    {"role": "tool", "content": "3 C and snowing", "name": "get_weather"},
    {"role": "assistant", "content": "Oslo is snowing."},
]
NEVER_TRAINED = ["You look up the weather.", "Weather in Paris and Rome?", "18 C and sunny", "24 C and cloudy",
                 "Thanks, and Oslo?", "3 C and snowing", "Current weather for a city", "Checking Oslo."]


@pytest.fixture(scope="module", params=["own", "chatml-tools"])
def tok(request, tiny_model):
    return load_tokenizer(tiny_model, template="auto" if request.param == "own" else request.param)


def expected_turn(message: dict, reasoning: bool) -> str:
    """The assistant turn as the model writes it, from the conventions' definition: <think> reasoning, the answer,
    one <tool_call> JSON per call (a newline between them), then ChatML's end of turn."""
    kept = reasoning and "reasoning_content" in message
    think = f"<think>\n{message['reasoning_content']}\n</think>\n\n" if kept else ""
    calls = [f'<tool_call>\n{json.dumps({"name": c["function"]["name"], "arguments": c["function"]["arguments"]})}'
             "\n</tool_call>" for c in message.get("tool_calls", [])]
    return think + "\n".join(([message["content"]] if message["content"] else []) + calls) + "<|im_end|>\n"


@pytest.mark.parametrize("reasoning", ["auto", "drop"])
def test_trained_text_is_exactly_the_assistant_turns(tok, reasoning):
    messages = apply_reasoning(CHAT, reasoning)
    encoded = encode(tok, Example("line 1", messages=messages, tools=[WEATHER]), "assistant", 4096)
    runs = trained_runs(tok, encoded)
    wanted = [expected_turn(m, reasoning != "drop") for m in CHAT if m["role"] == "assistant" and m.get("weight") != 0]
    assert runs == wanted
    for text in NEVER_TRAINED:
        assert not any(text in run for run in runs), text


def test_last_assistant_trains_only_the_final_answer(tok):
    encoded = encode(tok, Example("line 1", messages=apply_reasoning(CHAT, "auto"), tools=[WEATHER]),
                     "last_assistant", 4096)
    assert trained_runs(tok, encoded) == ["Oslo is snowing.<|im_end|>\n"]


def test_preview_shows_tool_calls_tool_outputs_and_reasoning_apart(tok):
    example = Example("line 1", messages=apply_reasoning(CHAT, "auto"), tools=[WEATHER])
    units = token_preview(tok, example, encode(tok, example, "assistant", 4096))
    text = {part: "".join(u["token"] for u in units if u.get("part") == part)
            for part in ("tool_call", "tool_output", "reasoning")}
    assert text["reasoning"] == "I need both cities.Compare the two."
    assert text["tool_output"] == "18 C and sunny24 C and cloudy3 C and snowing"
    assert '"city": "Paris"' in text["tool_call"] and '"city": "Oslo"' in text["tool_call"]
    assert all(u["trained"] for u in units if u.get("part") == "reasoning")
    assert not any(u["trained"] for u in units if u.get("part") == "tool_output")
