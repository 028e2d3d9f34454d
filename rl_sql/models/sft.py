"""`rl-sql sft`: supervised warm start, so GRPO starts from a policy that already writes SQL.

``model.init == "scratch"``: a byte-level BPE tokenizer is trained on the training texts and
a random Llama (``model.scratch``) is trained from scratch. ``"pretrained"``: a LoRA adapter
(``lora.*``) is trained on ``model.name_or_path`` and merged, so the output is a plain model
folder (the base is loaded unquantized: ``model.quantization`` applies to GRPO only).

Training uses the SFT part of the TRAIN split only (``load_splits``: the held-out split stays
unseen, and with ``data.rl_fraction > 0`` so do the questions kept for GRPO). Each sequence is
prompt + target + eos, with the loss on the target tokens only (target = the gold SQL; in the chat style the gold SQL in
a ```sql block, as the system prompt asks). Sequences (at most ``sft.seq_len`` tokens) are
batched by length into batches of about ``sft.batch_tokens`` tokens, padding included: length
bucketing instead of concatenation, so no sequence attends to another and little compute goes
to padding. AdamW, linear warmup then cosine decay to 2% of ``sft.learning_rate`` over
``sft.epochs``, or over ``sft.max_minutes`` when that budget ends first. bf16 autocast when
``model.dtype`` resolves to bfloat16; the master weights stay fp32 and are saved in that dtype.

The result is cached: an output folder trained from the same recipe and the same training
examples (a fingerprint in ``sft_fingerprint.json``) is returned without retraining.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from rl_sql.config import Config
from rl_sql.data import SYSTEM_PROMPT, format_prompt, load_examples, load_splits, split_examples
from rl_sql.data.example import SqlExample
from rl_sql.data.prompts import user_message
from rl_sql.models.loading import encode_prompt

log = logging.getLogger(__name__)

FINGERPRINT = "sft_fingerprint.json"
METRICS = "sft_metrics.json"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class SftSequence:
    """One training sequence: prompt + target + eos, loss on ``ids[n_prompt:]``."""

    ids: list[int]
    n_prompt: int


def sft_target(example: SqlExample, style: str) -> str:
    """What the policy should write after the prompt (eos is appended after tokenizing)."""
    return f"```sql\n{example.answer.strip()}\n```" if style == "chat" else example.answer.strip()


def fingerprint(config: Config, train: list[SqlExample]) -> str:
    """Hash of everything that changes the SFT result: model, LoRA (pretrained), data, SFT settings,
    the seed and the training examples themselves."""
    recipe = {
        "model": config.model.model_dump(mode="json", exclude={"name_or_path", "quantization", "max_prompt_tokens"}),
        "dtype": config.model.resolved_dtype,  # "auto" trains in bf16 or fp32 depending on the machine
        "base": config.model.name_or_path if config.model.init == "pretrained" else None,
        "lora": config.lora.model_dump(mode="json") if config.model.init == "pretrained" else None,
        "data": config.data.model_dump(mode="json", exclude={"paraphrase_heldout"}),  # GRPO-side only
        "sft": config.sft.model_dump(mode="json", exclude={"output_dir"}),
        "seed": config.train.seed,
        "train": hashlib.sha256(
            "\x1e".join(f"{e.id}\x1f{e.context}\x1f{e.question}\x1f{e.answer}" for e in train).encode()
        ).hexdigest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def run_sft(config: Config, out_dir: str | Path | None = None) -> Path:
    """Train (or reuse) the SFT policy; returns its folder (config.json, model.safetensors, tokenizer)."""
    out = Path(out_dir or config.sft.output_dir)
    train, _, heldout, _ = load_splits(config.data)
    key = fingerprint(config, train)
    stamp = out / FINGERPRINT
    if stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == key and (out / "config.json").is_file():
        log.info("SFT: reusing %s (trained from the same recipe and %d training examples)", out, len(train))
        return out
    log.info("SFT: %s training on %d examples (%d held out, never seen)", config.model.init, len(train), len(heldout))
    stamp.unlink(missing_ok=True)  # a run that dies while overwriting must not look like a finished one
    torch.manual_seed(config.train.seed)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer, merge = _initial_model(config, train, device)
    sequences = tokenize(config, tokenizer, train)
    metrics = train_sequences(config, model, sequences, pad_id=tokenizer.pad_token_id, device=device)
    if merge:
        model = model.merge_and_unload()
    from rl_sql.models.tiny import save_policy

    out.mkdir(parents=True, exist_ok=True)
    save_policy(model.to("cpu", _DTYPES[config.model.resolved_dtype]), tokenizer, out)
    metrics.update(train_examples=len(train), heldout_examples=len(heldout))
    (out / METRICS).write_text(json.dumps(metrics, indent=2))
    stamp.write_text(json.dumps({"fingerprint": key, "train_examples": len(train), "heldout_examples": len(heldout)}))
    log.info("SFT: wrote %s (%s)", out, {k: round(v, 4) for k, v in metrics.items()})
    return out


def continue_sft(config: Config, policy: str | Path, out_dir: str | Path, *, seconds: float,
                 lr_scale: float = 0.1) -> Path:
    """The control for "does GRPO help?": keep training ``policy`` by SFT on the whole training split
    (the SFT part and, with ``data.rl_fraction > 0``, the GRPO questions with their gold SQL) for
    ``seconds`` of wall-clock time, and save the result to ``out_dir``.

    A fresh AdamW, peak learning rate ``lr_scale * sft.learning_rate`` (the SFT run already decayed
    its own; restarting at full rate would undo it), warmup then cosine over the time budget. The
    model is trained in full, as the SFT run was (the tiny recipe trains from scratch, not LoRA).
    """
    from transformers import AutoModelForCausalLM

    from rl_sql.models.loading import load_tokenizer
    from rl_sql.models.tiny import save_policy

    if seconds <= 0:
        raise ValueError(f"continue_sft needs a positive time budget, got seconds={seconds}")
    train, _ = split_examples(load_examples(config.data), config.data.heldout_fraction, config.data.seed)
    torch.manual_seed(config.train.seed + 1)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(str(policy), trust_remote_code=config.model.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(str(policy), dtype=torch.float32,
                                                 trust_remote_code=config.model.trust_remote_code).to(device)
    budget = config.sft.model_copy(update={"epochs": 1e6, "max_minutes": seconds / 60.0,
                                           "learning_rate": config.sft.learning_rate * lr_scale})
    metrics = train_sequences(config.model_copy(update={"sft": budget}), model, tokenize(config, tokenizer, train),
                              pad_id=tokenizer.pad_token_id, device=device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_policy(model.to("cpu", _DTYPES[config.model.resolved_dtype]), tokenizer, out)
    (out / METRICS).write_text(json.dumps({**metrics, "continued_from": str(policy), "lr_scale": lr_scale}, indent=2))
    log.info("SFT continued for %.0f s: wrote %s (loss %.3f -> %.3f)", seconds, out,
             metrics["loss_first"], metrics["loss_last"])
    return out


def _initial_model(config: Config, train: list[SqlExample], device: torch.device):
    """(model, tokenizer, merge_after_training)."""
    style = config.data.prompt_style
    if config.model.init == "scratch":
        from rl_sql.models.tiny import build_scratch_model, train_tokenizer

        texts = [format_prompt(e, "plain") + sft_target(e, style) for e in train]
        if style == "chat":
            texts += [SYSTEM_PROMPT] + [user_message(e) for e in train]
        tokenizer = train_tokenizer(texts, config.model.scratch.vocab_size)
        model = build_scratch_model(config.model.scratch, tokenizer, "float32", seed=config.train.seed)
        return model.to(device), tokenizer, False
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from rl_sql.models.loading import load_tokenizer, resolve_model_path
    from rl_sql.models.lora import peft_lora_config

    path = resolve_model_path(config.model.name_or_path)
    tokenizer = load_tokenizer(path, trust_remote_code=config.model.trust_remote_code)
    # fp32 on CPU (autocast does the bf16 math); the configured dtype on a GPU.
    dtype = _DTYPES[config.model.resolved_dtype] if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=config.model.trust_remote_code)
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model = get_peft_model(model, peft_lora_config(config.lora, model.config.num_hidden_layers))
    return model.to(device), tokenizer, True


def tokenize(config: Config, tokenizer, examples: list[SqlExample]) -> list[SftSequence]:
    """Prompt + target + eos per example, cut to ``sft.seq_len`` (prompt cut from the left, at most
    half the length left to the target; cut examples are counted and logged)."""
    seq_len, style = config.sft.seq_len, config.data.prompt_style
    out, cut = [], 0
    for e in examples:
        prompt = encode_prompt(tokenizer, format_prompt(e, style, tokenizer))
        target = tokenizer.encode(sft_target(e, style), add_special_tokens=False) + [tokenizer.eos_token_id]
        keep_prompt = seq_len - min(len(target), seq_len // 2)
        cut += len(prompt) + len(target) > seq_len
        prompt = prompt[-keep_prompt:]
        out.append(SftSequence((prompt + target)[:seq_len], len(prompt)))
    if cut:
        log.warning("SFT: %d of %d examples are longer than sft.seq_len=%d tokens and were cut", cut, len(examples), seq_len)
    return out


def length_batches(sequences: list[SftSequence], batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Index batches of similar-length sequences, at most ``batch_tokens`` padded tokens each
    (a longer single sequence is a batch of its own), in shuffled order."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i].ids))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = len(sequences[i].ids)  # sorted: the widest so far
        if current and width * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(sequences: list[SftSequence], idx: list[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids_BT, labels_BT with -100 off the target, attention_mask_BT), right-padded."""
    width = max(len(sequences[i].ids) for i in idx)
    input_ids_BT = torch.full((len(idx), width), pad_id, dtype=torch.long)
    labels_BT = torch.full((len(idx), width), -100, dtype=torch.long)
    attention_BT = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        seq = sequences[i]
        input_ids_BT[row, : len(seq.ids)] = torch.tensor(seq.ids)
        labels_BT[row, seq.n_prompt : len(seq.ids)] = torch.tensor(seq.ids[seq.n_prompt :])
        attention_BT[row, : len(seq.ids)] = 1
    return input_ids_BT, labels_BT, attention_BT


