"""The app under load: status reads while a run trains, and chats waiting their turn.

    python bench/load.py [--clients 20] [--calls 10] [--chats 4] [--steps 400] [--out bench/results/load_cpu.md]

1. Starts `python app.py` on loopback in a fresh workspace holding one finished run; as a control, the reads of
   step 2 first go to that run with nothing training. Then, through the API (`/start_training`), a run of the
   default model (LoRA, quickstart data) long enough to keep training through the measurement.
2. Once the run has logged a step: `--clients` clients, each in its own thread, read the run's status `--calls`
   times one after another, through each of the two doors: gradio_client's `/run_status` (Gradio's queue) and
   the plain route `GET /tuneloom/runs/{id}/status` (ui/status_routes.py, outside the queue). The latency of every
   call is recorded as the client sees it (loopback). All must be answered; the goal is p95 < 100 ms.
3. `--chats` clients send `/chat` (base model, a few tokens) at once; each records the places it was told while
   waiting ("N requests ahead", gradio_client `job.status().log`) and its reply.
4. The trainer's and the app's CPU priorities (nice values) are recorded, and the run is stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_flags_line, describe  # noqa: E402
from engine.core.jobs import RunState  # noqa: E402

os.environ.setdefault("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry thread in each of the clients
AHEAD = re.compile(r"^(\d+) requests? ahead")
# the two ways to read a run's status, as the results table names them
DOORS = {"gradio": "gradio_client /run_status (Gradio's queue)",
         "plain": "GET /tuneloom/runs/{id}/status (outside the queue)"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(home: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, TUNELOOM_HOME=str(home), GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"the app did not answer within 180 s; see {log}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class PlainClient:
    """A client of the plain status route: one HTTP GET per read, answered outside Gradio's queue."""

    def __init__(self, url: str):
        self.url = url.rstrip("/") + "/tuneloom/runs/{}/status"

    def predict(self, run_id: str, api_name: str) -> dict:
        with urllib.request.urlopen(self.url.format(run_id), timeout=60) as answer:
            return json.loads(answer.read())

    def close(self) -> None:
        pass


def status_reads(url: str, run_id: str, clients: int, calls: int, door: str = "gradio") -> dict:
    """Every client's `calls` status-read latencies (ms), in threads started together; `door` "gradio" reads
    `/run_status` with gradio_client, "plain" reads the plain route."""
    from gradio_client import Client

    # connected before the clock starts
    made = [Client(url, verbose=False) if door == "gradio" else PlainClient(url) for _ in range(clients)]
    latencies: list[float] = []
    failures: list[str] = []
    start = threading.Barrier(clients)
    lock = threading.Lock()

    def one(client) -> None:
        start.wait()
        for _ in range(calls):
            began = time.perf_counter()
            try:
                answer = client.predict(run_id, api_name="/run_status")
                live = (RunState.RUNNING, RunState.QUEUED, RunState.DONE)
                assert answer["run"] == run_id and answer["state"] in live, answer["state"]
            except Exception as err:  # recorded: every call must be answered
                with lock:
                    failures.append(repr(err)[:200])
                continue
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=one, args=(c,)) for c in made]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    for client in made:
        client.close()
    return {"latencies_ms": latencies, "failures": failures, "wall_s": wall, "calls": clients * calls}


def chats(url: str, count: int) -> list[dict]:
    """`count` /chat calls submitted at once: the places each was told while waiting, its reply and its time."""
    from gradio_client import Client

    made = [Client(url, verbose=False) for _ in range(count)]
    jobs = []
    for client in made:
        jobs.append((client.submit("base", "Say hello.", "", 8, 0.0, 1.0, 50, 1.0, "smollm2-135m-instruct",
                                   api_name="/chat"), time.perf_counter()))
        time.sleep(0.05)  # a definite order of arrival
    seen: list[list[int]] = [[] for _ in jobs]
    while not all(job.done() for job, _ in jobs):
        for index, (job, _) in enumerate(jobs):
            log = job.status().log
            match = AHEAD.match(log[0]) if log else None
            if match and (not seen[index] or seen[index][-1] != int(match.group(1))):
                seen[index].append(int(match.group(1)))
        time.sleep(0.02)
    results = []
    for index, (job, began) in enumerate(jobs):
        try:
            reply = job.result()
        except Exception as err:
            reply = f"ERROR {err!r}"[:200]
        results.append({"order": index + 1, "places": seen[index], "reply": reply,
                        "seconds": time.perf_counter() - began})
    for client in made:
        client.close()
    return results


