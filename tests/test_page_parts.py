"""The pure parts behind the page as a user meets it (issue 18): the estimate from the data's real lengths,
labels that fit the device, why a 4-bit base can cost more, the real preview command, and data-dependent
controls that clamp themselves. Fast: no model is loaded, no browser."""
from __future__ import annotations

import json

import pytest

from engine.core.config import RunConfig, apply_overrides, overrides_between
from engine.core.describe import describe_config
from engine.estimate import DataLengths, estimate, ui_summary

SMOL = {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152,
        "tie_word_embeddings": True, "max_position_embeddings": 8192, "torch_dtype": "float32"}


def cfg(method: str = "lora", **train) -> RunConfig:
    return RunConfig.from_dict({"method": {"name": method}, "train": train})


# ---- the data's real lengths ----------------------------------------------------------------------
def test_data_lengths_longest_batch_padded_and_packed():
    data = DataLengths((300, 120, 90, 40), count=10, limit=512)
    assert data.padded_row(512) == 300 and data.padded_row(256) == 256  # truncated at a smaller max_seq_len
    assert data.rows(4) == 4 and data.rows(64) == 10  # a dataset smaller than a batch makes one short batch
    assert data.packed_tokens(2, 512) == 420  # the two longest examples end to end
    assert data.packed_tokens(3, 100) == 100 + 100 + 90
    # beyond the lengths kept, each further example counts as long as the shortest kept one
    assert data.packed_tokens(6, 512) == 300 + 120 + 90 + 40 + 40 + 40
    # an example that reached the limit it was measured at may be longer: at a larger max_seq_len it is that long
    measured_at_128 = DataLengths((128, 60), count=2, limit=128)
    assert measured_at_128.padded_row(1024) == 1024 and measured_at_128.length_at(60, 1024) == 60


def test_from_stats_reads_the_statistics_the_data_check_prints():
    assert DataLengths.from_stats({"examples": 3, "longest_lengths": [5, 50, 7]}, 256) == \
        DataLengths((50, 7, 5), 3, 256)
    assert DataLengths.from_stats({"examples": 3}, 256) is None  # an older report without lengths
    assert DataLengths.from_stats(None, 256) is None


def test_estimate_follows_the_longest_batch_of_the_data():
    arch = describe_config(SMOL)
    c = cfg(batch_size=4, max_seq_len=1024, packing=False)
    worst = estimate(arch, c, device="cpu", cpu_allocator="tcmalloc")
    short = DataLengths((200, 180, 150, 100, 90), count=40, limit=1024)
    real = estimate(arch, c, device="cpu", cpu_allocator="tcmalloc", data=short)
    assert worst.details["length_basis"] == "max_seq_len" and real.details["length_basis"] == "data"
    assert worst.details["tokens_per_micro_batch"] == 4 * 1024
    assert real.details["tokens_per_micro_batch"] == 4 * 200  # padded to the longest example
    assert (real.details["batch_rows"], real.details["row_tokens"]) == (4, 200)
    assert real.components["activations"] < worst.components["activations"] / 4
    assert real.total_bytes < worst.total_bytes
    # the same lengths at max_seq_len: the estimate is the worst case's
    full = DataLengths((1024,) * 4, count=40, limit=1024)
    assert estimate(arch, c, device="cpu", cpu_allocator="tcmalloc", data=full).total_bytes == worst.total_bytes
    packed = estimate(arch, cfg(batch_size=4, max_seq_len=1024, packing=True), device="cpu",
                      cpu_allocator="tcmalloc", data=short)
    assert packed.details["tokens_per_micro_batch"] == 200 + 180 + 150 + 100  # no padding at all
    assert packed.total_bytes < real.total_bytes


def test_ui_summary_passes_the_lengths_and_says_which_it_used(tiny_model):
    device = {"kind": "cpu", "name": "CPU", "available_bytes": 64 * 2**30}
    raw = {"model": tiny_model, "train": {"batch_size": 2, "max_seq_len": 512}}
    worst = ui_summary(raw, device)
    real = ui_summary(raw, device, data=DataLengths((40, 30), 2, 512))
    assert worst["details"]["length_basis"] == "max_seq_len" and real["details"]["length_basis"] == "data"
    assert real["total_bytes"] < worst["total_bytes"]
    json.dumps(real)  # the panel's data stays plain JSON


# ---- labels and notes that fit the device ----------------------------------------------------------
def test_the_fixed_cost_is_labelled_for_the_device():
    arch = describe_config(SMOL)
    on_cpu = estimate(arch, cfg(), device="cpu", cpu_allocator="tcmalloc").to_dict()["labels"]["framework"]
    on_gpu = estimate(arch, cfg(), device="cuda").to_dict()["labels"]["framework"]
    assert "CUDA" not in on_cpu and "CUDA" in on_gpu