def train_sequences(config: Config, model, sequences: list[SftSequence], *, pad_id: int, device: torch.device) -> dict[str, float]:
    """The SFT loop (see the module docstring); returns its metrics."""
    if not sequences:
        raise ValueError("SFT has no training sequences: the train split is empty (lower data.heldout_fraction)")
    sc = config.sft
    rng = random.Random(config.train.seed)
    per_epoch = len(length_batches(sequences, sc.batch_tokens, random.Random(0)))
    total_steps = max(1, math.ceil(sc.epochs * per_epoch))
    budget_s = sc.max_minutes * 60 if sc.max_minutes else None
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=sc.learning_rate, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, min(100, total_steps // 20))
    autocast = config.model.resolved_dtype == "bfloat16"
    model.train()
    start, step, tokens, padded_tokens, target_tokens = time.perf_counter(), 0, 0, 0, 0
    losses: list[float] = []
    last_log = start
    while True:
        for idx in length_batches(sequences, sc.batch_tokens, rng):
            elapsed = time.perf_counter() - start
            progress = max(step / total_steps, elapsed / budget_s if budget_s else 0.0)
            if progress >= 1.0:
                break
            lr_scale = min(1.0, (step + 1) / warmup) * max(0.02, 0.5 * (1 + math.cos(math.pi * progress)))
            for group in opt.param_groups:
                group["lr"] = sc.learning_rate * lr_scale
            input_ids_BT, labels_BT, attention_BT = (t.to(device) for t in collate(sequences, idx, pad_id))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = model(input_ids=input_ids_BT, attention_mask=attention_BT, labels=labels_BT).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            tokens += int(attention_BT.sum())
            padded_tokens += attention_BT.numel()
            target_tokens += int((labels_BT != -100).sum())
            losses.append(loss.item())
            if time.perf_counter() - last_log > 30:
                last_log = time.perf_counter()
                log.info("SFT step %d/%d loss %.3f (%.0f tokens/s, %.0f%% done)", step, total_steps,
                         sum(losses[-20:]) / len(losses[-20:]), tokens / (last_log - start), 100 * progress)
        else:
            continue  # epoch finished within the budget: next epoch
        break
    seconds = time.perf_counter() - start
    k = max(1, min(10, len(losses) // 5))
    return {
        "steps": float(step),
        "epochs": step / per_epoch,
        "loss_first": sum(losses[:k]) / k if losses else float("nan"),
        "loss_last": sum(losses[-k:]) / k if losses else float("nan"),
        "tokens": float(tokens),
        "target_tokens": float(target_tokens),
        "padding_fraction": 1.0 - tokens / max(padded_tokens, 1),
        "tokens_per_s": tokens / max(seconds, 1e-9),
        "seconds": seconds,
    }
