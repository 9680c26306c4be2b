"""Launch-time safety checks for the web server (import-light)."""
from __future__ import annotations

import os
from pathlib import Path

from engine.core.messages import Message

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class LaunchRefused(SystemExit):
    pass


def parse_auth(auth: str | None) -> list[tuple[str, str]]:
    """`user:password`, or a path to a file with one `user:password` per line."""
    if not auth:
        return []
    path = Path(auth)
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else [auth]
    pairs = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            where = f"{path}, line {number}" if path.is_file() else "--auth"
            raise LaunchRefused(f"{where}: expected user:password")
        pairs.append((user, password))
    return pairs


def check_launch(host: str, share: bool, auth: str | None, what: str = "the app") -> list[tuple[str, str]]:
    """Refuse to expose the app (or a model server) beyond this machine without authentication."""
    pairs = parse_auth(auth)
    exposed = share or host not in LOCAL_HOSTS
    if exposed and not pairs:
        how = "a share link" if share else f"--host {host}"
        raise LaunchRefused(f"refusing to start: {how} makes {what} reachable from other machines, "
                            "so it needs --auth user:password (or --auth FILE with one user:password per line)")
    return pairs


# ---- paths that arrive through the web server ---------------------------------------------------------
# A page or API client names files and models by path. Those resolve only inside what the user meant to
# share with the server: the workspace (uploads, runs, prepared models), the project's presets, and the
# folders the operator lists. The command line keeps full local access (it never comes through here).
DATA_DIRS_ENV, MODEL_DIRS_ENV = "TUNELOOM_DATA_DIRS", "TUNELOOM_MODEL_DIRS"


def _env_dirs(name: str) -> list[Path]:
    import os

    return [Path(p).expanduser().resolve() for p in os.environ.get(name, "").split(os.pathsep) if p.strip()]


def web_roots(kind: str) -> list[Path]:
    """The folders a path from the web may point into: kind `data` (training and evaluation files) or
    `model` (base models, teachers)."""
    from engine.core.workspace import PROJECT_ROOT, home, models_dir, runs_dir

    workspace = [home() / "uploads", runs_dir()]
    if kind == "model":
        return workspace + [models_dir()] + _env_dirs(MODEL_DIRS_ENV)
    return workspace + [PROJECT_ROOT / "presets"] + _env_dirs(DATA_DIRS_ENV)


def web_path_problem(value: str, kind: str, key: str) -> str | None:
    """Why `value` (a path from the web, for config key `key`) may not be used, or None when it may.

    Relative paths are read as the trainer reads them (the project folder, then the workspace). Links
    are followed before checking, so a link inside a root that points outside is refused too. The reason
    names the path as given and the allowed folders, never anything read from the file."""
    from engine.core.workspace import PROJECT_ROOT, home

    value = str(value or "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [PROJECT_ROOT / path, home() / path]
    roots = [root.resolve() for root in web_roots(kind)]
    for candidate in candidates:
        resolved = candidate.resolve()
        if any(resolved == root or root in resolved.parents for root in roots):
            return None
    env = DATA_DIRS_ENV if kind == "data" else MODEL_DIRS_ENV
    allowed = "uploads, runs, presets" if kind == "data" else "runs, prepared models"
    return Message("config.outside", field=key, value=value, allowed=allowed, env=env)


# set by `app.py --allow-user-code`: runs started from the page may use the user's own Python reward files
ALLOW_USER_CODE = "TUNELOOM_ALLOW_USER_CODE"


def web_config_problems(raw: dict) -> list[str]:
    """Every path in a config from the page or the API that points outside the web roots."""
    from engine.core.model_source import is_local_path
    from engine.core.workspace import ALIASES

    raw = raw if isinstance(raw, dict) else {}

    def section(name: str) -> dict:
        return raw.get(name) if isinstance(raw.get(name), dict) else {}

    found = []

    def model_like(value, key):  # an alias or a Hub id is not a path; a run id resolves under runs/
        value = str(value or "").strip()
        if value and value not in ALIASES and is_local_path(value):
            found.append(web_path_problem(value, "model", key))

    model_like(raw.get("model"), "model")
    model_like(section("distill").get("teacher"), "distill.teacher")
    train = section("data").get("train")
    train = None if str(train or "").startswith("hub:") else train  # a Hub dataset id is not a path
    for key, value, kind in (("data.train", train, "data"),
                             ("data.replay", section("data").get("replay"), "data"),
                             ("train.start_from", section("train").get("start_from"), "model"),
                             ("train.accelerate_config", section("train").get("accelerate_config"), "data")):
        found.append(web_path_problem(value, kind, key))
    if os.environ.get(ALLOW_USER_CODE) != "1":  # the page never runs user code unless the app was told it may
        from engine.core.grpo_settings import user_code_problems

        found += user_code_problems(section("grpo").get("rewards"))
    return [problem for problem in found if problem]
