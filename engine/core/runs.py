"""The run folder contract, read and written without torch (the UI and the trainer share it).

runs/<id>/config.yaml  status.json  metrics.jsonl  train.log  checkpoints/  adapter/ | model/
Writes of JSON and YAML are atomic (temp file + rename); metrics are append-only lines and a
torn last line is ignored on read.
"""
from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.jobs import ACTIVE, STOPPABLE, WITH_PROCESS, RunState
from engine.core.messages import Message, as_dict
from engine.core.workspace import data_display_name, runs_dir, safe_name

STOP_FILE = "STOP"
START_FILE = "start.json"  # how a run that started from another was loaded (engine/training/continual.py)


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno != errno.ENOSPC or not path.is_file():
            raise
        # Disk full: a new file gets no blocks, but the old file's blocks are still ours. Rewrite it
        # in place so a failure can still be recorded (not atomic; the reader tolerates a bad file).
        with open(path, "r+", encoding="utf-8") as handle:
            handle.write(text)
            handle.truncate()
            handle.flush()
        return
    os.replace(tmp, path)


def write_json(path: Path, obj, reserve: int = 0) -> None:
    """`reserve`: pad the file with trailing blanks (valid JSON) to a multiple of this many bytes, so that a
    later, longer record (a failure with its advice) can still be written in place when the disk is full."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    if reserve:
        text += " " * (-len(text.encode("utf-8")) % reserve)
    write_atomic(path, text)


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def new_run_dir(name: str = "") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = runs_dir()
    run_id = f"{stamp}-{safe_name(name)}" if name else stamp
    path, n = base / run_id, 1
    while path.exists():
        n += 1
        path = base / f"{run_id}-{n}"
    path.mkdir(parents=True)
    return path


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        import psutil

        proc = psutil.Process(pid)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except Exception:
        return False


STATUS_RESERVE = 16384  # a run's failure record (error, advice, their codes) fits in the blocks its status holds


def update_status(run_dir: Path, **fields) -> dict:
    path = Path(run_dir) / "status.json"
    status = read_json(path, {}) or {}
    status.update(fields)
    status["updated_at"] = time.time()
    write_json(path, status, reserve=STATUS_RESERVE)
    return status


def error_fields(error) -> dict:
    """status.json's `error` (the English text) and `error_i18n` (its catalogue code and parameters, which the
    page words in its language; it belongs to the error only while its `message` is that text)."""
    return {"error": str(error), "error_i18n": as_dict(error)}


def job_status(path: Path, gone: str) -> dict:
    """A background job's status file (a run's, an evaluation's, a server's), with an active job whose
    process is gone reported as failed: the catalogue message `gone` (with {pid}) says so, unless the job
    recorded its own error."""
    status = read_json(path, {}) or {}
    if status.get("state") in WITH_PROCESS and status.get("pid") and not pid_alive(status["pid"]):
        error = status.get("error") or (Message(gone, pid=status["pid"]) if gone else "")
        status = {**status, "state": RunState.FAILED, **(error_fields(error) if error != status.get("error") else {})}
    return status


def read_status(run_dir: Path) -> dict:
    """status.json, with an active run whose process is gone reported as failed."""
    return job_status(Path(run_dir) / "status.json", "run.gone")


def _row_kind(row: dict) -> str:
    return "eval" if "eval_loss" in row and "loss" not in row else "train"


@dataclass
class MetricsTail:
    """Follows metrics.jsonl by byte offset; only complete lines are returned.

    A resumed run first cuts the file back to its checkpoint's step (`keep_metrics_through`, a new
    file): the tail notices the new file and reads it again from the start. `rows` still keeps one
    row per step (of each kind, train and eval) for files written before that: a row whose step is
    not after the last one seen replaces the rows from that step on. `rewound` turns True in both
    cases, so a chart redraws from `rows`.
    """

    path: Path
    offset: int = 0
    rows: list = field(default_factory=list)
    rewound: bool = False
    _last: dict = field(default_factory=dict)
    _inode: int | None = None

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as handle:
                inode = os.fstat(handle.fileno()).st_ino
                replaced = inode != self._inode or os.fstat(handle.fileno()).st_size < self.offset
                if self._inode is not None and replaced:
                    self.offset, self.rows, self._last, self.rewound = 0, [], {}, True  # rewritten on resume
                self._inode = inode
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        new = []
        for line in chunk[: end + 1].splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a torn or corrupt line never breaks the reader
            if not isinstance(row, dict):
                continue
            new.append(row)
            kind, step = _row_kind(row), row.get("step")
            last = self._last.get(kind)
            if isinstance(step, (int, float)) and last is not None and step <= last:
                self.rows = [r for r in self.rows if _row_kind(r) != kind or not r.get("step", -1) >= step]
                self.rewound = True
            self.rows.append(row)
            if isinstance(step, (int, float)):
                self._last[kind] = step
        return new


def read_metrics(run_dir: Path) -> list[dict]:
    tail = MetricsTail(Path(run_dir) / "metrics.jsonl")
    tail.poll()
    return tail.rows


def append_metrics(run_dir: Path, row: dict) -> None:
    line = (json.dumps(row) + "\n").encode("utf-8")
    with open(Path(run_dir) / "metrics.jsonl", "a+b") as handle:
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = b"\n" + line  # a line torn by a killed trainer stays alone (and is skipped)
        handle.write(line)
        handle.flush()


def keep_metrics_through(run_dir: Path, step: int) -> int:
    """Cut metrics.jsonl back to the rows of steps <= `step` (a resumed run logs the later ones again), as a
    new file. Returns how many rows were dropped."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = read_metrics(run_dir) if path.is_file() else []
    kept = [r for r in rows if isinstance(r.get("step"), (int, float)) and r["step"] <= step]
    if path.is_file():
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
    return len(rows) - len(kept)


