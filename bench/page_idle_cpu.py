"""What an open, idle page costs the machine: CPU of Chromium's renderer and of the app, per tab.

    python bench/page_idle_cpu.py [--before PATH] [--seconds 15] [--out bench/results/page_idle_cpu.md]

The page is opened in the system Chromium (headless), every tab is visited once (Gradio draws a tab's components on
its first visit and keeps them), then the page sits on each tab for `--seconds` while the CPU time of the renderer
processes and of `app.py` is read from /proc (ps). Nothing trains meanwhile, so what is measured is the page's own
upkeep: its timers' events. `--before PATH` measures another checkout of the app (e.g. a `git worktree` of an
earlier commit) in the same run, with the same browser and Python, for a ratio.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.app import free_port  # noqa: E402
from bench.machine import cpu_flags_line, describe  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TABS = ["tab-data", "tab-train", "tab-chat", "tab-eval", "tab-compare", "tab-export", "tab-sweep"]


def cpu_seconds() -> dict[str, int]:
    """CPU seconds so far of the renderer processes and of the app (ps counts whole seconds)."""
    listing = subprocess.run(["ps", "-eo", "times,args", "--no-headers"], capture_output=True, text=True).stdout
    total = {"renderer": 0, "app": 0}
    for line in listing.splitlines():
        seconds, args = line.split(None, 1)
        kind = "renderer" if "chromium" in args and "--type=renderer" in args else "app" if "app.py" in args else None
        if kind:
            total[kind] += int(seconds)
    return total


@contextmanager
def app_at(root: Path):
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="tuneloom-idle-"))
    env = {**os.environ, "TUNELOOM_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False",
           "TUNELOOM_MODELS": os.environ.get("TUNELOOM_MODELS", str(ROOT / ".cache" / "models"))}
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait()


def measure(root: Path, seconds: float) -> dict[str, dict[str, float]]:
    """Per tab: the renderer's and the app's share of one core while the page sits there."""
    from playwright.sync_api import sync_playwright

    shares = {}
    with app_at(root) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.locator("#data-message").get_by_text("ready to train").wait_for(timeout=180_000)
        for tab in TABS:
            page.locator(f"#{tab}-button").click()
            time.sleep(2)
        for tab in TABS:
            page.locator(f"#{tab}-button").click()
            time.sleep(3)  # the tab's own refresh on opening is not upkeep
            start, began = cpu_seconds(), time.perf_counter()
            time.sleep(seconds)
            end, elapsed = cpu_seconds(), time.perf_counter() - began
            shares[tab] = {kind: (end[kind] - start[kind]) / elapsed for kind in end}
            print(root.name, tab, {k: f"{v:.0%}" for k, v in shares[tab].items()}, flush=True)
        browser.close()
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout of the app, measured first for a ratio")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "page_idle_cpu.md")
    args = parser.parse_args()
    before = measure(args.before, args.seconds) if args.before else None
    after = measure(ROOT, args.seconds)
    commit = lambda root: subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],  # noqa: E731
                                         capture_output=True, text=True).stdout.strip()
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [f"# An idle page's CPU ({date.today().isoformat()})", "",
             f"Machine: {describe()}. {cpu_flags_line()}. {chromium}, headless.", "",
             "Reproduce: `python bench/page_idle_cpu.py" + (" --before PATH` (PATH: a `git worktree` of the earlier "
                                                            "commit)" if before else "`"), "",
             f"Every tab visited once, then {args.seconds:g} s on each with nothing training; CPU time from `ps` "
             "(whole seconds, so about ±7 percentage points at 15 s), as a share of one core.", ""]
    if before:
        lines += [f"| Tab | renderer, before ({commit(args.before)}) | renderer, now | app, before | app, now |",
                  "|---|---|---|---|---|"]
        lines += [f"| {tab[4:]} | {before[tab]['renderer']:.0%} | {after[tab]['renderer']:.0%} | "
                  f"{before[tab]['app']:.0%} | {after[tab]['app']:.0%} |" for tab in TABS]
        mean = lambda shares: sum(s["renderer"] for s in shares.values()) / len(shares)  # noqa: E731
        lines += ["", f"Mean over the tabs: renderer {mean(before):.0%} of a core before, {mean(after):.0%} now."]
    else:
        lines += ["| Tab | renderer | app |", "|---|---|---|"]
        lines += [f"| {tab[4:]} | {after[tab]['renderer']:.0%} | {after[tab]['app']:.0%} |" for tab in TABS]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
