"""The page as a user meets it at 1280x800, light and dark (issue 18): what matters stays in view, nothing
overflows the page sideways, the data the run will use is named as uploaded on the Train tab and survives a
reload, Start refuses what the Data tab refuses (same words), and a run shows its estimate beside its measured
peak in one unit. Real app, real Chromium; screenshots in /tmp/tuneloom-shots/page-*.png.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from app_server import ROOT, running_app
from test_e2e_browser import ARGS, BAD_FILE, CHROMIUM, SHOTS, pick, set_number, settled

pytestmark = pytest.mark.browser  # skipped without Chromium, failed under CI=true (conftest.py)
VIEW = {"width": 1280, "height": 800}
TABS = ("Data", "Train", "Chat", "Evaluate", "Compare", "Export")


def open_page(pw, url):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_page(viewport=VIEW)
    page.set_default_timeout(60_000)
    page.goto(url)
    page.get_by_text("Tuneloom").first.wait_for()
    return browser, page


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=re.compile(name)).click()


def set_theme(page, theme: str) -> None:
    page.locator("#theme").get_by_text(re.compile("Dark" if theme == "dark" else "Light")).click()
    page.wait_for_function(f"document.body.classList.contains('dark') === {'true' if theme == 'dark' else 'false'}")


def no_sideways_overflow(page, where: str) -> None:
    width, view = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= view, f"{where}: the page is {width} px wide in a {view} px window (horizontal overflow)"


def in_view(page, elem_id: str, where: str) -> None:
    box = page.locator(f"#{elem_id}").bounding_box()
    assert box is not None, f"{where}: #{elem_id} is not shown"
    assert box["y"] >= 0 and box["y"] + box["height"] <= VIEW["height"] and box["x"] + box["width"] <= VIEW["width"], \
        f"{where}: #{elem_id} is outside the 1280x800 window: {box}"


def data_file(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def wide_csv(tmp_path: Path) -> Path:
    """Alpaca rows with many long extra columns: the first-rows table is wider than the page."""
    import csv

    path = tmp_path / "wide table.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["instruction", "input", "output"] + [f"extra_column_{i}" for i in range(14)])
        for r in range(4):
            writer.writerow([f"Question {r}: what is the capital of country {r}?", "", f"City {r}, said at length."]
                            + [f"value-{r}-{i}-" + "x" * 30 for i in range(14)])
    return path


def test_start_in_view_and_nothing_overflows_in_light_and_dark(tmp_path):
    """At 1280x800 the Train tab's summary (model, method, data, fit, Start/Stop) stays in view wherever the tab is
    scrolled, no tab makes the page wider than the window (a wide data table included), and the light/dark
    choice is kept across a reload."""
    from playwright import sync_api as playwright_api
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(tmp_path / "home") as url, playwright_api.sync_playwright() as pw:
        browser, page = open_page(pw, url)
        page.locator("#upload input[type=file]").set_input_files(str(wide_csv(tmp_path)))
        page.locator("#data-message").get_by_text("Read wide table.csv: ready to train").wait_for(timeout=90_000)
        for theme in ("light", "dark"):
            set_theme(page, theme)
            for name in TABS:
                tab(page, name)
                settled(page)
                no_sideways_overflow(page, f"{theme}, {name} tab")
                if name == "Chat" and theme == "light":  # Unload says what it did beside the button
                    page.locator("#unload").click()
                    note = page.locator("#unload-note")
                    note.get_by_text("Unloaded").wait_for()
                    button, said = page.locator("#unload").bounding_box(), note.bounding_box()
                    assert abs(said["y"] - button["y"]) < 40 and said["x"] > button["x"], (button, said)
                page.screenshot(path=str(SHOTS / f"page-{theme}-{name.lower()}.png"))
                if name == "Train":
                    page.locator("#summary-data").get_by_text("wide table.csv").wait_for()
                    in_view(page, "start", f"{theme}, Train tab (top)")
                    in_view(page, "run-summary", f"{theme}, Train tab (top)")
                    page.mouse.wheel(0, 5000)  # to the run history at the bottom
                    settled(page)
                    in_view(page, "start", f"{theme}, Train tab (scrolled down)")
                    in_view(page, "stop", f"{theme}, Train tab (scrolled down)")
                    in_view(page, "run-summary", f"{theme}, Train tab (scrolled down)")
                    page.screenshot(path=str(SHOTS / f"page-{theme}-train-scrolled.png"))
                    page.mouse.wheel(0, -5000)
        # the progress bar's fill is a colour of its own (it once took the memory bar's near-white background)
        fill = page.evaluate("""() => { const d = document.createElement('div'); d.className = 'tl-progress';
            d.innerHTML = "<div class='tl-bar' style='width:50%'></div>"; document.body.appendChild(d);
            const c = getComputedStyle(d.firstChild).backgroundImage; d.remove(); return c; }""")
        assert "gradient" in fill, fill
        page.reload()
        page.get_by_text("Tuneloom").first.wait_for()
        page.wait_for_function("document.body.classList.contains('dark')")  # the choice was kept
        browser.close()


def test_the_data_is_named_as_uploaded_kept_on_reload_and_checked_by_start(tmp_path):
    """Train names the uploaded file as the user named it (not the stored name) with format, rows and trained tokens;
    the choice survives a reload; Start refuses a file the Data tab refuses, with the Data tab's words, and starts
    nothing."""
    from playwright import sync_api as playwright_api
    SHOTS.mkdir(parents=True, exist_ok=True)
    mine = data_file(tmp_path, "My answers (v2).jsonl", [{"instruction": f"Say {i}", "output": f"{i} it is."}
                                                         for i in range(6)])
    with running_app(tmp_path / "home") as url, playwright_api.sync_playwright() as pw:
        browser, page = open_page(pw, url)
        page.locator("#upload input[type=file]").set_input_files(str(mine))
        page.locator("#data-message").get_by_text("Read My answers (v2).jsonl: ready").wait_for(timeout=90_000)
        stored = list((tmp_path / "home" / "uploads").glob("*/*.jsonl"))
        assert [p.name for p in stored] == ["My-answers-v2.jsonl"]  # stored under a file-safe name ...
        assert page.locator("#data-file input, #data-file textarea").first.input_value() == "My answers (v2).jsonl"
        tab(page, "Train")
        summary = page.locator("#summary-data")
        summary.get_by_text(re.compile(r"My answers \(v2\)\.jsonl · .* trained tokens")).wait_for()  # ... as uploaded
        assert re.search(r"alpaca · 6 rows · \d+ trained tokens", summary.inner_text()), summary.inner_text()
        assert "My-answers-v2" not in page.locator("#train-summary").inner_text()
        page.screenshot(path=str(SHOTS / "page-train-data.png"))

        # a reload: the same data, named the same, on both tabs
        page.reload()
        page.get_by_text("Tuneloom").first.wait_for()
        page.locator("#data-message").get_by_text("Read My answers (v2).jsonl: ready").wait_for(timeout=90_000)
        assert page.locator("#data-file input, #data-file textarea").first.input_value() == "My answers (v2).jsonl"
        tab(page, "Train")
        summary.get_by_text(re.compile(r"My answers \(v2\)\.jsonl · .* trained tokens")).wait_for()

        # a file the Data tab refuses: Start refuses it with the same message, and no run is made
        tab(page, "Data")
        page.locator("#upload input[type=file]").set_input_files(str(BAD_FILE))
        refusal = page.locator("#data-message .tl-error")
        refusal.wait_for(timeout=90_000)
        words = refusal.text_content()
        assert "line 2" in words and "output" in words
        tab(page, "Train")
        summary.locator(".tl-bad").wait_for()
        page.locator("#start").click()
        page.locator("#train-message .tl-error").wait_for()
        assert page.locator("#train-message .tl-error").text_content() == words
        page.screenshot(path=str(SHOTS / "page-train-refused.png"))
        assert not list((tmp_path / "home" / "runs").glob("*/config.yaml"))
        browser.close()


def test_a_smaller_file_moves_the_example_slider_back_silently(tmp_path):
    """Example 5 of the sample, then a file of 3 examples: the slider goes back to 1 without an error toast
    ("Value 5 is greater than maximum value 3")."""
    from playwright import sync_api as playwright_api
    small = data_file(tmp_path, "three.jsonl", [{"instruction": f"Count {i}", "output": f"{i}"} for i in range(3)])
    with running_app(tmp_path / "home") as url, playwright_api.sync_playwright() as pw:
        browser, page = open_page(pw, url)
        page.locator("#data-message").get_by_text("Read identity.jsonl: ready").wait_for(timeout=90_000)
        set_number(page, "example", 5)
        page.get_by_text(re.compile(r"^line 5: \d+ tokens")).first.wait_for()
        page.locator("#upload input[type=file]").set_input_files(str(small))
        page.locator("#data-message").get_by_text("Read three.jsonl: ready").wait_for(timeout=90_000)
        page.get_by_text(re.compile(r"^line 1: \d+ tokens")).first.wait_for()
        settled(page)  # every event of the upload answered: a toast would be on the page by now
        page.screenshot(path=str(SHOTS / "page-data-smaller.png"))
        assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").first.inner_text()
        assert page.locator("#example input[type=number]").first.input_value() == "1"
        browser.close()


def train_by_cli(home: Path, model: str, name: str, lr: str) -> None:
    """A finished tiny run in `home` (the CLI, as a script would)."""
    env = {**os.environ, "TUNELOOM_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "engine", "train", "presets/quickstart.yaml", "--set", f"model={model}",
                    "--set", "train.max_steps=3", "--set", "train.batch_size=2", "--set", "train.max_seq_len=64",
                    "--set", "train.logging_steps=1", "--set", f"train.learning_rate={lr}", "--set", f"name={name}"],
                   cwd=str(ROOT), env=env, check=True, capture_output=True, timeout=300)


def test_estimate_beside_the_peak_the_real_command_and_compare(tiny_model, tmp_path):
    """After a tiny run, the run view shows the estimate and the measured peak in GiB both; the estimate names the
    CPU's fixed cost without CUDA and says it is sized from the data; "Preview command" shows the command that
    trains these settings; Compare draws both chosen runs with a legend naming each."""
    from playwright import sync_api as playwright_api
    SHOTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    train_by_cli(home, tiny_model, "slow", "1e-4")
    train_by_cli(home, tiny_model, "fast", "5e-3")
    with running_app(home) as url, playwright_api.sync_playwright() as pw:
        browser, page = open_page(pw, url)
        page.locator("#model input, #model textarea").first.fill(tiny_model)
        page.locator("#model input, #model textarea").first.press("Enter")
        tab(page, "Train")
        numbers = page.locator("#run-numbers")
        numbers.get_by_text("GiB").wait_for()
        estimated, measured = re.search(r"(\d+\.\d\d) / (\d+\.\d\d) GiB", numbers.inner_text()).groups()
        assert float(estimated) > 0 and float(measured) > 0
        panel = page.locator("#estimate-panel")
        panel.get_by_text("Sized for the longest batch of your data").wait_for(timeout=90_000)
        assert "CUDA" not in panel.inner_text() and "Framework (Python" in panel.inner_text()
        set_number(page, "train-max_steps", 7)
        page.locator("#preview-command").click()
        command = page.locator("#command")
        command.get_by_text("presets/quickstart.yaml").wait_for()
        text = command.inner_text()
        assert "RUN_DIR" not in text and f"model={tiny_model}" in text and "train.max_steps=7" in text
        page.screenshot(path=str(SHOTS / "page-train-run.png"), full_page=True)

        tab(page, "Compare")
        for run in ("fast", "slow"):
            pick(page, "compare-runs", run)
        page.keyboard.press("Escape")
        legend = page.locator("#compare-legend")
        # the legend may first show the comparison of the first pick alone (a loaded machine answers the second
        # pick later): wait for the one with both runs
        legend.get_by_text(re.compile(r"-slow train")).wait_for()
        assert legend.get_by_text(re.compile(r"-fast train")).count() == 1
        # every series of both runs (train and eval each) is drawn with its colour: the plot once left the run added
        # second without a colour (not drawn). Wait for four drawn series, then check their colours
        strokes_js = """() => Array.from(document.querySelectorAll('#compare-plot g.mark-line path'))
            .map(p => p.getAttribute('stroke'))"""
        page.wait_for_function(f"({strokes_js})().length >= 4")
        settled(page)
        strokes = page.evaluate(strokes_js)
        assert len(strokes) == 4 and all(strokes) and len(set(strokes)) == 4, strokes
        page.screenshot(path=str(SHOTS / "page-compare.png"))
        browser.close()
