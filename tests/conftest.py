"""Shared test setup. Its folder (tests/) is on sys.path, so helpers such as tiny_run import directly."""

import os

os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_SILENT", "true")
