"""Bad data gets a clear error naming the file, the line/row, the field and what to do, through
both the CLI (`python -m engine data check`) and the upload path (engine.data.load_examples)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.data import DataError, load_examples

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "data" / "bad"

# file -> (where, field, [text the message must contain]); where/field "" = not about one row/field
CASES = {
    "invalid_json.json": ("line 3", "", ["invalid JSON at column 35", "Expecting ',' delimiter",
                                         "fix the JSON syntax"]),
    "one_broken_line.jsonl": ("line 3", "", ["invalid JSON at column 52", "skip bad rows", "--skip-bad-rows"]),
    "misspelled_field.jsonl": ("line 1", "", ["cannot tell the data format from the fields instrution, output",
                                              "did you mean 'instrution' -> 'instruction'",
                                              "alpaca: instruction, output", "map columns"]),
    "missing_field.jsonl": ("line 2", "output", ["missing", "every example needs 'output'",
                                                 "fields found: instruction, input"]),
    "content_not_string.jsonl": ("line 2", "messages[1].content", ["expected text, got int"]),
    "messages_not_list.jsonl": ("line 1", "messages", ["expected a list of turns, got str"]),
    "unknown_role.jsonl": ("line 1", "messages[1].role", ["unknown role 'bot'",
                                                          "use one of: assistant, developer, system, tool, user"]),
    "out_of_order_roles.jsonl": ("line 1", "messages[1]", ["role 'user' out of order; expected 'assistant'",
                                                            "turns must go system (optional), user, assistant"]),
    "empty.jsonl": ("", "", ["the file is empty", "add at least one example"]),
    "whitespace_only.jsonl": ("", "", ["no examples found", "add at least one example"]),
    "empty_conversation.jsonl": ("line 1", "messages", ["the conversation is empty",
                                                        "add at least one user and one assistant turn"]),
    "no_assistant_turn.jsonl": ("line 1", "messages", ["no assistant turn", "add the answer the model should learn"]),
    "not_utf8.jsonl": ("line 2", "", ["byte 0xe9 at column 25 is not valid UTF-8", "save the file as UTF-8"]),
    "utf16.jsonl": ("line 1", "", ["UTF-16", "save it as UTF-8"]),
    "binary_renamed.json": ("", "", ["looks like a binary file, not JSON text", "export the data as UTF-8 text"]),
    "image_renamed.json": ("", "", ["this is a PNG image, not JSON text"]),
    "wrong_columns.csv": ("line 2", "", ["cannot tell the data format from the fields question, answer",
                                         "map columns"]),
    "ragged_row.csv": ("line 3", "", ["3 values for 2 columns (instruction, output)", "quote values"]),
    "not_a_list.json": ("", "", ["expected a list of examples, got a string", "[ {...}, {...} ]"]),
}


def cli(*args, env=None, timeout=120):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_corpus_is_complete():
    assert sorted(p.name for p in BAD.iterdir()) == sorted([*CASES, "all_prompt.jsonl"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_upload_path_names_file_place_field_and_fix(name):
    where, field, texts = CASES[name]
    with pytest.raises(DataError) as info:
        load_examples(BAD / name)
    err = info.value
    assert err.file == name and err.where == where and err.field == field, err.to_dict()
    assert err.hint, "every error says what to do"
    for text in texts:
        assert text in str(err), (text, str(err))


def test_cli_check_exits_nonzero_with_the_same_message_for_every_bad_file():
    # one interpreter runs every check (the CLI's main) so the corpus costs one start-up, not twenty
    script = ("import contextlib, io, json, sys\nfrom engine.__main__ import main\nout = {}\n"
              "for path in sys.argv[1:]:\n    err = io.StringIO()\n"
              "    with contextlib.redirect_stderr(err):\n        rc = main(['data', 'check', path])\n"
              "    out[path] = [rc, err.getvalue()]\nprint(json.dumps(out))\n")
    paths = [str(BAD / name) for name in sorted(CASES)]
    result = subprocess.run([sys.executable, "-c", script, *paths], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (where, field, texts) in CASES.items():
        rc, err = outputs[str(BAD / name)]
        assert rc == 1, name
        assert err.startswith(f"error: {name}"), err
        if where:
            assert f"{name}, {where}" in err, err
        if field:
            assert f"field '{field}'" in err, err
        for text in texts:
            assert text in err, (name, text, err)


def test_cli_check_as_a_user_runs_it():
    result = cli("data", "check", str(BAD / "missing_field.jsonl"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: missing_field.jsonl, line 2, field 'output': missing. every example needs 'output'; "
        "fields found: instruction, input; or turn on 'skip bad rows'")
    assert "Traceback" not in result.stderr


def test_cli_json_error_for_the_ui():
    result = cli("data", "check", str(BAD / "unknown_role.jsonl"), "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["where"] == "line 1" and error["field"] == "messages[1].role" and "unknown role" in error["message"]


def test_skip_bad_rows_skips_and_counts():
    loaded = load_examples(BAD / "one_broken_line.jsonl", skip_bad_rows=True)
    assert loaded.count == 4 and loaded.skipped_count == 1 and loaded.skipped[0].where == "line 3"
    assert [e.where for e in loaded.examples] == ["line 1", "line 2", "line 4", "line 5"]
    result = cli("data", "check", str(BAD / "one_broken_line.jsonl"), "--skip-bad-rows")
    assert result.returncode == 0, result.stderr
    assert "format alpaca, 4 examples" in result.stdout
    assert "skipped 1 bad rows:" in result.stdout and "one_broken_line.jsonl, line 3: invalid JSON" in result.stdout
    # non-UTF-8 lines and wrong fields are bad rows too
    loaded = load_examples(BAD / "not_utf8.jsonl", skip_bad_rows=True)
    assert loaded.count == 1 and loaded.skipped[0].where == "line 2"
    loaded = load_examples(BAD / "missing_field.jsonl", skip_bad_rows=True)
    assert loaded.count == 1 and loaded.skipped[0].field == "output"


def test_every_row_bad_with_skip_says_none_is_usable(tmp_path):
    path = tmp_path / "all_bad.jsonl"
    path.write_text("{broken\n[1, 2]\n{\"instruction\": \"x\", \"output\": 5}\n")
    with pytest.raises(DataError) as info:
        load_examples(path, skip_bad_rows=True)
    assert "none of the 3 rows is usable" in str(info.value) and "line 1" in str(info.value)


def test_rows_that_are_all_prompt_are_dropped_and_counted(tiny_model, tmp_path):
    mixed = tmp_path / "mixed.jsonl"
    good = [{"instruction": "Name a colour.", "output": "Blue."}] * 3
    mixed.write_text("".join(json.dumps(r) + "\n" for r in good) + (BAD / "all_prompt.jsonl").read_text())
    result = cli("data", "check", str(mixed), "--model", tiny_model, "--max-seq-len", "64", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["examples"] == 9
    assert report["dropped"] == {"the answer starts after max_seq_len (64 tokens)": 6}
    assert report["dropped_rows"][0] == "line 4: the answer starts after max_seq_len (64 tokens)"
    every = cli("data", "check", str(BAD / "all_prompt.jsonl"), "--model", tiny_model, "--max-seq-len", "64")
    assert every.returncode == 1
    assert "all 6 examples would be dropped" in every.stderr and "Raise --max-seq-len" in every.stderr


# ---- a 200 MB file: streamed, and a size limit --------------------------------------------------------

PEAK_RSS = """import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(result.stdout); sys.stderr.write(result.stderr)
print("PEAK_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(result.returncode)
"""


def _peak(path, env):
    """Run `data check` on `path` in a fresh wrapper; its only child's peak RSS in bytes."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "engine", "data", "check",
                             str(path)], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300)
    peak = int(result.stdout.strip().splitlines()[-1].split()[1]) * 1024
    return result, peak


