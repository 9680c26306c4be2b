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
