"""Pure pieces of result judging: generation settings, text scores, run comparison (no model)."""
from __future__ import annotations

import math

import pytest

from engine.evaluation import compare
from engine.evaluation.metrics import bleu, lcs_length, rouge_l, scores, tokens
from engine.inference import generation


# ---- generation settings ---------------------------------------------------------------------
def test_presets_are_valid_and_greedy_is_deterministic():
    for name, preset in generation.PRESETS.items():
        assert generation.check_generation(preset) == [], name
    precise = generation.to_generate_kwargs(generation.PRESETS["precise"])
    assert precise["do_sample"] is False and "temperature" not in precise and "top_k" not in precise
    creative = generation.to_generate_kwargs(generation.PRESETS["creative"])
    assert creative["do_sample"] is True and creative["temperature"] == 0.9 and creative["top_p"] == 0.95


@pytest.mark.parametrize("params, words", [
    ({"do_sample": True, "num_beams": 4, "top_k": 50}, "beams with sampling limits"),
    ({"do_sample": False, "num_beams": 2, "num_return_sequences": 3}, "at most one sequence per beam"),
    ({"do_sample": True, "temperature": 0}, "temperature above 0"),
    ({"min_new_tokens": 50, "max_new_tokens": 10}, "min_new_tokens"),
    ({"top_p": 1.5}, "outside"),
    ({"num_beams": 2.5}, "whole number"),
    ({"max_new_tokens": "lots"}, "not a number"),
    ({"seed": "abc"}, "seed"),
])
def test_invalid_combinations_are_explained(params, words):
    problems = generation.check_generation(params)
    assert problems and any(words in p for p in problems), problems
    with pytest.raises(ValueError, match=words.split()[0]):
        generation.to_generate_kwargs(params)


def test_beams_and_alternatives_do_not_stream_and_say_why():
    assert generation.streams({"num_beams": 1})
    assert not generation.streams({"num_beams": 3})
    assert not generation.streams({"do_sample": True, "num_return_sequences": 2})
    assert "cannot stream" in generation.stream_note({"num_beams": 3})
    kwargs = generation.to_generate_kwargs({"num_beams": 3, "num_return_sequences": 2, "min_new_tokens": 4,
                                            "stop_on_eos": False, "seed": 7}, eos_token_id=2)
    assert kwargs["num_beams"] == 3 and kwargs["num_return_sequences"] == 2 and kwargs["min_new_tokens"] == 4
    assert kwargs["eos_token_id"] is None and kwargs["suppress_tokens"] == [2]
    assert generation.seed_of({"seed": "7"}) == 7 and generation.seed_of({}) is None


def test_old_style_params_keep_their_meaning():
    # the API and older clients send only a temperature: above 0 samples, 0 is greedy
    assert generation.to_generate_kwargs({"temperature": 0.8, "top_k": None})["do_sample"] is True
    assert generation.to_generate_kwargs({"temperature": 0.0})["do_sample"] is False


# ---- text scores -----------------------------------------------------------------------------
def test_rouge_l_from_lcs():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    # LCS "the cat the mat" = 4 of 5 candidate and 4 of 6 reference tokens
    p, r = 4 / 5, 4 / 6
    assert rouge_l("the cat the big mat", "the cat sat on the mat") == pytest.approx(2 * p * r / (p + r))
    assert rouge_l("", "anything") == 0.0 and rouge_l("dog", "cat") == 0.0
    assert tokens("我是Quillby。") == ["我", "是", "quillby", "。"]  # CJK per character


def test_bleu_with_brevity_penalty_and_smoothing():
    assert bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert bleu("dog", "the cat") == 0.0
    # "the cat": 2/2 unigrams, 1/1 bigram; smoothed 3- and 4-grams (0+1)/(0+1); brevity exp(1 - 6/2)
    assert bleu("the cat", "the cat sat on the mat") == pytest.approx(math.exp(1 - 3) * math.exp(
        (math.log(1) + math.log(2 / 2) + math.log(1 / 1) + math.log(1 / 1)) / 4))
    short, longer = bleu("the cat", "the cat sat on the mat"), bleu("the cat sat on", "the cat sat on the mat")
    assert 0 < short < longer < 1
    assert scores(["a b", "x"], ["a b", "y"]) == {"rouge_l": 0.5, "bleu": pytest.approx(0.5)}
    assert scores([], []) == {"rouge_l": None, "bleu": None}


# ---- comparing runs --------------------------------------------------------------------------
def test_settings_table_shows_only_what_differs():
    a = {"name": "a", "model": "m", "method": {"name": "lora", "r": 8}, "train": {"learning_rate": 1e-3, "seed": 0}}
    b = {"name": "b", "model": "m", "method": {"name": "lora", "r": 16}, "train": {"learning_rate": 1e-3, "seed": 0}}
    c = {"name": "c", "model": "m", "method": {"name": "ia3"}, "train": {"learning_rate": 2e-4, "seed": 0}}
    assert compare.flatten(a)["train.learning_rate"] == 1e-3
    headers, rows = compare.differing({"a": a, "b": b, "c": c})
    assert headers == ["setting", "a", "b", "c"]
    assert rows == [["method.name", "lora", "lora", "ia3"], ["method.r", "8", "16", "–"],
                    ["train.learning_rate", "0.001", "0.001", "0.0002"]]


def test_curves_by_step_and_by_tokens():
    metrics = {"a": [{"step": 1, "loss": 2.0, "tokens_seen": 100}, {"step": 2, "loss": 1.5, "tokens_seen": 210},
                     {"step": 2, "eval_loss": 1.7}],
               "b": [{"step": 1, "loss": 2.5, "tokens_seen": 50}]}
    assert compare.curve_points(metrics, "step") == [(1, 2.0, "a train"), (2, 1.5, "a train"), (2, 1.7, "a eval"),
                                                      (1, 2.5, "b train")]
    assert compare.curve_points(metrics, "tokens") == [(100, 2.0, "a train"), (210, 1.5, "a train"),
                                                        (210, 1.7, "a eval"), (50, 2.5, "b train")]


def test_summary_numbers():
    status = {"state": "done", "step": 2, "final_loss": 1.5, "final_eval_loss": 1.7, "started_at": 10.0,
              "finished_at": 52.5}
    rows = [{"step": 1, "loss": 2.0, "tokens_seen": 100, "peak_memory_bytes": 3 * 2**20},
            {"step": 2, "loss": 1.5, "tokens_seen": 210, "peak_memory_bytes": 5 * 2**20}]
    s = compare.summarize("a", status, rows, {"perplexity": 5.2, "rouge_l": 0.4, "bleu": 0.1})
    assert s["final_train_loss"] == 1.5 and s["final_eval_loss"] == 1.7 and s["wall_time_s"] == 42.5
    assert s["peak_memory_bytes"] == 5 * 2**20 and s["tokens_seen"] == 210 and s["rouge_l"] == 0.4
    headers, table = compare.summary_table([s, compare.summarize("b", {}, [])])
    assert table[0][headers.index("peak_memory_bytes")] == "5 MB"
    assert table[1][headers.index("final_train_loss")] == "–"
