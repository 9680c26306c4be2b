"""An OpenAI-compatible endpoint (`/v1/chat/completions`, `/v1/models`) for a run's result or a base model:
`python -m engine serve RUN`.

The server is transformers' own (`transformers serve`, the `transformers[serving]` extra): its FastAPI
app, request validation, generation, streaming and tool-call parsing. Only the model comes from
Tuneloom, because the `transformers serve` command loads models by Hub id or folder with
`from_pretrained`, which cannot merge a run's adapter first, nor load the methods transformers does
not know (prompt tuning on its base, our bottleneck adapter), and its `/v1/models` lists only the
Hugging Face cache. `RunModel` (a ModelManager holding one loaded model) fills that gap.

Tools: transformers' server renders a request's `tools` through the chat template and returns the model's calls in
`tool_calls` when it knows the template's convention (the tokenizer's `response_template`, else a fallback keyed by
model type). engine/inference/tools.py prepares the tokenizer for both (a ChatML model without a place for tools
renders them with the named template chatml-tools; `<tool_call>` JSON gets a response template); a model that
cannot render tools answers requests with tools 400 and the reason, instead of ignoring them.

Bound to 127.0.0.1 unless --host says otherwise; any other address needs --auth (the app's rule,
engine/core/security.py), and then every request needs `Authorization: Bearer user:password` (the
OpenAI clients' api_key) or HTTP Basic with one of the pairs.
"""
from __future__ import annotations

import base64
import os
import secrets
import signal
import threading
import time
from pathlib import Path

from engine.core.jobs import RunState
from engine.core.messages import as_dict
from engine.core.security import check_launch
from engine.inference import serve_job

CREATED = int(time.time())


def served_name(run_dir: Path | None, model: str | None) -> str:
    """The model name clients send (and /v1/models lists): the run's id, or the base model's name."""
    return Path(run_dir).name if run_dir is not None else str(model)


def load(run_dir: Path | None, model: str | None):
    """(model, tokenizer, note): a run's result merged where the method allows, else adapter on base."""
    import torch

    from engine.inference.loading import load_base, load_result

    dtype = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if run_dir is not None:
        loaded, tokenizer, note = load_result(run_dir, merge=True, dtype=dtype)
    else:
        loaded, tokenizer, note = load_base(model, dtype=dtype)
    if torch.cuda.is_available():
        loaded = loaded.to("cuda")
    return loaded.eval(), tokenizer, note


def tools_support(tokenizer):
    """(note, refusal) for requests with tools (engine/inference/tools.py): the tokenizer is made to render them
    and its calls parsed into `tool_calls` by transformers' own serving, else the refusal says why not."""
    from engine.inference.tools import tool_ready

    try:
        return tool_ready(tokenizer), None
    except ValueError as err:
        return None, err.args[0]


def build_app(name: str, model, tokenizer, users: list[tuple[str, str]], tools_refusal=None):
    """transformers' serving app around one loaded model, behind the auth rule (and, when the model cannot render
    tools, refusing requests that carry them with `tools_refusal` rather than ignoring the tools)."""
    from transformers.cli.serving.chat_completion import ChatCompletionHandler
    from transformers.cli.serving.completion import CompletionHandler
    from transformers.cli.serving.model_manager import ModelManager
    from transformers.cli.serving.response import ResponseHandler
    from transformers.cli.serving.server import build_server
    from transformers.cli.serving.systemone import SystemOneHandler
    from transformers.cli.serving.transcription import TranscriptionHandler
    from transformers.cli.serving.utils import GenerationState

    class RunModel(ModelManager):
        """A model manager pinned to one model loaded by Tuneloom (see the module docstring)."""

        def __init__(self):
            super().__init__(device=str(model.device), model_timeout=-1)
            self.force_model = name  # a request naming another model gets a 400 from the handlers

        def load_model_and_processor(self, model_id_and_revision, progress_callback=None, tqdm_class=None,
                                     gguf_file=None):
            return model, tokenizer

        def get_gen_models(self, cache_dir=None):
            return [{"id": name, "object": "model", "created": CREATED, "owned_by": "tuneloom"}]

    manager, state = RunModel(), GenerationState()
    app = build_server(manager, ChatCompletionHandler(manager, state), CompletionHandler(manager, state),
                       ResponseHandler(manager, state), TranscriptionHandler(manager, state),
                       SystemOneHandler(manager, state), state)
    if tools_refusal:
        _refuse_tools(app, str(tools_refusal))
    if users:
        _require_auth(app, users)
    return app


