"""The page in Chinese, as a user meets it: a data check, a short training run and its evaluation in English, then the
switch to Chinese, which words again everything those left on every tab; then a data error, a comparison and an
export in Chinese, and the choice remembered across a reload. No English word anywhere outside names (models, files,
formats, settings' values: code), units and numbers.

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
IN_FLIGHT = re.compile(r"processing \||queue: ")  # Gradio's words while an event is in flight
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
    # Gradio's progress text of an event in flight ("processing | 0.8s", "In queue: 1 of 1") is its own,
    # untranslated: wait it out, and for the last update to be drawn (read again if an event began meanwhile)
    for _ in range(5):
        settled(page)
        text = page.evaluate(SHOWN_TEXT_JS, NOT_PAGE_TEXT)
        if not IN_FLIGHT.search(text):
            break
    page.screenshot(path=str(SHOTS / f"zh-walk-{name}.png"), full_page=True)
    found = sorted(set(english_words(text, allowed)))
    lines = [line for line in text.splitlines() if any(re.search(rf"\b{re.escape(w)}\b", line) for w in found)]
    assert not found, f"English on the {name} page in Chinese: {found}\n" + "\n".join(lines[:20])


def tab(page, elem_id: str) -> None:
    page.locator(f"#{elem_id}-button").click()


def test_switching_to_chinese_rewords_the_page_and_what_follows_is_chinese(tiny_model, tmp_path):
    """In English: a data check, a short run and its evaluation. The switch to Chinese words again what those left on
    every tab (the check's summary and preview, the model's status, the messages of Train and Evaluate, the progress,
    the plots and numbers). Then, in Chinese: a broken file's error, the method's measured evidence, a comparison, an
    export; and a reload comes back in Chinese, Gradio's own words too."""
    from playwright import sync_api as playwright_api
    SHOTS.mkdir(parents=True, exist_ok=True)
    allowed = setting_values() | {"identity", "en2zh"}  # the sample's name and the run's name are names too
    with running_app(tmp_path / "home") as url, playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_text("Tuneloom").first.wait_for()

        # English: the data checked, a run of the tiny model to its end, and its evaluation
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

        # the switch: every tab, as it was left, now in Chinese; a hidden tab's timer is off, so its view is worded
        # again when it is shown
        page.locator("#language label").filter(has_text="中文").click()
        page.locator("#tab-eval-button").get_by_text("评估").wait_for()
        page.locator("#eval-numbers").get_by_text("困惑度").wait_for()
        check_chinese(page, "switched-eval", allowed)
        tabs = (("tab-data", [("#data-message", "可以开始训练")]),
                ("tab-train", [("#train-message", "已开始"), ("#progress", "已完成 · 步 4/4"),
                               ("#loss-plot", "训练损失")]),
                ("tab-chat", []))
        for name, waited in tabs:
            tab(page, name)
            for where, text in waited:
                page.locator(where).get_by_text(text).first.wait_for()
            check_chinese(page, f"switched-{name[4:]}", allowed)

        # in Chinese: a broken file names its line and field and says what to do; then the sample, ready again
        tab(page, "tab-data")
        page.locator("#upload input[type=file]").set_input_files(str(BAD_FILE))
        error = page.locator("#data-message .tl-error")
        error.wait_for(timeout=90_000)
        assert "第 2 行" in error.inner_text() and "怎么办" in error.inner_text()
        check_chinese(page, "data-error", allowed)
        pick(page, "sample", "identity")
        page.locator("#data-message").get_by_text("可以开始训练").wait_for(timeout=90_000)

        # under the method picker: what LoRA's preset measured on real instructions
        tab(page, "tab-train")
        measured = page.locator("#lora-measured")
        assert "实测" in measured.inner_text() and "留出集损失相对基础模型" in measured.inner_text()

        # compare: the run's curve and final numbers
        tab(page, "tab-compare")
        pick(page, "compare-runs", "en2zh")
        page.keyboard.press("Escape")  # close the list of runs
        page.wait_for_function("document.querySelector('#compare-numbers').innerText.includes('已完成')",
                               timeout=30_000)
        page.locator("#compare-plot").locator("canvas, svg").first.wait_for()
        check_chinese(page, "compare", allowed)

        # export: the adapter in one click; the message, said in Chinese, says where it went
        tab(page, "tab-export")
        page.wait_for_function("document.querySelector('#export-run input').value.includes('已完成')", timeout=30_000)
        with page.expect_download(timeout=180_000):
            page.locator("#export-adapter").click()
        page.locator("#export-message").get_by_text("已导出").wait_for(timeout=60_000)
        check_chinese(page, "export", allowed)

        # the choice is kept in the browser: a reload comes back in Chinese, Gradio's own words too
        page.wait_for_function("localStorage.getItem('tuneloom-language') !== null")
        page.reload()
        page.locator("#tab-data-button").get_by_text("数据").wait_for(timeout=30_000)
        page.locator("#upload").get_by_text("点击上传").wait_for(timeout=30_000)
        assert page.locator("#language input[value=zh]").is_checked()
        page.locator("#data-message").get_by_text("可以开始训练").wait_for(timeout=120_000)
        check_chinese(page, "data", allowed)
        browser.close()
