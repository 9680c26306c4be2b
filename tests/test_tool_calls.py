"""Tools in chat and serving (engine/inference/tools.py): the tools list checked in words, rendered through the
model's chat template, and the model's tool call read back as a tool call, on the default model's tokenizer
(SmolLM2: its own template has no place for tools) and on templates that have one or cannot get one."""
from __future__ import annotations

import json

import pytest

from engine.core.messages import Message
from engine.inference import tools as tool_calls

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
# the Hermes / Qwen2.5 convention, written out from its published description: tools in the system turn inside
# <tools>, one JSON schema per line; calls as {"name", "arguments"} JSON inside <tool_call>
HERMES_SYSTEM = ("<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                 "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
                 + json.dumps(WEATHER) + "\n</tools>\n\nFor each function call, return a json object with function "
                 "name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
                 "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n")
CALL_TEXT = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.fixture()
def smollm2(tiny_model):
    """The default model's tokenizer (the tiny model keeps SmolLM2's), fresh for each test."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_smollm2s_own_template_ignores_tools_so_the_named_template_renders_them(smollm2):
    own = smollm2.chat_template
    plain = smollm2.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    assert smollm2.apply_chat_template(QUESTION, tools=[WEATHER], tokenize=False, add_generation_prompt=True) == plain
    assert not tool_calls.renders_tools(smollm2) and tool_calls.speaks_chatml(smollm2)

    note = tool_calls.tool_ready(smollm2)
    assert isinstance(note, Message) and note.code == "tools.named_template" and "chatml-tools" in str(note)
    with_tools = smollm2.apply_chat_template(QUESTION, tools=[WEATHER], tokenize=False, add_generation_prompt=True)
    assert with_tools == (HERMES_SYSTEM + "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n"
                          "<|im_start|>assistant\n")
    # without tools, the model's own template as before (its default system prompt included)
    assert smollm2.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True) == plain
    assert own in smollm2.chat_template
    # a call, its result and the answer, in OpenAI's shape (arguments as a JSON string, content null)
    turns = QUESTION + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 C, sunny"},
        {"role": "assistant", "content": "It is 18 C and sunny."}]
    rendered = smollm2.apply_chat_template(turns, tools=[WEATHER], tokenize=False)
    assert rendered.endswith(f"<|im_start|>assistant\n{CALL_TEXT}<|im_end|>\n<|im_start|>user\n<tool_response>\n"
                             "18 C, sunny\n</tool_response><|im_end|>\n<|im_start|>assistant\nIt is 18 C and sunny."
                             "<|im_end|>\n")


def test_the_tool_call_is_read_back_by_the_templates_convention(smollm2):
    tool_calls.tool_ready(smollm2)
    prompt = smollm2.apply_chat_template(QUESTION, tools=[WEATHER], tokenize=False, add_generation_prompt=True)
    reply = tool_calls.parse_reply(smollm2, f"Let me look.\n{CALL_TEXT}<|im_end|>", prompt, [WEATHER])
    assert reply == {"content": "Let me look.",
                     "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]}
    parallel = CALL_TEXT + "\n" + CALL_TEXT.replace("Paris", "Oslo") + "<|im_end|>"
    assert [json.loads(c["arguments"])["city"] for c in tool_calls.parse_reply(smollm2, parallel, prompt)["tool_calls"]
            ] == ["Paris", "Oslo"]
    assert tool_calls.parse_reply(smollm2, "Sunny, I think.<|im_end|>", prompt) == {"content": "Sunny, I think.",
                                                                                      "tool_calls": []}
    broken = tool_calls.parse_reply(smollm2, '<tool_call>\n{"name": "get_weather", "argu\n</tool_call>', prompt)
    assert broken["tool_calls"] == [] and "JSON" in broken["error"] and broken["content"].startswith("<tool_call>")


def test_a_template_with_its_own_place_for_tools_is_used_as_it_is(smollm2):
    from engine.core.registry import TEMPLATES

    smollm2.chat_template = TEMPLATES.get("chatml-tools").jinja  # a run trained with data.template: chatml-tools
    assert tool_calls.renders_tools(smollm2)
    assert tool_calls.tool_ready(smollm2) is None
    assert smollm2.chat_template == TEMPLATES.get("chatml-tools").jinja
    assert smollm2.response_template == tool_calls.HERMES_RESPONSE


def test_a_template_that_cannot_get_tools_is_refused_with_the_reason(smollm2):
    from engine.core.registry import TEMPLATES

    smollm2.chat_template = TEMPLATES.get("llama3").jinja
    with pytest.raises(ValueError) as refused:
        tool_calls.tool_ready(smollm2)
    assert refused.value.args[0].code == "tools.unsupported" and "data.template: chatml-tools" in str(refused.value)
    assert getattr(smollm2, "response_template", None) is None


@pytest.mark.parametrize("text, code, where", [
    ("[{\"type\": \"function\",", "tools.json", "line 1"),
    ('{"tools": 3}', "tools.not_object", "tools[0]"),
    ('"get_weather"', "tools.not_list", "str"),
    ('[{"type": "retrieval", "function": {"name": "a"}}]', "tools.type", "tools[0].type"),
    ('[{"type": "function", "function": {"name": "get weather"}}]', "tools.name", "tools[0].function.name"),
    ('[{"name": "a"}, {"name": "a"}]', "tools.duplicate", "tools[1].function.name"),
    ('[{"name": "a", "parameters": {"type": "string"}}]', "tools.parameters", "tools[0].function.parameters"),
])
def test_a_bad_tools_list_says_which_tool_and_field(text, code, where):
    with pytest.raises(ValueError) as bad:
        tool_calls.parse_tools(text)
    assert bad.value.args[0].code == code and where in str(bad.value)


def test_a_good_tools_list_is_openais_shape():
    assert tool_calls.parse_tools("") == [] and tool_calls.parse_tools(json.dumps([WEATHER])) == [WEATHER]
    bare = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    assert tool_calls.parse_tools(json.dumps(bare)) == [{"type": "function", "function": bare}]


# ---- a model trained on a tool call, tried in the chat worker and through the server ---------------------------
@pytest.fixture(scope="module")
def tool_caller(tiny_model, tmp_path_factory):
    """The tiny model, trained until it answers the weather question with the get_weather call (a real model trained
    on tool calls, as a user's run would be), saved with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tool_calls.tool_ready(tokenizer)
    prompt = tokenizer.apply_chat_template(QUESTION, tools=[WEATHER], tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(CALL_TEXT + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + answer_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: on a shared CPU a second spinning thread only slows each step
    try:
        for _ in range(200):  # about 90 steps to a loss of 0.01
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if loss.item() < 0.01:
                break
    finally:
        torch.set_num_threads(threads)
    assert loss.item() < 0.01, f"the tiny model did not learn the call (loss {loss.item():.3f})"
    out = tmp_path_factory.mktemp("tool-caller") / "model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(out)  # SmolLM2's own template, as shipped
    return str(out)


def test_the_chat_tab_shows_the_trained_call_as_a_tool_call(tool_caller, workspace):
    from engine.inference import generation
    from ui import chat_tab

    gen = [{**generation.DEFAULTS, "max_new_tokens": 40}[key] for key in chat_tab.GEN_KEYS]
    tools_text = json.dumps([WEATHER])
    worker = chat_tab.WORKER
    try:
        steps = list(chat_tab.on_send(QUESTION[0]["content"], [], chat_tab.BASE, tool_caller, "", "en", tools_text,
                                      *gen))
        shown, notes = steps[-1][0], [note for _, _, note in steps if isinstance(note, str)]
        # the page says the tools are rendered with the named template
        assert any("Loaded" in note and "chatml-tools" in note for note in notes), notes
        call = shown[-1]
        assert call["metadata"]["id"] == "tool_call:get_weather" and "get_weather" in call["metadata"]["title"]
        assert json.loads(call["content"].removeprefix("```json").removesuffix("```")) == {"city": "Paris"}
        assert "<tool_call>" not in "".join(str(m["content"]) for m in shown)  # a tool call, not its text

        # the next message is the call's result: a tool turn answering it, in OpenAI's shape
        *_, (after, _, _) = chat_tab.on_send("18 C, sunny", shown, chat_tab.BASE, tool_caller, "", "en", tools_text,
                                             *gen)
        result = next(m for m in after if (m.get("metadata") or {}).get("id") == "tool_result:get_weather")
        assert result["content"] == "18 C, sunny"
        sent = chat_tab.messages_for("", after[:after.index(result) + 1])
        assert sent == [QUESTION[0],
                        {"role": "assistant", "content": "", "tool_calls": [
                            {"id": "call_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
                        {"role": "tool", "name": "get_weather", "tool_call_id": "call_1", "content": "18 C, sunny"}]

        # the worker's own events: the text streams, then the reply read as a call
        events = list(worker.stream(QUESTION, {"max_new_tokens": 40}, [WEATHER]))
        assert "".join(e["text"] for e in events if e["event"] == "token").startswith("<tool_call>")
        assert events[-1]["event"] == "reply" and events[-1]["tool_calls"] == [
            {"name": "get_weather", "arguments": '{"city": "Paris"}'}]
        plain = list(worker.stream(QUESTION, {"max_new_tokens": 8}))  # without tools: text only
        assert plain and all(e["event"] == "token" for e in plain)
    finally:
        worker.unload()


def test_a_model_that_cannot_render_tools_is_refused_in_chat_with_the_reason(tool_caller, workspace):
    from transformers import AutoTokenizer

    from engine.core.registry import TEMPLATES
    from engine.inference.chat_client import ChatWorker, WorkerError

    llama = tool_caller + "-llama3"
    shutil_copy(tool_caller, llama)
    tokenizer = AutoTokenizer.from_pretrained(llama)
    tokenizer.chat_template = TEMPLATES.get("llama3").jinja
    tokenizer.save_pretrained(llama)
    worker = ChatWorker()
    try:
        worker.load("llama", model=llama)
        with pytest.raises(WorkerError) as refused:
            list(worker.stream(QUESTION, {"max_new_tokens": 4}, [WEATHER]))
        assert refused.value.args[0].code == "tools.unsupported"
    finally:
        worker.unload()


def shutil_copy(source: str, target: str) -> None:
    import shutil

    shutil.copytree(source, target)


def test_the_server_returns_the_trained_call_in_openais_tool_calls(tool_caller):
    from fastapi.testclient import TestClient

    from engine.inference import serve

    model, tokenizer, _ = serve.load(None, tool_caller)
    note, refusal = serve.tools_support(tokenizer)
    assert note.code == "tools.named_template" and refusal is None
    client = TestClient(serve.build_app("tool-caller", model, tokenizer, []))
    body = {"model": "tool-caller", "messages": QUESTION, "tools": [WEATHER], "max_tokens": 40}
    answer = client.post("/v1/chat/completions", json=body).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls", answer
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}

    from engine.core.registry import TEMPLATES

    tokenizer.chat_template = TEMPLATES.get("llama3").jinja  # cannot render tools: refused, not ignored
    tokenizer.response_template = None
    note, refusal = serve.tools_support(tokenizer)
    refusing = TestClient(serve.build_app("tool-caller", model, tokenizer, [], refusal))
    refused = refusing.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400 and "no place for tools" in refused.json()["error"]["message"]
    assert refusing.post("/v1/chat/completions", json={**body, "tools": None, "max_tokens": 2}).status_code == 200


def test_the_pages_conversation_becomes_openai_tool_turns():
    """Shown messages (Gradio metadata marks calls and results) -> the model's messages: a reply's text and its
    parallel calls are one assistant turn; each result a tool turn answering its call; a call that could not be
    read is shown, never sent."""
    from ui import chat_tab, chat_tools

    reply = {"content": "Checking both.", "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'},
                                                         {"name": "get_weather", "arguments": '{"city": "Oslo"}'}]}
    shown = [{"role": "user", "content": "Paris and Oslo?"}] + chat_tools.call_messages(reply)
    assert [m.get("metadata", {}).get("id") for m in shown] == [None, None, "tool_call:get_weather",
                                                                 "tool_call:get_weather"]
    assert chat_tools.waiting_call(shown) == "get_weather"
    assert chat_tools.user_turn(shown, "no tools now", [])[-1] == {"role": "user", "content": "no tools now"}
    shown = chat_tools.user_turn(shown, "18 C", [WEATHER])
    assert shown[-1]["metadata"]["id"] == "tool_result:get_weather" and chat_tools.waiting_call(shown) == "get_weather"
    shown = chat_tools.user_turn(shown, "-3 C", [WEATHER])  # the second call's result
    assert shown[-1]["metadata"]["id"] == "tool_result:get_weather" and chat_tools.waiting_call(shown) is None
    assert chat_tools.user_turn(shown, "thanks", [WEATHER])[-1] == {"role": "user", "content": "thanks"}
    calls = [{"id": f"call_{n}", "type": "function",
              "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}
             for n, city in ((1, "Paris"), (2, "Oslo"))]
    assert chat_tab.messages_for("Be brief.", shown) == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Paris and Oslo?"},
        {"role": "assistant", "content": "Checking both.", "tool_calls": calls},
        {"role": "tool", "name": "get_weather", "tool_call_id": "call_1", "content": "18 C"},
        {"role": "tool", "name": "get_weather", "tool_call_id": "call_2", "content": "-3 C"}]
    unread = chat_tools.call_messages({"content": "<tool_call>{bad", "tool_calls": [], "error": "not JSON"})
    assert unread[0]["content"] == "<tool_call>{bad" and "not JSON" in unread[1]["content"]
    assert chat_tab.messages_for("", unread) == [{"role": "assistant", "content": "<tool_call>{bad"}]