def nice_of(pid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--steps", type=int, default=400, help="the run's max_steps (it is stopped at the end)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "load_cpu.md"))
    args = parser.parse_args()
    from gradio_client import Client

    home = Path(tempfile.mkdtemp(prefix="tuneloom-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    idle_run = finished_run(home)  # a control: the same reads with no run training
    app = start_app(home, port, home / "app.log")
    try:
        api = Client(url, verbose=False)
        for _ in range(3):  # the app's first calls import and build what later ones reuse: not measured
            api.predict(idle_run, api_name="/run_status")
            api.predict(api_name="/list_runs")
        idle = {door: status_reads(url, idle_run, args.clients, args.calls, door) for door in DOORS}
        config = {"model": "smollm2-135m-instruct", "name": "load", "data": {"train": "presets/data/identity.jsonl"},
                  "method": {"name": "lora"}, "train": {"max_steps": args.steps, "eval_steps": 0, "save_steps": 0}}
        run_id = api.predict(json.dumps(config), api_name="/start_training")
        deadline = time.time() + 600
        while time.time() < deadline:
            status = api.predict(run_id, api_name="/run_status")
            if status["state"] == RunState.RUNNING and status["points"] >= 1:
                break
            if status["state"] not in (RunState.QUEUED, RunState.RUNNING):
                raise RuntimeError(f"the run ended before the measurement: {status['state']} {status['error']}")
            time.sleep(1)
        trainer_pid = status["status"]["pid"]
        load_before = os.getloadavg()
        reads = {door: status_reads(url, run_id, args.clients, args.calls, door) for door in DOORS}
        talked = chats(url, args.chats)
        during = api.predict(run_id, api_name="/run_status")
        trainer_nice, app_nice = nice_of(trainer_pid), nice_of(app.pid)
        load_after = os.getloadavg()
        api.predict(run_id, api_name="/stop_training")
        api.close()
    finally:
        app.terminate()
        app.wait(timeout=60)
    write(args, idle, reads, talked, during, trainer_nice, app_nice, load_before, load_after)
    answered = all(len(r["latencies_ms"]) == r["calls"] for r in reads.values()) and \
        all(not c["reply"].startswith("ERROR") for c in talked)
    return 0 if answered else 1


def finished_run(home: Path) -> str:
    """A finished run's folder (status and 200 metrics rows), for the reads of the control."""
    from engine.core import runs

    os.environ["TUNELOOM_HOME"] = str(home)
    run = runs.new_run_dir("finished")
    (run / "config.yaml").write_text("model: smollm2-135m-instruct\n")
    runs.update_status(run, state=RunState.DONE, step=200, max_steps=200)
    for step in range(1, 201):
        runs.append_metrics(run, {"step": step, "loss": 2.0 / step})
    return run.name


def row(label: str, door: str, args, reads: dict) -> str:
    lat = reads["latencies_ms"]
    p50, p95 = (percentile(lat, 0.5), percentile(lat, 0.95)) if lat else (float("nan"),) * 2
    return (f"| {label} | {DOORS[door]} | {args.clients} x {args.calls} | {len(lat)} of {reads['calls']} | "
            f"{p50:.1f} ms | "
            f"{p95:.1f} ms | {max(lat) if lat else float('nan'):.1f} ms | {reads['wall_s']:.1f} s | "
            f"{'met' if lat and p95 < 100 else 'NOT met'} |")


def write(args, idle, reads, talked, during, trainer_nice, app_nice, load_before, load_after) -> None:
    lines = [
        f"# The app under load ({date.today().isoformat()})", "",
        f"Machine: {describe()}. {cpu_flags_line()}.",
        f"Load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in load_before)} before the measurement, "
        f"{'/'.join(f'{x:.1f}' for x in load_after)} after (a machine shared with other work).",
        f"While measured, a run trained (default model, LoRA, quickstart data; at step {during['step']} of "
        f"{during['max_steps']} when the chats ended) in a process at nice {trainer_nice} against the app's "
        f"{app_nice} (engine/core/jobs.py TRAINER_NICENESS).",
        "", "Reproduce: `python bench/load.py`", "",
        "## Status reads while a run trains", "",
        "| while | door | clients x calls | answered | p50 | p95 | max | wall | goal p95 < 100 ms |",
        "|---|---|---|---|---|---|---|---|---|",
        *(row("no run trains (control)", door, args, idle[door]) for door in DOORS),
        *(row("a run trains", door, args, reads[door]) for door in DOORS),
        "",
        "Latency of each call as its client sees it (loopback): gradio_client from submit to result; the plain "
        "route from request to parsed JSON (urllib)."
        + "".join(f" Failures ({door}): {r['failures'][:3]}" for door, r in reads.items() if r["failures"]),
        "", f"## {args.chats} concurrent /chat calls (base model, 8 new tokens)", "",
        "| submitted | places told while waiting | seconds to reply | reply |", "|---|---|---|---|",
    ]
    for chat in talked:
        places = ", ".join(f"{n} ahead" for n in chat["places"]) or "none (answered first)"
        reply = chat["reply"].replace("|", "/").replace("\n", " ")[:60]
        lines.append(f"| {chat['order']} | {places} | {chat['seconds']:.1f} | {reply} |")
    lines += ["", "Submitted 50 ms apart from four clients; the server may receive them in another order, which is the "
              "order of the line. Places come from the API's log messages (\"2 requests ahead\"; ui/chat_line.py); "
              "the page shows the same line in its chat note, in its language."]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
