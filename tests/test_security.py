"""Security: local-only by default, auth for anything exposed, sanitised names and paths,
no remote code unless asked, safetensors only, no pickles loaded unsafely, no shells."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core.security import LaunchRefused, check_launch, parse_auth
from engine.core.workspace import inside, safe_name

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("engine", "ui", "bench", "tests")


def python_sources():
    files = [ROOT / "app.py"] if (ROOT / "app.py").is_file() else []
    for folder in SOURCE_DIRS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f.name != Path(__file__).name]


# ---- launch: 127.0.0.1 by default, auth for anything else ----------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_local_hosts_need_no_auth(host):
    assert check_launch(host, share=False, auth=None) == []


@pytest.mark.parametrize("host,share,what", [("0.0.0.0", False, "--host 0.0.0.0"),
                                             ("192.168.1.20", False, "--host 192.168.1.20"),
                                             ("127.0.0.1", True, "a share link")])
def test_exposed_without_auth_is_refused(host, share, what):
    with pytest.raises(LaunchRefused) as info:
        check_launch(host, share=share, auth=None)
    message = str(info.value)
    assert message.startswith(f"refusing to start: {what} makes the app reachable from other machines")
    assert "--auth user:password" in message and "--auth FILE" in message


def test_auth_inline_and_file_format(tmp_path):
    assert check_launch("0.0.0.0", share=True, auth="ana:s3cret:with:colons") == [("ana", "s3cret:with:colons")]
    users = tmp_path / "users.txt"
    users.write_text("# who may use the app\n\nana:one\n  bob:two  \n")
    assert parse_auth(str(users)) == [("ana", "one"), ("bob", "two")]
    users.write_text("ana:one\nbob\n")
    with pytest.raises(LaunchRefused, match=re.escape(f"{users}, line 2: expected user:password")):
        parse_auth(str(users))
    for bad in ("nopassword", ":pw", "user:"):
        with pytest.raises(LaunchRefused, match="--auth: expected user:password"):
            parse_auth(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody\n")
    with pytest.raises(LaunchRefused, match="needs --auth"):  # a file with no users is no auth
        check_launch("0.0.0.0", share=False, auth=str(empty))


def test_refusal_exits_nonzero_with_the_message():
    result = subprocess.run([sys.executable, "-c", "from engine.core.security import check_launch; "
                             "check_launch('0.0.0.0', False, None)"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode != 0
    assert "refusing to start: --host 0.0.0.0 makes the app reachable" in result.stderr


def test_app_refuses_a_public_host_without_auth(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TUNELOOM_HOME": str(tmp_path)}
    for flags, what in ((["--host", "0.0.0.0"], "--host 0.0.0.0"), (["--share"], "a share link")):
        result = subprocess.run([sys.executable, "app.py", *flags], cwd=ROOT, capture_output=True, text=True,
                                env=env, timeout=120)
        assert result.returncode != 0, result.stdout[-2000:]
        assert f"refusing to start: {what}" in result.stderr + result.stdout


# ---- names and paths from the page -----------------------------------------------------------------

TRAVERSALS = ["../../etc/passwd", "/etc/passwd", "a/b/c", "..", "...", ".hidden", "a\x00b", "nul\x00/../x",
              "\u2024\u2024/\u2024\u2024/etc", "\uff0e\uff0e\uff0fetc", "..\\..\\windows\\system32", "~root",
              "run name with spaces", "", "  ", "x" * 300, "C:\\temp\\evil", "./-rf"]


@pytest.mark.parametrize("text", TRAVERSALS)
def test_safe_name_can_never_leave_its_folder(text, tmp_path):
    name = safe_name(text)
    assert name and len(name) <= 64
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), name
    assert ".." not in name and "/" not in name and "\\" not in name and "\x00" not in name
    assert inside(tmp_path, name).parent == tmp_path.resolve()


@pytest.mark.parametrize("candidate", ["../../etc/passwd", "/etc/passwd", "a/../../x", "..", "a/../../../"])
def test_inside_refuses_paths_outside_the_base(candidate, tmp_path):
    with pytest.raises(ValueError, match="outside"):
        inside(tmp_path, candidate)


def test_inside_refuses_nul_and_symlink_escapes(tmp_path):
    with pytest.raises(ValueError):
        inside(tmp_path, "a\x00/../../etc")
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(ValueError, match="outside"):
        inside(tmp_path, "link/passwd")
    assert inside(tmp_path, "runs/ok") == tmp_path.resolve() / "runs" / "ok"
    assert inside(tmp_path, "runs/../runs/ok") == tmp_path.resolve() / "runs" / "ok"


def test_run_names_stay_inside_the_runs_folder(workspace):
    from engine.core.runs import new_run_dir, runs_dir

    for text in TRAVERSALS:
        path = new_run_dir(text)
        assert path.parent == runs_dir() and path.is_dir()
    assert not (workspace.parent / "etc").exists()


# ---- remote code, weights, pickles, shells ----------------------------------------------------------

def test_trust_remote_code_is_off_unless_asked():
    import yaml

    from engine.core.config import RunConfig

    assert RunConfig().trust_remote_code is False
    assert RunConfig.from_dict({}).trust_remote_code is False
    for preset in (ROOT / "presets").glob("*.yaml"):
        assert not (yaml.safe_load(preset.read_text()) or {}).get("trust_remote_code"), preset
    assert RunConfig.from_dict({"trust_remote_code": True}).trust_remote_code is True
    # the trainer warns in the log when it is on (test_runs_survive's OOM run turns it on)
    assert "WARNING: trust_remote_code is on" in (ROOT / "engine" / "training" / "recipe.py").read_text()


def test_pickle_weights_are_refused_with_a_clear_message(tiny_model, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file

    from engine.core.models import load_model

    folder = tmp_path / "pickled"
    folder.mkdir()
    torch.save(load_file(str(Path(tiny_model) / "model.safetensors")), folder / "pytorch_model.bin")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(tiny_model) / name, folder / name)
    with pytest.raises(ValueError) as info:
        load_model(str(folder))
    message = str(info.value)
    assert "has only PyTorch pickle weights (pytorch_model.bin)" in message
    assert "safetensors only" in message and "arbitrary code" in message


def test_every_torch_load_uses_weights_only():
    offenders = []
    for path in python_sources():
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(", text):
            call = text[match.start(): text.find(")", match.start()) + 1]
            if "weights_only=True" not in call:
                offenders.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert not offenders, f"torch.load without weights_only=True: {offenders}"


def test_no_shells_anywhere():
    pattern = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|subprocess\.getstatusoutput")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in python_sources()
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if pattern.search(line)]
    assert not offenders, f"shell use: {offenders}"


def test_the_trainer_is_started_from_an_argument_list():
    from engine.training.launcher import trainer_command

    command = trainer_command(Path("/tmp/run; rm -rf ~"), resume=True)
    assert isinstance(command, list) and command[0] == sys.executable
    assert command[-2:] == ["/tmp/run; rm -rf ~/config.yaml", "--resume"]  # one argument, never parsed by a shell