def test_a_4bit_base_estimated_above_the_plain_one_says_why():
    arch = describe_config(SMOL)
    small = dict(batch_size=1, max_seq_len=64, gradient_checkpointing=True)
    lora = estimate(arch, cfg("lora", **small), device="cpu", cpu_allocator="tcmalloc")
    qlora = estimate(arch, cfg("qlora", **small), device="cpu", cpu_allocator="tcmalloc")
    assert qlora.total_bytes > lora.total_bytes  # on a CPU the full checkpoint is read while it is quantised
    above = qlora.details["quantized_above"]
    assert above["phase"] == "loading" and above["unquantised_bytes"] == lora.total_bytes
    # a larger batch: the 4-bit base saves memory, and nothing needs explaining
    big = estimate(arch, cfg("qlora", batch_size=4, max_seq_len=256), device="cpu", cpu_allocator="tcmalloc")
    assert "quantized_above" not in big.details
    assert "quantized_above" not in lora.details


# ---- the preview command ---------------------------------------------------------------------------
def test_overrides_between_reproduce_the_config_exactly():
    base = RunConfig.from_dict({"model": "smollm2-135m-instruct", "data": {"train": "presets/data/identity.jsonl"},
                                "train": {"max_steps": 60}})
    page = RunConfig.from_dict({
        "model": "/models/my model", "name": "run 1", "method": {"name": "full"},
        "data": {"train": "/home/u/uploads/2024/my-data.jsonl", "columns": {"question": "instruction"},
                 "validation_split": 0.0},
        "train": {"max_steps": 8, "learning_rate": 1e-3, "gradient_checkpointing": True, "report_to": "tensorboard"}})
    sets = overrides_between(base.to_dict(), page.to_dict())
    assert sets[0] == "method.name=full"  # the switch first (its rule applies before the other values)
    raw = base.to_dict()
    apply_overrides(raw, sets)
    assert RunConfig.from_dict(raw).to_dict() == page.to_dict()
    assert overrides_between(base.to_dict(), base.to_dict()) == []


@pytest.mark.parametrize("value", ["1e-3", "true", "", "a: b", "[x]", "08", "null", "it's"])
def test_override_values_survive_yaml_as_strings(value):
    base = RunConfig().to_dict()
    page = RunConfig.from_dict({"name": value}).to_dict()
    raw = RunConfig().to_dict()
    apply_overrides(raw, overrides_between(base, page))
    assert RunConfig.from_dict(raw).name == value


def test_the_preview_command_trains_exactly_the_page_settings(workspace):
    """What "Preview command" shows, read back as the CLI reads it, is the config Start would run."""
    import shlex

    from ui.train_tab import PRESET, preview_command

    page = RunConfig.from_dict({"model": "smollm2-135m-instruct", "name": "mine", "method": {"name": "qlora", "r": 4},
                                "data": {"train": "presets/data/chat_multiturn.jsonl", "mask": "last_assistant"},
                                "train": {"max_steps": 5, "batch_size": 2, "packing": False}})
    text = preview_command(page)
    assert "RUN_DIR" not in text and "presets/quickstart.yaml" in text
    words = shlex.split(text.replace("\\\n", " "))
    assert words[1:4] == ["-m", "engine", "train"] and words[4] == str(PRESET.relative_to(PRESET.parents[1]))
    sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    raw = RunConfig.load(PRESET).to_dict()
    apply_overrides(raw, sets)
    assert RunConfig.from_dict(raw).to_dict() == page.to_dict()


# ---- data-dependent controls, the data as the user knows it ------------------------------------------
def test_a_slider_value_beyond_a_shrunk_range_is_clamped_not_refused():
    import gradio as gr

    from ui.common import ClampedSlider, clamp

    assert clamp(5, 1, 3) == 3 and clamp(0, 1, 3) == 1 and clamp(2, 1, 3) == 2 and clamp(None, 1, 3) is None
    slider = ClampedSlider(1, 3, value=1, step=1)
    assert slider.preprocess(5) == 3 and slider.preprocess(0) == 1  # gr.Slider raises "greater than maximum"
    with pytest.raises(gr.Error):
        gr.Slider(1, 3, value=1, step=1).preprocess(5)
    assert slider.get_block_name() == "slider"  # drawn by the frontend's own slider