def _refuse_tools(app, why: str) -> None:
    import json

    from fastapi.responses import JSONResponse

    @app.middleware("http")
    async def no_tools(request, call_next):
        if request.method == "POST" and request.url.path.endswith("/chat/completions"):
            try:
                tools = json.loads(await request.body() or b"{}").get("tools")
            except (ValueError, AttributeError):
                tools = None  # transformers' own validation answers a malformed body
            if tools:
                return JSONResponse({"error": {"message": f"tools cannot be used with this model: {why}",
                                               "type": "invalid_request_error", "param": "tools"}}, status_code=400)
        return await call_next(request)


def _require_auth(app, users: list[tuple[str, str]]) -> None:
    from fastapi.responses import JSONResponse

    accepted = {f"Bearer {user}:{password}" for user, password in users}
    accepted |= {"Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() for user, password in users}

    @app.middleware("http")
    async def authorised(request, call_next):
        given = request.headers.get("authorization", "")
        if not any(secrets.compare_digest(given, ok) for ok in accepted):
            return JSONResponse({"error": {"message": "this server needs an api_key of user:password (one of "
                                                      "the --auth pairs)", "type": "unauthorized"}},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)


def serve(run_dir: Path | None, model: str | None, host: str = "127.0.0.1", port: int = 8000,
          auth: str | None = None, log=print) -> None:
    """Load, listen, and record the server in RUN/serve.json until SIGTERM or Ctrl-C ends it."""
    import uvicorn

    users = check_launch(host, False, auth, "the model server")  # non-loopback without --auth: SystemExit

    def record(**fields):  # RUN/serve.json, where the page follows the server; nothing for a base model
        if run_dir is not None:
            serve_job.record(run_dir, **fields)

    name = served_name(run_dir, model)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/v1"
    record(state=RunState.STARTING, pid=os.getpid(), url=url, model=name, host=host, error=None, auth=bool(users))
    server = None

    def on_stop_signal(signum, frame):
        # while loading: stop here. Once listening, uvicorn handles the signal itself (graceful shutdown),
        # then restores this handler and raises the signal again: nothing is left to do then.
        if server is None:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_stop_signal)
    signal.signal(signal.SIGINT, on_stop_signal)
    try:
        loaded, tokenizer, note = load(run_dir, model)
        tools_note, tools_refusal = tools_support(tokenizer)
        for line in filter(None, (tools_note, tools_refusal)):
            log(f"tools: {line}")
        record(tools_note=as_dict(tools_note or tools_refusal) if (tools_note or tools_refusal) else None)
        server = uvicorn.Server(uvicorn.Config(build_app(name, loaded, tokenizer, users, tools_refusal), host=host,
                                               port=port, log_level="warning"))
        threading.Thread(target=_announce, args=(server, record, note, log, f"{name} ({note}) at {url}"),
                         daemon=True).start()
        server.run()  # returns after SIGTERM / SIGINT
        if not server.started:
            raise RuntimeError(f"could not listen on {host}:{port} (is the port in use?)")
    except KeyboardInterrupt:
        pass  # stopped before it listened
    except BaseException as err:
        record(state=RunState.FAILED, error=f"{type(err).__name__}: {err}")
        raise
    record(state=RunState.STOPPED)


def _announce(server, record, note: str, log, what: str) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        record(state=RunState.RUNNING, note=note, note_i18n=as_dict(note))
        log(f"serving {what} (OpenAI-compatible: /v1/chat/completions, /v1/models)")
