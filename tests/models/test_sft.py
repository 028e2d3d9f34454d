"""Supervised warm start: loss on the SQL only, train split only, a loadable policy, and the cache."""

import json
import logging

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rl_sql.config import Config
from rl_sql.data import load_examples, split_examples
from rl_sql.data.example import SqlExample
from rl_sql.models.sft import FINGERPRINT, METRICS, collate, fingerprint, length_batches, run_sft, tokenize
from rl_sql.models.tiny import make_tiny_policy, train_tokenizer

EXAMPLE = SqlExample(
    id="t-1", question="How many singers are there?", answer="SELECT count(*) FROM singer",
    context="CREATE TABLE singer (id INT, name TEXT, age INT)",
)


def scratch_config(tmp_path, *extra: str) -> Config:
    return Config.load(None, [
        "model.init=scratch", "model.dtype=bfloat16",
        "model.scratch={hidden_size: 128, num_layers: 2, num_heads: 4, intermediate_size: 256, vocab_size: 600}",
        "data.source=spider-embedded", "data.prompt_style=plain", "data.max_examples=48", "data.heldout_fraction=0.25",
        "sft.epochs=6", "sft.learning_rate=3e-3", "sft.batch_tokens=2048", "sft.seq_len=256",
        f"sft.output_dir={tmp_path}/sft", *extra,
    ])


def test_loss_is_on_the_sql_and_eos_only(tmp_path):
    config = scratch_config(tmp_path)
    tok = train_tokenizer(["schema: singer(id, name, age)\nquestion: How many?\nSQL: SELECT count(*) FROM singer"] * 5, 300)
    [seq] = tokenize(config, tok, [EXAMPLE])
    input_ids_BT, labels_BT, attention_BT = collate([seq, seq], [0, 1], pad_id=tok.pad_token_id)
    target = labels_BT[0][labels_BT[0] != -100].tolist()
    assert target[-1] == tok.eos_token_id
    assert tok.decode(target[:-1]) == EXAMPLE.answer
    assert tok.decode(input_ids_BT[0, : seq.n_prompt].tolist()).endswith("question: How many singers are there?\nSQL: ")
    assert attention_BT.sum() == 2 * len(seq.ids)


def test_long_prompts_are_cut_from_the_left_and_keep_the_whole_target(tmp_path, caplog):
    config = scratch_config(tmp_path, "sft.seq_len=32")
    tok = train_tokenizer(["SELECT count(*) FROM singer"] * 5, 300)
    long = SqlExample(id="t-2", question="why? " * 50, answer=EXAMPLE.answer, context=EXAMPLE.context)
    with caplog.at_level(logging.WARNING):
        [seq] = tokenize(config, tok, [long])
    assert len(seq.ids) == 32 and "1 of 1 examples are longer" in caplog.text
    assert tok.decode(seq.ids[seq.n_prompt : -1]) == EXAMPLE.answer


def test_length_batches_cover_every_sequence_once_within_the_token_budget():
    import random

    from rl_sql.models.sft import SftSequence

    seqs = [SftSequence(list(range(n)), 1) for n in [5, 90, 7, 33, 60, 8, 120, 2, 64, 64]]
    batches = length_batches(seqs, 128, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(len(seqs)))
    for b in batches:
        assert len(b) == 1 or max(len(seqs[i].ids) for i in b) * len(b) <= 128


def test_fingerprint_changes_with_the_recipe_and_the_training_examples(tmp_path):
    config = scratch_config(tmp_path)
    other = EXAMPLE.__class__(**{**EXAMPLE.__dict__, "question": "Count the singers."})
    base = fingerprint(config, [EXAMPLE])
    assert fingerprint(scratch_config(tmp_path), [EXAMPLE]) == base
    assert fingerprint(scratch_config(tmp_path / "elsewhere"), [EXAMPLE]) == base  # output_dir is not the recipe
    assert fingerprint(scratch_config(tmp_path, "sft.learning_rate=1e-3"), [EXAMPLE]) != base
    assert fingerprint(scratch_config(tmp_path, "train.seed=1"), [EXAMPLE]) != base
    assert fingerprint(config, [other]) != base


def test_scratch_sft_learns_writes_a_loadable_policy_and_is_cached(tmp_path, caplog):
    config = scratch_config(tmp_path)
    out = run_sft(config)
    metrics = json.loads((out / METRICS).read_text())
    assert metrics["loss_last"] < 0.7 * metrics["loss_first"], metrics
    train, heldout = split_examples(load_examples(config.data), config.data.heldout_fraction, config.data.seed)
    assert metrics["train_examples"] == len(train) and metrics["heldout_examples"] == len(heldout) > 0

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.dtype == torch.bfloat16 and model.config.vocab_size == len(tok)
    assert model.config.hidden_size == 128

    stamp = (out / FINGERPRINT).read_text()
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="rl_sql.models.sft"):
        again = run_sft(config)
    assert again == out and "reusing" in caplog.text
    assert (out / "model.safetensors").stat().st_mtime_ns == mtime and (out / FINGERPRINT).read_text() == stamp


def test_pretrained_sft_trains_lora_and_saves_a_merged_model(tmp_path):
    base_path = make_tiny_policy(tmp_path / "base")
    config = scratch_config(
        tmp_path, "model.init=pretrained", f"model.name_or_path={base_path}", "model.dtype=float32",
        "model.gradient_checkpointing=false", "lora.r=8", "lora.alpha=16", "lora.dropout=0.0",
        "data.max_examples=24", "sft.epochs=4", "sft.learning_rate=1e-2",
    )
    out = run_sft(config)
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    metrics = json.loads((out / METRICS).read_text())
    assert metrics["loss_last"] < metrics["loss_first"], metrics
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(base_path)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    changed = [n for (n, p), (_, q) in zip(merged.named_parameters(), base.named_parameters()) if not torch.equal(p, q)]
    assert any("q_proj" in n for n in changed) and not any("embed_tokens" in n for n in changed)


def test_an_empty_train_split_is_a_clear_error(tmp_path):
    from rl_sql.models.sft import train_sequences

    with pytest.raises(ValueError, match="train split is empty"):
        train_sequences(scratch_config(tmp_path), torch.nn.Linear(1, 1), [], pad_id=0, device=torch.device("cpu"))


def test_continued_sft_trains_the_policy_for_its_time_budget(tmp_path):
    """The "same extra wall-clock time" control of jobs/tiny_sft_then_grpo.py."""
    from rl_sql.models.sft import continue_sft

    config = scratch_config(tmp_path, "sft.epochs=1")
    start = run_sft(config)
    out = continue_sft(config, start, tmp_path / "continued", seconds=3.0)
    metrics = json.loads((out / METRICS).read_text())
    assert 2.5 < metrics["seconds"] < 30 and metrics["steps"] >= 1 and metrics["continued_from"] == str(start)
    before, after = AutoModelForCausalLM.from_pretrained(start), AutoModelForCausalLM.from_pretrained(out)
    assert any(not torch.equal(p, q) for p, q in zip(before.parameters(), after.parameters()))
    assert after.dtype == torch.bfloat16
    assert AutoTokenizer.from_pretrained(out).get_vocab() == AutoTokenizer.from_pretrained(start).get_vocab()
    with pytest.raises(ValueError, match="positive time budget"):
        continue_sft(config, start, tmp_path / "never", seconds=0)