def test_uploads_are_named_as_uploaded_and_a_remembered_choice_is_checked(workspace, tmp_path):
    from engine.core.workspace import data_display_name
    from ui import data_tab

    source = tmp_path / "My data (v2).jsonl"
    source.write_text('{"instruction": "a", "output": "b"}\n')
    stored = data_tab.store_upload(str(source))
    assert stored.endswith("My-data-v2.jsonl") and data_display_name(stored) == "My data (v2).jsonl"
    assert [p.name for p in data_tab.uploaded_files()] == ["My-data-v2.jsonl"]  # the name note is not a data file
    assert data_display_name("presets/data/identity.jsonl") == "identity.jsonl"
    saved = {"path": stored, "name": "My data (v2).jsonl", "format": "alpaca", "columns": "", "mask": "assistant",
             "skip_bad": False}
    assert data_tab.restorable(saved)["path"] == stored
    assert data_tab.restorable({**saved, "format": "nonsense"})["format"] == "auto"
    assert data_tab.restorable({**saved, "path": str(tmp_path / "gone.jsonl")}) is None  # deleted since
    assert data_tab.restorable({**saved, "path": "/etc/passwd"}) is None  # outside what the server may read
    assert data_tab.restorable("junk") is None and data_tab.restorable({}) is None


def test_start_and_the_data_tab_refuse_the_same_data_with_the_same_words():
    from ui import data_tab

    bad = {"inputs": [], "name": "x.jsonl", "error": {"file": "x.jsonl", "where": "line 2", "field": "output",
                                                       "message": "missing", "hint": "add it"}}
    box = data_tab.report_problem(bad)
    assert "line 2" in box and "field &#x27;output&#x27;" in box and data_tab.refuses_start(bad)
    dropped = {"inputs": [], "name": "x.jsonl", "stats": {"examples": 0, "dropped": {"too long": 3}}}
    assert "every example was dropped" in data_tab.report_problem(dropped) and data_tab.refuses_start(dropped)
    could_not_run = {"inputs": [], "name": "x.jsonl", "failure": "timeout"}
    assert data_tab.report_problem(could_not_run) and not data_tab.refuses_start(could_not_run)
    fine = {"inputs": [], "name": "x.jsonl", "stats": {"examples": 3}}
    assert data_tab.report_problem(fine) == "" and not data_tab.refuses_start(fine)
    key = data_tab.data_key("a.jsonl", "auto", "", "assistant", False, "m", 256)
    assert data_tab.same_data({"inputs": data_tab.data_key("a.jsonl", "auto", "", "assistant", False, "m", 512)}, key)
    assert not data_tab.same_data({"inputs": data_tab.data_key("b.jsonl", "auto", "", "assistant", False, "m", 256)},
                                  key)


# ---- what the panel and the run view say -----------------------------------------------------------
def test_panel_words_for_the_length_basis_the_device_and_a_costly_4bit_base():
    from ui import estimate_panel as panel

    padded = {"length_basis": "data", "batch_rows": 4, "row_tokens": 200, "max_seq_len": 1024, "sequences": 1,
              "packing": False, "tokens_per_micro_batch": 800}
    assert "4 rows × 200 tokens" in panel.basis_line(padded, "en")
    packed = {**padded, "packing": True, "tokens_per_micro_batch": 630}
    assert "630 tokens" in panel.basis_line(packed, "en")
    assert "Worst case" in panel.basis_line({**padded, "length_basis": "max_seq_len"}, "en")
    assert "CUDA" not in panel.label("framework", {"kind": "cpu"}, "en")
    assert "CUDA" in panel.label("framework", {"kind": "cuda"}, "en")
    above = {"quantized_above": {"bytes": 3 * 2**30, "unquantised_bytes": 2**30, "phase": "loading"}}
    assert "1.00 GiB" in panel.quantized_note(above, "en") and "loads" in panel.quantized_note(above, "en")
    assert panel.quantized_note({}, "en") == ""


def test_run_view_shows_estimate_and_peak_in_one_unit():
    from ui.follow import memory_cell, numbers_markdown

    rows = [{"step": 1, "loss": 2.0, "peak_memory_bytes": 1.58 * 2**30}]
    status = {"estimate_bytes": int(2.9 * 2**30), "estimate_peak_bytes": int(2.86 * 2**30)}
    assert memory_cell(rows, status) == "2.86 / 1.58 GiB"
    assert memory_cell([], {}) == "– / – GiB"
    assert "2.86 / 1.58 GiB" in numbers_markdown(rows, status)


def test_compare_colours_every_run_and_lists_them_all():
    import pandas as pd

    from ui.compare_tab import legend_html, series_colors

    frame = pd.DataFrame([(1, 2.0, "r1 train"), (1, 2.1, "r1 eval"), (1, 1.9, "r2 train")],
                         columns=["x", "loss", "series"])
    colors = series_colors(["r1", "r2"], frame)
    assert set(colors) == {"r1 train", "r1 eval", "r2 train"} and len(set(colors.values())) == 3
    assert all(name in legend_html(colors) for name in colors)
    assert series_colors(["r1"], None) == {} and legend_html({}) == ""
