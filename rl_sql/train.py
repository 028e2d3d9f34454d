"""`rl-sql train`: SFT warm start when the recipe asks for it (cached), then GRPO, then save and upload."""

from __future__ import annotations

import logging
from pathlib import Path

from rl_sql.config import Config
from rl_sql.eval.report import write_training_report
from rl_sql.hub import upload_folder

log = logging.getLogger(__name__)


def policy_for(config: Config) -> str:
    """The policy GRPO starts from: the (cached) SFT policy, or the pretrained model itself, as
    named in the recipe. A hub id or an embedded model name is resolved by each actor on its own
    node (``resolve_model_path``), never as a folder of the driver's node handed to the others."""
    if config.train.sft_first:
        from rl_sql.models.sft import run_sft

        return str(run_sft(config))
    return config.model.name_or_path


def run_training(config: Config, *, run_dir: str | None = None, resume: bool = False) -> dict:
    from rl_sql.engine.driver import GRPOTrainer

    out = Path(run_dir or config.train.out_dir)
    policy = policy_for(config)
    trainer = GRPOTrainer(config, policy, out, resume=resume)
    try:
        history = trainer.fit()
        saved = trainer.save_final()
    finally:
        trainer.shutdown()
    write_training_report(out)
    if config.train.hub_repo_id and saved.get("adapter"):
        upload_folder(saved["adapter"], config.train.hub_repo_id, path_in_repo="adapter")
        if saved.get("merged"):
            upload_folder(saved["merged"], config.train.hub_repo_id, path_in_repo="merged")
    return {"run_dir": str(out), "policy": policy, "saved": saved, "history": history}

