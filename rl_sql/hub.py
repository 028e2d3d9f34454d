"""Hugging Face Hub: the token (HF_TOKEN, or its alias HF_KEY) and adapter uploads."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def hf_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HF_KEY") or None


def upload_folder(folder: str, repo_id: str, *, path_in_repo: str = "", commit_message: str = "rl_sql upload") -> str | None:
    """Upload ``folder`` to ``repo_id`` (created private if missing); None when no token is set."""
    token = hf_token()
    if token is None:
        log.info("no HF_TOKEN/HF_KEY set: not uploading %s to %s", folder, repo_id)
        return None
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=True, exist_ok=True)
    info = api.upload_folder(folder_path=folder, repo_id=repo_id, path_in_repo=path_in_repo, commit_message=commit_message)
    log.info("uploaded %s to %s", folder, repo_id)
    return str(info)
