"""Push a run to the Hugging Face Hub: its adapter or merged model, with the run card as README.md.

huggingface_hub does the work (create_repo, upload_folder). Before anything is exported or loaded, the
Hub is checked: offline mode or no network fails at once with one clear message (not after minutes of
merging, nor after the client's retries), and so does a missing token.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from engine.core.errors import UserError
from engine.core.model_source import hub_unreachable

KINDS = ("adapter", "merged")


def check_repo_id(repo_id: str) -> str:
    repo_id = (repo_id or "").strip()
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo_id):
        raise UserError(f"Hub repository {repo_id!r}: write it as owner/name, e.g. alice/polite-smollm2")
    return repo_id


def resolve_token(token: str | None) -> str:
    """The given token, else HF_TOKEN / the saved `hf auth login` token; raises when there is none."""
    from huggingface_hub import get_token

    found = (token or "").strip() or get_token()
    if not found:
        raise UserError("no Hugging Face token: paste a write token (huggingface.co/settings/tokens) into the token "
                        "field, or set HF_TOKEN")
    return found


def push(run_dir: Path, repo_id: str, kind: str = "adapter", token: str | None = None, private: bool = False,
         log=print) -> str:
    """Export the run (`kind` adapter or merged) and upload it; returns the repository's URL."""
    if kind not in KINDS:
        raise UserError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    repo_id = check_repo_id(repo_id)
    why = hub_unreachable()  # seconds at most: offline mode, DNS failure or a refused connection
    if why:
        raise UserError(f"cannot push to the Hugging Face Hub: it is not reachable ({why}). Connect to the network "
                        "and try again; the export buttons save the same files locally")
    token = resolve_token(token)
    from huggingface_hub import HfApi

    from engine.inference.export import export_adapter, export_merged

    with tempfile.TemporaryDirectory(prefix="tuneloom-push-") as tmp:
        folder = Path(tmp) / "upload"
        log(f"exporting the {kind} of {Path(run_dir).name}")
        (export_merged if kind == "merged" else export_adapter)(Path(run_dir), folder)
        api = HfApi(token=token)
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        log(f"uploading to {url}")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                          commit_message=f"Tuneloom: {Path(run_dir).name} ({kind})")
        shutil.rmtree(folder, ignore_errors=True)
    return str(url)
