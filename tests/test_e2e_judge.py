"""A real browser judges results: side-by-side chat, the evaluation tab, the comparison plot, the Chinese UI.

Uses the system Chromium (never downloads one); screenshots go to /tmp/tuneloom-shots/.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from app_server import running_app
from test_e2e_browser import SHOTS, open_page, pick, settled

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.browser  # skipped without Chromium, failed under CI=true (conftest.py)


def two_runs(home: Path, model: str) -> tuple[str, str]:
    """One real tiny run, and a copy of it with another learning rate (so the comparison has a difference)."""
    env = {**os.environ, "TUNELOOM_HOME": str(home), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "engine", "train", "presets/quickstart.yaml", "--set",
                             f"model={model}", "--set", "name=alpha", "--set", "train.max_steps=4", "--set",
                             "train.eval_steps=2", "--set", "train.save_steps=0", "--set", "train.max_seq_len=96",
                             "--set", "data.validation_split=0.2"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    first = Path(result.stdout.strip().splitlines()[-1])
    second = first.with_name(first.name.replace("alpha", "beta"))
    shutil.copytree(first, second)
    config = yaml.safe_load((second / "config.yaml").read_text())
    config["train"]["learning_rate"] = 2e-4
    config["name"] = "beta"
    (second / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [line for line in (second / "metrics.jsonl").read_text().splitlines() if line.strip()]
    import json
    rows = [json.loads(line) for line in lines]
    for row in rows:
        for key in ("loss", "eval_loss"):
            if key in row:
                row[key] = row[key] * 1.05
    (second / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return first.name, second.name


def test_judging_in_the_browser(tiny_model, tmp_path):
    from playwright import sync_api as playwright_api
    SHOTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    alpha, beta = two_runs(home, tiny_model)
    with running_app(home) as url, playwright_api.sync_playwright() as pw:
        browser, page = open_page(pw, url, tiny_model)

        # 1. side by side: base vs the run, same prompt, both answers stream in their own column
        page.get_by_role("tab", name=re.compile("Chat")).click()
        page.get_by_role("tab", name=re.compile("Side by side")).click()
        pick(page, "side-right", alpha)
        page.locator("#gen-preset").get_by_text("creative", exact=True).click()
        page.locator("#max-new-tokens input[type=number]").first.fill("16")
        page.locator("#max-new-tokens input[type=number]").first.press("Tab")
        page.locator("#side-prompt textarea, #side-prompt input").first.fill("Who are you?")
        page.locator("#side-send").click()
        page.locator("#side-note").get_by_text("Left:").wait_for(timeout=120_000)
        page.wait_for_function("""() => ['#side-left-chat', '#side-right-chat'].every(id => {
            const bots = document.querySelectorAll(id + ' .bot, ' + id + ' [data-testid=bot]');
            const last = bots[bots.length - 1];
            return last && last.innerText.replace('…', '').trim().length > 0; })""", timeout=120_000)
        # an impossible combination is explained before anything is sent
        page.locator("#num-beams input[type=number]").first.fill("3")
        page.locator("#num-beams input[type=number]").first.press("Tab")
        page.locator("#gen-note .tl-error").get_by_text("beams with sampling").wait_for()
        page.screenshot(path=str(SHOTS / "7-side-by-side.png"), full_page=True)

        # 2. evaluate the run on its validation split, in the background
        page.get_by_role("tab", name=re.compile("Evaluate")).click()
        pick(page, "eval-run", alpha)
        page.locator("#eval-samples input[type=number]").first.fill("2")
        page.locator("#eval-samples input[type=number]").first.press("Tab")
        page.locator("#eval-start").click()
        page.locator("#eval-progress").get_by_text("done").wait_for(timeout=150_000)
        page.locator("#eval-numbers").get_by_text("perplexity").wait_for()
        page.wait_for_function("document.querySelector('#eval-samples-table').innerText.includes('Quillby')")
        page.screenshot(path=str(SHOTS / "8-evaluate.png"), full_page=True)
        assert list((home / "runs" / alpha / "eval").glob("2*.json"))

        # 3. compare the two runs: overlaid curves, the one setting that differs, the final numbers
        page.get_by_role("tab", name=re.compile("Compare")).click()
        pick(page, "compare-runs", alpha)
        pick(page, "compare-runs", beta)
        page.wait_for_function("document.querySelector('#compare-settings').innerText.includes('train.learning_rate')")
        page.locator("#compare-plot").locator("canvas, svg").first.wait_for()
        page.wait_for_function(f"document.querySelector('#compare-numbers').innerText.includes('{alpha}')")
        settled(page)
        page.screenshot(path=str(SHOTS / "9-compare-by-step.png"), full_page=True)
        page.locator("#compare-x").get_by_text("tokens", exact=True).click()
        page.locator("#compare-plot-tokens").locator("canvas, svg").first.wait_for()
        settled(page)
        page.screenshot(path=str(SHOTS / "9-compare.png"), full_page=True)

        # 4. Chinese, remembered across a reload
        page.locator("#language").get_by_text("中文").click()
        page.get_by_role("tab", name=re.compile("对比")).wait_for()
        settled(page)
        page.screenshot(path=str(SHOTS / "10-compare-zh.png"), full_page=True)
        page.reload()
        page.get_by_role("tab", name=re.compile("对话")).click()
        page.get_by_role("tab", name=re.compile("并排对比")).click()
        page.get_by_text("生成设置").first.wait_for()
        settled(page)
        page.screenshot(path=str(SHOTS / "11-chat-zh.png"), full_page=True)
        browser.close()
