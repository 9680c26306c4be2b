"""A real browser: preference pairs in the Data tab -> a DPO run of the tiny model with TensorBoard logging
and its reward plots -> GGUF export with its agreement check -> a Hub push refused offline, with the reason.

Uses the system Chromium (never downloads one); screenshots go to /tmp/tuneloom-shots/.
"""
from __future__ import annotations

import re

import pytest
from app_server import running_app
from test_e2e_browser import ARGS, CHROMIUM, SHOTS, pick, set_number, settled

pytestmark = pytest.mark.browser  # skipped without Chromium, failed under CI=true (conftest.py)


def test_preference_training_and_export_from_the_browser(tiny_model, tmp_path):
    from playwright import sync_api as playwright_api
    SHOTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    with running_app(home, env={"HF_HUB_OFFLINE": "1"}) as url, playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_text("Tuneloom").first.wait_for()

        # 1. data: the pairs are detected; chosen and rejected answers are shown token by token
        page.locator("#model input, #model textarea").first.fill(tiny_model)
        page.locator("#model input, #model textarea").first.press("Enter")
        pick(page, "sample", "preference pairs")
        page.locator("#data-message").get_by_text("Read polite_pairs.jsonl: ready to train").wait_for(timeout=90_000)
        stats = page.locator("#data-stats").inner_text()
        assert "pairwise" in stats and "preference objective" in stats
        page.locator("#tokens").get_by_text("Happy").first.wait_for()
        page.locator("#rejected-tokens").get_by_text("Ugh").first.wait_for()
        page.screenshot(path=str(SHOTS / "p1-data-pairs.png"), full_page=True)

        # 2. train: objective dpo, TensorBoard logging, a few steps; the reward plots appear beside the loss
        page.get_by_role("tab", name=re.compile("Train")).click()
        pick(page, "train-objective", "dpo")
        page.locator("#run-name input, #run-name textarea").first.fill("e2e-dpo")
        set_number(page, "train-max_steps", 4)
        set_number(page, "train-batch_size", 2)
        set_number(page, "train-max_seq_len", 128)
        set_number(page, "train-learning_rate", 0.005)
        page.get_by_text(re.compile("More settings")).first.click()
        set_number(page, "train-eval_steps", 2)
        pick(page, "train-report_to", "tensorboard")
        page.screenshot(path=str(SHOTS / "p2-train-dpo-settings.png"), full_page=True)
        page.locator("#start").click()
        page.locator("#train-message").get_by_text("Started").wait_for()
        page.locator("#progress").get_by_text("done").wait_for(timeout=300_000)
        page.locator("#rewards-plot").locator("canvas, svg").first.wait_for(timeout=30_000)
        page.locator("#logps-plot").locator("canvas, svg").first.wait_for(timeout=30_000)
        settled(page)
        page.screenshot(path=str(SHOTS / "p3-train-dpo-done.png"), full_page=True)
        run_dir = next((home / "runs").glob("*e2e-dpo*"))
        assert "objective: dpo" in (run_dir / "config.yaml").read_text()
        assert any((run_dir / "tensorboard").glob("events.out.tfevents.*"))

        # 3. export: GGUF with the Ollama Modelfile and the agreement of each file with the merged model
        page.get_by_role("tab", name=re.compile("Export")).click()
        page.get_by_role("button", name=re.compile("Refresh")).first.click()
        pick(page, "export-run", "e2e-dpo")
        page.locator("#export-gguf").click()
        message = page.locator("#export-message")
        message.get_by_text("next-token agreement").first.wait_for(timeout=600_000)
        assert "model-q8_0.gguf" in message.inner_text()
        assert (home / "exports" / f"{run_dir.name}-gguf" / "Modelfile").is_file()

        # 4. the Hub is not reachable here: the push says so at once
        page.locator("#push-repo input, #push-repo textarea").first.fill("someone/polite-tiny")
        page.locator("#push-hub").click()
        page.locator("#push-message").get_by_text("not reachable").wait_for(timeout=60_000)
        assert "HF_HUB_OFFLINE" in page.locator("#push-message").inner_text()
        page.screenshot(path=str(SHOTS / "p4-export.png"), full_page=True)
        browser.close()
