"""Weights out of the learner: the PEFT adapter or the full weights (ZeRO-3 aware), and a PEFT folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from rl_sql.engine.types import AdapterPayload


def peft_config_dict(model) -> dict:
    """The active adapter's config as adapter_config.json holds it (JSON-serialisable)."""
    cfg = model.peft_config[model.active_adapter].to_dict()
    return json.loads(json.dumps(cfg, default=lambda v: sorted(v) if isinstance(v, set) else str(v)))


def gather_adapter(model, step: int, *, zero_stage: int, keep: bool = True) -> AdapterPayload | None:
    """The LoRA tensors of a PEFT model: full shapes, CPU copies, keys as PEFT saves them.

    Under ZeRO-3 every rank must call this: the partitioned LoRA parameters (only they) are
    gathered with ``deepspeed.zero.GatheredParameters``, a collective. Ranks with ``keep``
    false take part in the gather and return None.
    """
    from peft import get_peft_model_state_dict

    def copy() -> AdapterPayload | None:
        if not keep:
            return None
        state = get_peft_model_state_dict(model)
        tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}
        return AdapterPayload(step=step, peft_config=peft_config_dict(model), tensors=tensors)

    if zero_stage != 3:
        return copy()
    import deepspeed

    lora_params = [p for n, p in model.named_parameters() if "lora_" in n]
    with deepspeed.zero.GatheredParameters(lora_params, modifier_rank=None):
        return copy()


def write_adapter(adapter: AdapterPayload, folder: str | Path) -> Path:
    """adapter_model.safetensors + adapter_config.json: a folder PEFT and vLLM load."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in adapter.tensors.items()}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(adapter.peft_config, indent=2))
    return folder


def full_state_dict(model, *, zero_stage: int, keep: bool = True) -> dict[str, torch.Tensor] | None:
    """Every weight and persistent buffer of a (non-PEFT) model on CPU; None where not ``keep``.

    Under ZeRO-3 every rank must call this. Weights are gathered one module at a time, so no
    rank holds more than one module's full weights on its device at once.
    """
    if zero_stage != 3:
        return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()} if keep else None
    import deepspeed

    out: dict[str, torch.Tensor] = {}
    for prefix, module in model.named_modules():
        params = list(module.named_parameters(recurse=False))
        if not params:
            continue
        with deepspeed.zero.GatheredParameters([p for _, p in params], modifier_rank=None):
            if keep:
                for name, p in params:
                    out[f"{prefix}.{name}" if prefix else name] = p.detach().to("cpu", copy=True)
    if not keep:
        return None
    persistent = set(model.state_dict())
    for name, buf in model.named_buffers():
        if name in persistent:
            out[name] = buf.detach().to("cpu", copy=True)
    return out
