"""Status reads that never wait: plain HTTP routes beside the Gradio API, outside its queue.

    GET /tuneloom/runs                 -> list_runs()'s answer (JSON)
    GET /tuneloom/runs/{run_id}/status -> run_status(run_id)'s answer (JSON); 404 with the reason for no such run

A call through Gradio's queue (`/gradio_api/...`, gradio_client) is joined, scheduled and streamed back as
server-sent events: on a 2-core machine with a run training, 20 clients waited seconds per call for a status that
is a small file read, against tens of milliseconds here (bench/results/load_cpu.md). Dashboards, scripts and
other machines polling many runs read these routes. They are added to the app Gradio launched
(Blocks.server_app); gradio has no public hook for a route that shares its sign-in, so `signed_in` reads the same
session cookie Gradio's own login sets (written here by hand: a few lines, kept next to their one use).
"""
from __future__ import annotations

import gradio as gr
from fastapi import HTTPException, Request

PREFIX = "/tuneloom"


def signed_in(app, request: Request) -> bool:
    """True when the app has no --auth, or the request carries the session cookie of a signed-in user."""
    if getattr(app, "auth", None) is None:
        return True
    cookie_id = app.cookie_id
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}")
    return app.tokens.get(token) is not None


def add_status_routes(app) -> None:
    """Add the status routes to the FastAPI app that `Blocks.launch(prevent_thread_lock=True)` returned."""
    from ui import api  # the same functions (and answers) as the Gradio API's /run_status and /list_runs

    def guard(request: Request) -> None:
        if not signed_in(app, request):
            raise HTTPException(status_code=401, detail="not signed in: sign in on the page first (--auth)")

    # async: answered on the server's event loop, without a hop to a worker thread; the answer is two small file
    # reads (status.json, the metrics appended since the last read), well under a millisecond
    async def run_status(run_id: str, request: Request) -> dict:
        guard(request)
        try:
            return api.run_status(run_id)
        except gr.Error as err:
            raise HTTPException(status_code=404, detail=err.message) from None

    def list_runs(request: Request) -> list[dict]:  # a worker thread: one status read per run in the workspace
        guard(request)
        return api.list_runs()

    app.add_api_route(f"{PREFIX}/runs/{{run_id}}/status", run_status, methods=["GET"])
    app.add_api_route(f"{PREFIX}/runs", list_runs, methods=["GET"])
