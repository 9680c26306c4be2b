"""Steady under load (issue 28): status reads never wait behind chat or training, the metrics are read from where
the last read stopped, the trainer runs at a lower CPU priority, and a chat waiting for the worker is told its
place in line, on the page (en + zh) and through the API."""
from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest

from engine.core import jobs, runs
from engine.inference.turns import TurnLine


# ---- the line ------------------------------------------------------------------------------------------
def test_the_line_serves_in_order_of_arrival_and_counts_who_is_ahead():
    line = TurnLine()
    a, b, c = line.join(), line.join(), line.join()
    assert [line.ahead(t) for t in (a, b, c)] == [0, 1, 2]
    line.leave(b)  # gave up waiting (a closed browser tab): the ones behind move up
    assert line.ahead(c) == 1
    line.leave(a)
    assert line.ahead(c) == 0 and len(line) == 1
    line.leave(c)
    line.leave(c)  # leaving twice is harmless
    assert len(line) == 0


def test_waiting_reports_each_new_place_and_returns_at_the_turn():
    line = TurnLine()
    first, second = line.join(), line.join()
    mine = line.join()
    places = []

    def serve():
        time.sleep(0.2)
        line.leave(first)
        time.sleep(0.2)
        line.leave(second)

    threading.Thread(target=serve).start()
    for ahead in line.waiting(mine, poll_s=0.05):
        places.append(ahead)
    assert places == [2, 1] and line.ahead(mine) == 0


def test_one_turn_at_a_time_under_contention():
    line, inside, most = TurnLine(), [0], [0]
    lock = threading.Lock()

    def request():
        with line.turn(poll_s=0.01):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1 and len(line) == 0


# ---- the page's chat note ------------------------------------------------------------------------------
def test_a_page_chat_shows_its_place_in_the_pages_language_then_replies(monkeypatch):
    from ui import chat_line

    monkeypatch.setattr(chat_line, "LINE", TurnLine())
    calls = []

    def handler(message, history, target, model, system, lang, *settings):
        calls.append(message)
        yield "reply", "", "note"

    holder = chat_line.LINE.join()  # a chat being answered
    for lang, words in (("en", "1 request ahead"), ("zh", "前面还有 1 个请求")):
        queued = chat_line.in_line(handler, 3, note_at=2)("hi", [], "base", "m", "", lang)
        first = next(queued)
        assert words in first[2] and first[0] is not None
        threading.Timer(0.2, chat_line.LINE.leave, [holder]).start() if lang == "zh" else None
        if lang == "en":
            queued.close()  # the browser went away: its place is given up
            assert len(chat_line.LINE) == 1 and not calls
        else:
            assert list(queued)[-1] == ("reply", "", "note")
    assert calls == ["hi"] and len(chat_line.LINE) == 0
    assert chat_line.place_text(2) == "2 requests ahead: the reply starts when they are answered"
    assert chat_line.place_text(2, "zh").startswith("前面还有 2 个请求")


# ---- metrics read from where the last read stopped ----------------------------------------------------
def test_status_reads_take_only_the_appended_metrics(tmp_path):
    from ui import follow

    run = tmp_path / "run"
    run.mkdir()
    for step in (1, 2):
        runs.append_metrics(run, {"step": step, "loss": 3.0 - step})
    last, last_eval, points = follow.latest(run)
    assert last["step"] == 2 and last_eval is None and points == 2
    tail = follow._TAILS[str(run)]
    read_to = tail.offset
    assert read_to == (run / "metrics.jsonl").stat().st_size
    runs.append_metrics(run, {"step": 2, "eval_loss": 1.5})
    runs.append_metrics(run, {"step": 3, "loss": 0.5})
    appended = (run / "metrics.jsonl").stat().st_size - read_to
    last, last_eval, points = follow.latest(run)
    assert (last["step"], last_eval["eval_loss"], points) == (3, 1.5, 3)
    assert tail.offset - read_to == appended  # the second read went on from the first one's end