@pytest.fixture(scope="module")
def huge_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("huge") / "huge.jsonl"
    answer = "All work and no play makes a dull model. " * 100  # ~4 KB per row
    line = (json.dumps({"messages": [{"role": "user", "content": "Tell me the line."},
                                     {"role": "assistant", "content": answer}]}) + "\n").encode()
    rows = (200 * 2**20) // len(line) + 1
    with open(path, "wb") as handle:
        chunk = line * 1000
        for _ in range(rows // 1000):
            handle.write(chunk)
        handle.write(line * (rows % 1000))
    yield path, rows
    path.unlink()


def test_a_200_mb_file_is_streamed_with_flat_memory(huge_file):
    path, rows = huge_file
    size = path.stat().st_size
    assert size >= 200 * 2**20
    result, peak = _peak(path, {"TUNELOOM_MAX_DATA_MB": "300"})
    assert result.returncode == 0, result.stderr
    assert f"huge.jsonl: format messages, {rows} examples" in result.stdout
    assert peak < size / 4, f"peak RSS {peak / 2**20:.0f} MB for a {size / 2**20:.0f} MB file"


def test_the_size_limit_is_enforced_before_reading(huge_file, tmp_path):
    path, _ = huge_file
    result, peak = _peak(path, {"TUNELOOM_MAX_DATA_MB": "100"})
    assert result.returncode == 1
    assert "huge.jsonl: the file is 200.0 MB, above the 100 MB limit" in result.stderr
    assert "TUNELOOM_MAX_DATA_MB=201" in result.stderr
    assert peak < 100 * 2**20
    # a JSON list cannot be streamed: the limit is checked before a byte is read
    as_json = tmp_path / "huge.json"
    os.link(path, as_json)
    result, peak = _peak(as_json, {"TUNELOOM_MAX_DATA_MB": "100"})
    assert result.returncode == 1 and "huge.json: the file is 200.0 MB, above the 100 MB limit" in result.stderr
    assert peak < 100 * 2**20
    # the upload path: the same limit as a parameter
    with pytest.raises(DataError, match="above the 150 MB limit"):
        load_examples(as_json, max_mb=150)