def best_eval_loss(rows: list[dict]) -> float | None:
    losses = [r["eval_loss"] for r in rows if isinstance(r.get("eval_loss"), (int, float))]
    return min(losses) if losses else None


def run_facts(cfg) -> dict:
    """What the run list shows about a run's config, recorded in its status when the run is created."""
    return {"method": cfg.method.name, "data_file": data_display_name(cfg.data.train), "model": cfg.model}


def _facts_from_config(path: Path) -> dict:
    """run_facts for a run created before they were recorded in its status (reads its config.yaml)."""
    import yaml

    try:
        raw = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError):
        return {}
    method, data = raw.get("method") or {}, raw.get("data") or {}
    return {"method": method.get("name"), "data_file": data_display_name(str(data.get("train") or "")),
            "model": raw.get("model")}


def list_runs() -> list[dict]:
    """Every run in the workspace, newest first: its status, what it trains on and its final numbers."""
    found = []
    for path in runs_dir().iterdir():
        if path.name.startswith(".") or not (path / "config.yaml").is_file():
            continue  # a folder being deleted, or not a run
        status = read_status(path)
        facts = {k: status.get(k) for k in ("method", "data_file", "model")}
        if not facts["method"]:
            facts = _facts_from_config(path)
        found.append({"id": path.name, "path": str(path), "state": status.get("state", "unknown"),
                      "created_at": status.get("created_at", path.stat().st_mtime),
                      "step": status.get("step"), "max_steps": status.get("max_steps"),
                      "final_loss": status.get("final_loss"), "final_eval_loss": status.get("final_eval_loss"),
                      "best_eval_loss": status.get("best_eval_loss"),
                      "stopped_early": bool(status.get("stopped_early")),
                      "reproduces": status.get("reproduces"), "error": status.get("error"),
                      "error_i18n": status.get("error_i18n"), **facts})
    return sorted(found, key=lambda r: r["created_at"], reverse=True)


# ---- what a user may do with a run now (the page's buttons, the API and the CLI ask the same) -----
def can_stop(status: dict) -> bool:
    return status.get("state") in STOPPABLE


