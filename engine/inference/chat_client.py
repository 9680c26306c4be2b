"""The UI's handle on the inference worker (import-light: a subprocess and JSON lines)."""
from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

from engine.core.jobs import engine_command, engine_env
from engine.core.messages import from_dict
from engine.core.workspace import PROJECT_ROOT, subdir


class WorkerError(RuntimeError):
    pass


class ChatWorker:
    """One worker process holding one model; `unload` ends the process and frees its memory."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.loaded: str | None = None
        self.note = ""
        self.tools_note = ""
        self.counted_bytes = 0  # the memory its model was counted with beside training (engine/estimate/sharing.py)
        self.lock = threading.Lock()

    def _start(self) -> None:
        log = open(subdir("logs") / "chat-worker.log", "ab")
        self.process = subprocess.Popen(
            engine_command("chat-worker"), cwd=str(PROJECT_ROOT), env=engine_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
        )
        log.close()
        self._expect("ready")

    def _send(self, request: dict) -> None:
        assert self.process and self.process.stdin
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def _events(self) -> Iterator[dict]:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            yield json.loads(line)
        code = self.process.wait()
        self.process, self.loaded = None, None
        raise WorkerError(f"the chat worker stopped (exit code {code}); see logs/chat-worker.log "
                          "in the workspace. Load the model again to continue")

    def _expect(self, name: str) -> dict:
        for event in self._events():
            if event["event"] == name:
                return event
            if event["event"] == "error":
                raise WorkerError(event["message"])
        raise WorkerError("no answer from the chat worker")

    def holds(self, key: str) -> bool:
        """Whether the model named `key` is loaded in a live worker process."""
        return self.loaded == key and self.process is not None and self.process.poll() is None

    def load(self, key: str, run: str | None = None, model: str | None = None,
             trust_remote_code: bool = False) -> str:
        """Load a run's result (merged) or a base model; a no-op if `key` is already loaded."""
        with self.lock:
            if self.holds(key):
                return self.note
            self._stop()
            self._start()
            self._send({"op": "load", "run": run, "model": model, "trust_remote_code": trust_remote_code})
            loaded = self._expect("loaded")
            self.note = from_dict(loaded.get("note_i18n")) or loaded["note"]  # a catalogue message where it has a code
            # how requests with tools are rendered, when not by the model's own template (engine/inference/tools.py)
            self.tools_note = from_dict(loaded.get("tools_note")) if loaded.get("tools_note") else ""
            self.loaded = key
            return self.note

    def generate(self, messages: list[dict], params: dict, tools: list[dict] | None = None) -> Iterator[str]:
        """The reply piece by piece (the first of several sequences, whole, when they cannot stream)."""
        for event in self.stream(messages, params, tools):
            if event["event"] == "token":
                yield event["text"]
            elif event["event"] == "sequences":
                yield event["texts"][0] if event["texts"] else ""

    def stream(self, messages: list[dict], params: dict, tools: list[dict] | None = None) -> Iterator[dict]:
        """The worker's events: {"event": "token", "text"} as tokens come, or one
        {"event": "sequences", "texts": [...], "note"} for beam search / several returned sequences; with `tools`
        (OpenAI function tools), a last {"event": "reply", "content", "tool_calls": [{"name", "arguments"}],
        "note_i18n"} when the reply holds tool calls (engine/inference/tools.py)."""
        with self.lock:
            if not self.process:
                raise WorkerError("no model loaded")
            self._send({"op": "generate", "messages": messages, "params": params,
                        **({"tools": tools} if tools else {})})
            for event in self._events():
                if event["event"] in ("token", "sequences", "reply"):
                    yield event
                elif event["event"] == "done":
                    return
                elif event["event"] == "error":
                    coded = event.get("message_i18n") or {}  # a catalogue message keeps its code for the page
                    raise WorkerError(from_dict(coded) if coded.get("code") else event["message"])

    def unload(self) -> None:
        with self.lock:
            self._stop()

    def _stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                self._send({"op": "quit"})
                self.process.wait(timeout=10)
            except Exception:
                self.process.kill()
                self.process.wait()
        self.process, self.loaded = None, None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None
