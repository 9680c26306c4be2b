"""The page in Chinese, as a user meets it: the language chosen once (and remembered across a reload), then every
tab — also after a data error, a short training run, a comparison, an export and an evaluation — with no English word
outside names (models, files, formats, settings' values: code), units and numbers.

What each tab shows is read from the browser (the visible text, the shown values of pickers, placeholders);
regions that hold the user's own data or machine output (the data rows and tokens, chat replies, the training
log, a command) are left out. Screenshots go to /tmp/tuneloom-shots/zh-walk-*.png.
"""
from __future__ import annotations

import re

import pytest
from app_server import running_app
from english_words import english_words
from test_e2e_browser import ARGS, BAD_FILE, CHROMIUM, SHOTS, enabled, pick, set_number, settled

pytestmark = pytest.mark.browser  # skipped without Chromium, failed under CI=true (conftest.py)

# the user's data, model output, machine text and code (commands shown as code): not the page's words
NOT_PAGE_TEXT = ["#data-table", "#tokens", "#rejected-tokens", "#chatbot", "#side-left-chat", "#side-right-chat",
                 "#train-log", "#command", "#eval-samples-table", "#model", "#compare-settings", "code", "pre"]
SHOWN_TEXT_JS = """(skip) => {
  const hidden = skip.flatMap(s => [...document.querySelectorAll(s)]);
  const shown = e => e.offsetParent !== null && !hidden.some(h => h.contains(e));
  const before = hidden.map(e => e.style.display);
  hidden.forEach(e => { e.style.display = 'none'; });  // for a moment: innerText leaves out what is not displayed
  const text = document.body.innerText;
  hidden.forEach((e, i) => { e.style.display = before[i]; });
  // what pickers show (an input's value is not in innerText) and what empty fields invite
  const values = [...document.querySelectorAll('.wrap input[role=listbox], input[aria-expanded]')]
    .filter(shown).map(e => e.value);
  const placeholders = [...document.querySelectorAll('input[placeholder], textarea[placeholder]')]
    .filter(shown).map(e => e.placeholder);
  return [text, ...values, ...placeholders].join('\\n');
}"""


def setting_values() -> set[str]:
    """The names of settings and the values they take (choices of the schema and of every method, registry keys):
    names, like code."""
    from engine.core.config import SECTIONS, section_params
    from engine.core.registry import FORMATS, METHODS, OBJECTIVES, TEMPLATES

    params = [p for section in SECTIONS for p in section_params(section)]
    params += [p for method in METHODS.entries.values() for p in method.params]
    values = {str(c) for p in params for c in (p.choices or ())} | {str(p.default) for p in params}
    values |= {p.name for p in params}
    # the fields of each data format, and of its turns
    values |= {f for fmt in FORMATS.entries.values() for f in fmt.required}
    values |= {"input", "system", "history", "prompt", "label", "role", "content", "from", "value"}
    values |= set(METHODS.entries) | set(FORMATS.entries) | set(OBJECTIVES.entries) | set(TEMPLATES.entries)
    return {word for value in values for word in re.findall(r"[A-Za-z][A-Za-z0-9_.'/+&-]*", value)}


def check_chinese(page, name: str, allowed: set[str]) -> None:
    """Screenshot the settled page, then fail on any English word it shows."""
    # Gradio's progress text of an event in flight ("processing | 0.8s") is its own, untranslated: wait it out,
    # and for the last update to be drawn
    settled(page)
    page.screenshot(path=str(SHOTS / f"zh-walk-{name}.png"), full_page=True)
    text = page.evaluate(SHOWN_TEXT_JS, NOT_PAGE_TEXT)
    found = sorted(set(english_words(text, allowed)))
    lines = [line for line in text.splitlines() if any(re.search(rf"\b{re.escape(w)}\b", line) for w in found)]
    assert not found, f"English on the {name} page in Chinese: {found}\n" + "\n".join(lines[:20])


def tab(page, elem_id: str) -> None:
    page.locator(f"#{elem_id}-button").click()


