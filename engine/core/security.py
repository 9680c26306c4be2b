"""Launch-time safety checks for the web server (import-light)."""
from __future__ import annotations

from pathlib import Path

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