# ---- the trainer's priority ----------------------------------------------------------------------------
def test_a_niced_job_runs_below_the_apps_priority(tmp_path):
    log = tmp_path / "job.log"
    process = jobs.spawn([sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"], log,
                         niceness=jobs.TRAINER_NICENESS)
    process.wait(timeout=60)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert int(log.read_text().strip()) == min(19, ours + jobs.TRAINER_NICENESS)
    assert jobs.TRAINER_NICENESS > 0


def test_the_trainer_the_app_starts_runs_at_the_lower_priority(tiny_model, workspace):
    import psutil

    from engine.core.config import RunConfig
    from engine.training import launcher

    cfg = RunConfig.from_dict({"model": tiny_model, "data": {"train": "presets/data/identity.jsonl"},
                               "train": {"max_steps": 2, "eval_steps": 0, "save_steps": 0, "max_seq_len": 64}})
    run = launcher.start(cfg)
    pid = runs.read_status(run)["pid"]
    try:
        # `nice -n N python ...` sets the priority, then becomes the trainer: wait for that exec before reading it
        trainer, deadline = psutil.Process(pid), time.time() + 60
        while trainer.name() == "nice" and time.time() < deadline:
            time.sleep(0.05)
        assert trainer.nice() == min(19, os.getpriority(os.PRIO_PROCESS, 0) + jobs.TRAINER_NICENESS)
    finally:
        deadline = time.time() + 240
        while runs.read_status(run).get("state") in runs.ACTIVE and time.time() < deadline:
            time.sleep(0.5)
    assert runs.read_status(run)["state"] == "done"


# ---- a live server: status reads are not queued behind chats, and chats are told their place -----------
@pytest.fixture()
def api_server(workspace, monkeypatch):
    import gradio as gr

    from ui import api, chat_line
    from ui.app import launch_options  # noqa: F401  (the page's module imports cleanly beside the API)
    from ui.status_routes import add_status_routes

    monkeypatch.setattr(chat_line, "LINE", TurnLine())
    with gr.Blocks() as demo:
        api.register()
    server, _, _ = demo.queue(default_concurrency_limit=4).launch(prevent_thread_lock=True, server_name="127.0.0.1",
                                                                  server_port=None, quiet=True)
    add_status_routes(server)  # as app.py does
    try:
        yield demo, chat_line.LINE
    finally:
        demo.close()


def busy_run():
    """A run that is training (this process stands in for its trainer), at step 3 with one metrics row."""
    run = runs.new_run_dir("busy")
    (run / "config.yaml").write_text("model: m\n")
    runs.update_status(run, state="running", pid=os.getpid(), step=3, max_steps=10)
    runs.append_metrics(run, {"step": 3, "loss": 1.25})
    return run


def test_status_reads_are_answered_while_chats_wait_and_each_chat_hears_its_place(api_server, workspace):
    from gradio_client import Client

    demo, line = api_server
    run = busy_run()
    url = demo.local_url
    holder = line.join()  # a chat is being answered: the next ones wait
    chatters = [Client(url, verbose=False) for _ in range(2)]
    chats = []
    for client in chatters:  # model "" fails at once when its turn comes: no model is loaded in this test
        chats.append(client.submit("base", "hi", "", 4, 0.0, 1.0, 50, 1.0, "", api_name="/chat"))
        time.sleep(0.3)
    deadline = time.time() + 30
    while len(line) < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert len(line) == 3, "both chats should be waiting in line"

    readers = [Client(url, verbose=False) for _ in range(4)]
    answers, latencies = [], []

    def read(client):
        for _ in range(3):
            began = time.perf_counter()
            answers.append(client.predict(run.name, api_name="/run_status"))
            latencies.append(time.perf_counter() - began)
        answers.append(client.predict(api_name="/list_runs"))

    threads = [threading.Thread(target=read, args=(c,)) for c in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 16 and len(line) == 3  # every read answered while both chats still wait
    status = [a for a in answers if isinstance(a, dict)]
    assert all(a["state"] == "running" and a["last"]["loss"] == 1.25 and a["points"] == 1 for a in status)
    assert all(isinstance(a, list) and a[0]["id"] == run.name for a in answers if not isinstance(a, dict))
    print(f"\nstatus reads while chats wait: max {max(latencies) * 1000:.0f} ms")

    heard = [job.status().log for job in chats]
    assert [log[0] if log else None for log in heard] == ["1 request ahead: the reply starts when it is answered",
                                                          "2 requests ahead: the reply starts when they are answered"]
    line.leave(holder)
    for job in chats:
        with pytest.raises(Exception, match="(?i)model field is empty"):
            job.result(timeout=60)
    assert len(line) == 0
    for client in chatters + readers:
        client.close()


def _get_json(url: str, opener=None) -> tuple[int, object]:
    import urllib.error
    import urllib.request

    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_plain_status_routes_answer_what_the_api_answers_while_chats_wait(api_server, workspace):
    from gradio_client import Client

    demo, line = api_server
    run = busy_run()
    base = demo.local_url.rstrip("/") + "/tuneloom"
    holder = line.join()  # a chat holds the worker: nothing queued behind it may hold up the routes
    try:
        code, status = _get_json(f"{base}/runs/{run.name}/status")
        assert code == 200 and status["state"] == "running" and status["step"] == 3
        assert status["last"] == {"step": 3, "loss": 1.25} and status["points"] == 1
        client = Client(demo.local_url, verbose=False)
        assert client.predict(run.name, api_name="/run_status") == status  # one answer, two doors
        client.close()
        code, listing = _get_json(f"{base}/runs")
        assert code == 200 and [r["id"] for r in listing] == [run.name] and listing[0]["state"] == "running"
        code, missing = _get_json(f"{base}/runs/nope/status")
        assert code == 404 and "no run named" in missing["detail"]
        code, outside = _get_json(f"{base}/runs/..%2F..%2Fetc/status")
        assert code in (404, 405) and "passwd" not in json.dumps(outside)
    finally:
        line.leave(holder)


def test_the_plain_status_routes_need_the_pages_sign_in(workspace):
    import http.cookiejar
    import urllib.parse
    import urllib.request

    import gradio as gr

    from ui.status_routes import add_status_routes

    run = runs.new_run_dir("private")
    (run / "config.yaml").write_text("model: m\n")
    runs.update_status(run, state="done", step=1, max_steps=1)
    with gr.Blocks() as demo:
        gr.Markdown("x")
    server, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True,
                                 auth=("ada", "secret"))
    add_status_routes(server)
    try:
        code, refused = _get_json(f"{url}tuneloom/runs/{run.name}/status")
        assert code == 401 and "sign in" in refused["detail"]
        assert _get_json(f"{url}tuneloom/runs")[0] == 401
        signed = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"username": "ada", "password": "secret"}).encode()
        signed.open(f"{url}login", data=form, timeout=30)
        code, status = _get_json(f"{url}tuneloom/runs/{run.name}/status", signed)
        assert code == 200 and status["state"] == "done"
    finally:
        demo.close()