def resume_refusal(run_dir: Path, status: dict | None = None) -> str | None:
    """Why this run cannot be resumed now, or None when it can (it is not active and has a checkpoint)."""
    status = read_status(run_dir) if status is None else status
    state = status.get("state")
    if state in ACTIVE:
        return Message("run.active_resume", run=Path(run_dir).name, state=state)
    if state == RunState.DONE and not status.get("stopped_early"):
        return Message("run.nothing_to_resume", run=Path(run_dir).name)
    if last_checkpoint(run_dir) is None:
        return Message("run.no_checkpoint", run=Path(run_dir).name)
    return None


def delete_refusal(run_dir: Path) -> str | None:
    """Why this run's folder may not be deleted now (its trainer, an evaluation or a server still uses it)."""
    status = read_status(run_dir)
    if status.get("state") in ACTIVE:
        return Message("run.active_delete", run=Path(run_dir).name, state=status["state"])
    for job, code in (("eval/status.json", "run.eval_running"), ("serve.json", "run.server_running")):
        other = job_status(Path(run_dir) / job, "")
        if other.get("state") in WITH_PROCESS:
            return Message(code, run=Path(run_dir).name)
    return None


def delete_run(run_dir: Path) -> None:
    """Remove a run folder for good; raises ValueError when it is in use (delete_refusal)."""
    import shutil

    refusal = delete_refusal(run_dir)
    if refusal:
        raise ValueError(refusal)
    trash = Path(run_dir).with_name(f".deleting-{Path(run_dir).name}")
    os.replace(run_dir, trash)  # gone from the list at once, even if removing the files takes a while
    shutil.rmtree(trash, ignore_errors=True)


def log_tail(run_dir: Path, lines: int = 30) -> str:
    try:
        with open(Path(run_dir) / "train.log", "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # tqdm writes carriage returns; keep only the last state of each line
    text = "\n".join(part.split("\r")[-1] for part in text.split("\n"))
    return "\n".join(text.splitlines()[-lines:])


def last_checkpoint(run_dir: Path) -> Path | None:
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    steps = [(int(p.name.split("-")[-1]), p) for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    complete = [(s, p) for s, p in steps if (p / "trainer_state.json").is_file()]
    return max(complete)[1] if complete else None


# ---- a run as an input to another (results, continual learning, distillation) ----------------------
def resolve_run(run: str | Path) -> Path:
    """A run folder from a path, a bare run id, or `runs/<id>` (relative to the workspace)."""
    path = Path(run)
    if path.is_absolute() or path.exists():
        return path
    for candidate in (runs_dir() / path, runs_dir().parent / path):
        if candidate.is_dir():
            return candidate
    return path


def is_run_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / "config.yaml").is_file() and (path / "status.json").is_file()


def result_dir(run_dir: Path) -> Path:
    """The folder holding what a run produced: adapter/ or model/."""
    run_dir = Path(run_dir)
    for name in ("adapter", "model"):
        if (run_dir / name).is_dir():
            return run_dir / name
    raise FileNotFoundError(f"{run_dir.name} has no result yet (no adapter/ or model/); "
                            "wait for the run to finish or stop it to save the current step")


def earlier_run(run: str | Path):
    """(RunConfig, result folder) of an earlier run; clear errors when it is not usable."""
    from engine.core.config import RunConfig

    run_dir = resolve_run(run)
    if not (run_dir / "config.yaml").is_file():
        raise ValueError(f"{run_dir} is not a run folder (no config.yaml); give a folder under runs/")
    return RunConfig.load(run_dir / "config.yaml"), result_dir(run_dir)


def result_base(run_dir: str | Path, cfg) -> str:
    """The base an adapter of this run applies to: the merged earlier result when it started from one."""
    plan = read_json(Path(run_dir) / START_FILE)
    return plan.get("base") or cfg.model if plan else cfg.model
