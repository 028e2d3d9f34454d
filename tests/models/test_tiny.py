"""Tiny from-scratch policies: the BPE tokenizer, the random Llama and the saved folder."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rl_sql.config import ScratchModelConfig
from rl_sql.models.tiny import build_scratch_model, make_tiny_policy, save_policy, train_tokenizer

TEXTS = [
    "schema: singer(id, name, age)\nquestion: How many singers are there?\nSQL: SELECT count(*) FROM singer",
    "schema: stadium(id, name, capacity)\nquestion: Largest stadium?\nSQL: SELECT name FROM stadium ORDER BY capacity DESC LIMIT 1",
] * 10


def test_tokenizer_round_trips_sql_including_unseen_characters(tmp_path):
    tok = train_tokenizer(TEXTS, vocab_size=400, out_dir=tmp_path)
    for sql in [
        "SELECT count(*) FROM singer WHERE age >= 30",
        "SELECT \"naïve\" , 'Zoë' FROM t1 AS T1 JOIN t2 ON T1.id = t2.x -- 📈",
        "  SELECT\n\tname  FROM stadium;  ",
    ]:
        ids = tok.encode(sql, add_special_tokens=True)
        assert tok.unk_token_id not in ids  # byte-level: every character is representable
        assert tok.decode(ids) == sql
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id}) == 4
    assert len(tok.encode("SELECT count(*) FROM singer")) < len("SELECT count(*) FROM singer") / 2  # merges learned


def test_saved_tokenizer_loads_with_autotokenizer_and_has_a_chat_template(tmp_path):
    trained = train_tokenizer(TEXTS, vocab_size=400, out_dir=tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast"  # a name transformers 4 and 5 both know
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    sql = "SELECT name FROM stadium"
    assert loaded.encode(sql) == trained.encode(sql)
    assert (loaded.eos_token, loaded.pad_token) == ("</s>", "<pad>")
    chat = loaded.apply_chat_template(
        [{"role": "system", "content": "Write SQL."}, {"role": "user", "content": "How many singers?"}],
        tokenize=False, add_generation_prompt=True,
    )
    assert chat.startswith("<s>system\nWrite SQL.</s>") and chat.endswith("<s>assistant\n")


def test_scratch_model_has_the_configured_shape_and_is_seeded():
    tok = train_tokenizer(TEXTS, vocab_size=400)
    shape = ScratchModelConfig(hidden_size=128, num_layers=2, num_heads=4, intermediate_size=256, vocab_size=400)
    a = build_scratch_model(shape, tok, "float32", seed=3)
    b = build_scratch_model(shape, tok, "float32", seed=3)
    c = build_scratch_model(shape, tok, "float32", seed=4)
    assert a.config.head_dim == 32 and a.config.num_hidden_layers == 2
    assert a.config.vocab_size == len(tok) and a.config.eos_token_id == tok.eos_token_id
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
    assert build_scratch_model(shape, tok, "bfloat16").dtype == torch.bfloat16


def test_saved_policy_reloads_in_transformers_with_identical_logits(tmp_path):
    tok = train_tokenizer(TEXTS, vocab_size=400)
    shape = ScratchModelConfig(hidden_size=128, num_layers=2, num_heads=4, intermediate_size=256, vocab_size=400)
    model = build_scratch_model(shape, tok, "float32").eval()
    save_policy(model, tok, tmp_path / "policy")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in (tmp_path / "policy").iterdir()
    }
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "policy").eval()
    ids = torch.tensor([tok.encode(TEXTS[0])])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)


@pytest.mark.parametrize("texts", [None, TEXTS])
def test_make_tiny_policy_builds_a_loadable_folder(tmp_path, texts):
    path = make_tiny_policy(tmp_path / "tiny", texts)
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.hidden_size == 128 and model.config.num_attention_heads == 4
    assert model.config.vocab_size == len(tok)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