def test_every_tab_in_chinese(tiny_model, tmp_path):
    from playwright import sync_api as playwright_api
    SHOTS.mkdir(parents=True, exist_ok=True)
    # the sample's name and the run's name are names too
    allowed = setting_values() | {"identity", "zh"}
    with running_app(tmp_path / "home") as url, playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_text("Tuneloom").first.wait_for()
        # the remembered language is restored on load, beside the load-time data check (which takes longer): choose
        # after that check has answered
        page.locator("#data-message").get_by_text("ready to train").wait_for(timeout=120_000)
        settled(page)

        # the choice is made once and kept in the browser: a reload comes back in Chinese, Gradio's words too
        page.locator("#language label").filter(has_text="中文").click()
        page.locator("#tab-data-button").get_by_text("数据").wait_for()
        page.wait_for_function("localStorage.getItem('tuneloom-language') !== null")
        page.reload()
        page.locator("#tab-data-button").get_by_text("数据").wait_for(timeout=30_000)
        page.locator("#upload").get_by_text("点击上传").wait_for(timeout=30_000)
        assert page.locator("#language input[value=zh]").is_checked()

        # 1. data: a broken file names its line and field in Chinese; then the sample, ready to train
        page.locator("#upload input[type=file]").set_input_files(str(BAD_FILE))
        error = page.locator("#data-message .tl-error")
        error.wait_for(timeout=90_000)
        assert "第 2 行" in error.inner_text() and "怎么办" in error.inner_text()
        check_chinese(page, "data-error", allowed)
        pick(page, "sample", "identity")
        page.locator("#data-message").get_by_text("可以开始训练").wait_for(timeout=90_000)
        check_chinese(page, "data", allowed)

        # 2. a short run of the tiny model, followed to the end
        page.locator("#model input, #model textarea").first.fill(tiny_model)
        page.locator("#model input, #model textarea").first.press("Enter")
        tab(page, "tab-train")
        # under the method picker: what LoRA's preset measured on real instructions, in Chinese
        measured = page.locator("#lora-measured")
        assert "实测" in measured.inner_text() and "留出集损失相对基础模型" in measured.inner_text()
        page.locator("#run-name input, #run-name textarea").first.fill("zh")
        set_number(page, "train-max_steps", 4)
        set_number(page, "train-batch_size", 2)
        set_number(page, "train-max_seq_len", 96)
        page.locator("#start").click()
        page.locator("#train-message").get_by_text("已开始").wait_for()
        page.locator("#progress").get_by_text(re.compile(r"已完成 · 步 4/4")).wait_for(timeout=150_000)
        enabled(page, "delete-run", True)
        page.locator("#loss-plot").locator("canvas, svg").first.wait_for()
        check_chinese(page, "train-done", allowed)

        # 3. an evaluation of the run on its validation split, one short answer; it runs in the background
        tab(page, "tab-eval")
        page.wait_for_function("document.querySelector('#eval-run input').value.includes('已完成')", timeout=30_000)
        set_number(page, "eval-samples", 1)
        set_number(page, "eval-max-new-tokens", 8)
        page.locator("#eval-start").click()
        page.locator("#eval-message").get_by_text("已在后台开始").wait_for()

        # 4. chat, meanwhile: the run in the picker, the presets, the settings (nothing is loaded)
        tab(page, "tab-chat")
        pick(page, "chat-target", "已完成")
        check_chinese(page, "chat", allowed)

        # 5. compare: the run's curve and final numbers
        tab(page, "tab-compare")
        pick(page, "compare-runs", "zh")
        page.keyboard.press("Escape")  # close the list of runs
        page.wait_for_function("document.querySelector('#compare-numbers').innerText.includes('已完成')",
                               timeout=30_000)
        page.locator("#compare-plot").locator("canvas, svg").first.wait_for()
        check_chinese(page, "compare", allowed)

        # 6. export: the adapter in one click; the message says where it went
        tab(page, "tab-export")
        page.wait_for_function("document.querySelector('#export-run input').value.includes('已完成')", timeout=30_000)
        with page.expect_download(timeout=120_000):
            page.locator("#export-adapter").click()
        page.locator("#export-message").get_by_text("已导出").wait_for(timeout=30_000)
        check_chinese(page, "export", allowed)

        # 7. the evaluation's numbers, answers and saved results
        tab(page, "tab-eval")
        page.locator("#eval-progress").get_by_text("已完成").wait_for(timeout=120_000)
        page.locator("#eval-numbers").get_by_text("困惑度").wait_for()
        check_chinese(page, "evaluate", allowed)
        browser.close()


def test_switching_to_chinese_rewords_what_is_already_on_screen(tiny_model, tmp_path):
    """In English: a data check, a short run, an evaluation and an export; then the switch to Chinese. What those
    left on every tab (the check's summary and preview, the model's status, the messages of Train, Evaluate and
    Export, the progress and numbers) is worded again: no English outside names, units and numbers."""
    from playwright import sync_api as playwright_api
    SHOTS.mkdir(parents=True, exist_ok=True)
    allowed = setting_values() | {"identity", "en2zh"}
    with running_app(tmp_path / "home") as url, playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_text("Tuneloom").first.wait_for()

        # English: the data checked, a run of the tiny model to its end, its evaluation and its export
        page.locator("#model input, #model textarea").first.fill(tiny_model)
        page.locator("#model input, #model textarea").first.press("Enter")
        pick(page, "sample", "identity")
        page.locator("#data-message").get_by_text("ready to train").wait_for(timeout=120_000)
        tab(page, "tab-train")
        page.locator("#run-name input, #run-name textarea").first.fill("en2zh")
        set_number(page, "train-max_steps", 4)
        set_number(page, "train-batch_size", 2)
        set_number(page, "train-max_seq_len", 96)
        page.locator("#start").click()
        page.locator("#train-message").get_by_text("Started").wait_for()
        page.locator("#progress").get_by_text(re.compile(r"done · step 4/4")).wait_for(timeout=180_000)
        enabled(page, "delete-run", True)
        tab(page, "tab-eval")
        page.wait_for_function("document.querySelector('#eval-run input').value.includes('done')", timeout=30_000)
        set_number(page, "eval-samples", 1)
        set_number(page, "eval-max-new-tokens", 8)
        page.locator("#eval-start").click()
        page.locator("#eval-message").get_by_text("started in the background").wait_for()
        page.locator("#eval-progress").get_by_text("done").wait_for(timeout=180_000)
        tab(page, "tab-export")
        page.wait_for_function("document.querySelector('#export-run input').value.includes('done')", timeout=30_000)
        with page.expect_download(timeout=180_000):
            page.locator("#export-adapter").click()
        page.locator("#export-message").get_by_text("Exported").wait_for(timeout=60_000)

        # the switch: every tab, as it was left, now in Chinese
        page.locator("#language label").filter(has_text="中文").click()
        page.locator("#tab-data-button").get_by_text("数据").wait_for()
        page.locator("#export-message").get_by_text("已导出").wait_for()
        check_chinese(page, "switched-export", allowed)
        tabs = (("tab-data", ("#data-message", "可以开始训练")), ("tab-train", ("#train-message", "已开始")),
                ("tab-eval", ("#eval-message", "已在后台开始")), ("tab-chat", None), ("tab-compare", None))
        for name, waited in tabs:
            tab(page, name)
            if waited:
                page.locator(waited[0]).get_by_text(waited[1]).wait_for()
            check_chinese(page, f"switched-{name[4:]}", allowed)
        browser.close()
