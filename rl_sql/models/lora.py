"""The PEFT LoRA configuration of a recipe's ``lora`` section, the same for SFT and GRPO."""

from __future__ import annotations

from rl_sql.config import LoraConfig as LoraSection


def peft_lora_config(lora: LoraSection, num_layers: int):
    """``peft.LoraConfig`` for a causal LM with ``num_layers`` transformer layers; with
    ``lora.last_layers = N`` only the last N layers are adapted."""
    from peft import LoraConfig

    layers = None
    if lora.last_layers is not None:
        if lora.last_layers > num_layers:
            raise ValueError(f"lora.last_layers={lora.last_layers} but the model has {num_layers} layers: "
                             f"use at most {num_layers}, or leave it unset to adapt every layer")
        layers = list(range(num_layers - lora.last_layers, num_layers))
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), layers_to_transform=layers, task_type="CAUSAL_LM")