def test_the_api_registers_status_reads_and_chat_without_a_concurrency_limit(api_server):
    demo, _ = api_server
    limits = {fn.api_name: fn.concurrency_limit for fn in demo.fns.values()}
    assert limits["run_status"] is None and limits["list_runs"] is None and limits["chat"] is None
    config = json.dumps(demo.config)
    assert "run_status" in config


def test_the_readmes_load_numbers_are_the_recorded_ones():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    record = (root / "bench" / "results" / "load_cpu.md").read_text()
    readme = (root / "README.md").read_text()
    paragraph = " ".join(readme[readme.index("**The app under load**"):].split("\n\n")[0].split())
    rows = {(r[0], r[1].split()[0]): r for r in (line.strip("| ").split(" | ") for line in record.splitlines())
            if r[0] in ("no run trains (control)", "a run trains")}
    assert len(rows) == 4  # both doors, with and without a run training
    for (_, door), row in rows.items():
        assert row[3] == "200 of 200", row
        for cell in (row[4], row[5]):  # p50 and p95
            assert cell in paragraph, (door, cell)
    plain_training = rows[("a run trains", "GET")]
    assert plain_training[-1].strip(" |") == "met" and "the 100 ms p95 goal is met there" in paragraph
    assert "all 200 answered" in paragraph
    places = re.findall(r"^\| \d \| ([^|]+) \|", record, re.M)
    assert sorted(p.strip() for p in places) == ["1 ahead", "2 ahead, 1 ahead", "3 ahead, 2 ahead, 1 ahead",
                                                 "none (answered first)"]
