"""Model folders and hub ids (local folders only: no network in tests)."""

import pytest
from tokenizers import processors

from rl_sql.models import loading
from rl_sql.models.loading import ModelNotFound, encode_prompt, load_tokenizer, resolve_model_path
from rl_sql.models.tiny import make_tiny_policy, train_tokenizer


def test_local_folder_resolves_to_itself_and_its_tokenizer_loads(tmp_path):
    path = make_tiny_policy(tmp_path / "tiny")
    assert resolve_model_path(path) == path
    tok = load_tokenizer(path)
    assert tok.pad_token is not None and tok.eos_token == "</s>"


def test_folder_without_config_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model_path(str(tmp_path))


@pytest.mark.parametrize("name", ["runs/tiny/sft", "/nonexistent/model", "./model", "runs/sft"])
def test_missing_local_paths_are_not_mistaken_for_hub_ids(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative names resolve here, not in a checkout where `make train` wrote runs/
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_model_path(name)


def test_unreachable_hub_id_says_to_pass_a_local_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_KEY", "hf_dummy_alias_token")
    seen = {}
    real = loading.hf_token
    monkeypatch.setattr(loading, "hf_token", lambda: seen.setdefault("token", real()))
    with pytest.raises(ModelNotFound, match="local folder"):
        resolve_model_path("rl-sql-tests/no-such-model")
    assert seen["token"] == "hf_dummy_alias_token"  # HF_KEY is honoured as an alias of HF_TOKEN


def test_encode_prompt_adds_bos_once(tmp_path):
    tok = train_tokenizer(["SELECT name FROM singer"] * 5, vocab_size=300)
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)]
    )
    plain = encode_prompt(tok, "SQL: ")
    templated = encode_prompt(tok, "<s>user\nhi</s>\n")
    assert plain[0] == tok.bos_token_id and plain[1] != tok.bos_token_id
    assert templated[0] == tok.bos_token_id and templated[1] != tok.bos_token_id
