import pytest

from rl_sql.config import Config, ConfigError


def test_defaults_are_the_original_8b_design():
    c = Config()
    assert c.model.name_or_path == "meta-llama/Meta-Llama-3.1-8B"
    assert (c.lora.r, c.lora.alpha, c.model.quantization) == (256, 128, "4bit")
    assert (c.train.epochs, c.learner.per_device_batch_size, c.learner.gradient_accumulation_steps) == (3, 1, 8)
    assert (c.learner.learning_rate, c.grpo.num_generations, c.grpo.beta) == (2e-4, 4, 0.1)
    assert (c.reward.syntax_weight, c.reward.execution_weight, c.reward.semantic_weight) == (0.2, 0.6, 0.2)
    assert c.model.gradient_checkpointing


@pytest.mark.parametrize("recipe", ["jobs/tiny_grpo.yaml", "jobs/llama8b_grpo.yaml"])
def test_recipes_load(recipe):
    Config.load(recipe)


def test_recipe_overrides_only_what_it_lists():
    tiny = Config.load("jobs/tiny_grpo.yaml")
    assert tiny.model.init == "scratch" and tiny.lora.r == 16
    assert tiny.reward.execution_weight == Config().reward.execution_weight


def test_dotted_overrides_parse_yaml_values():
    c = Config.load("jobs/tiny_grpo.yaml", ["grpo.beta=0.0", "train.max_steps=3", "lora.target_modules=[q_proj, v_proj]"])
    assert c.grpo.beta == 0.0 and c.train.max_steps == 3 and c.lora.target_modules == ["q_proj", "v_proj"]


def test_unknown_key_names_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grpo:\n  num_generation: 4\n")
    with pytest.raises(ConfigError, match=r"grpo\.num_generation: unknown key"):
        Config.load(bad)


def test_impossible_values_are_errors():
    with pytest.raises(ConfigError, match="grpo.num_generations"):
        Config.load(None, ["grpo.num_generations=1"])
    with pytest.raises(ConfigError, match="reward weights are all zero"):
        Config.load(None, ["reward.syntax_weight=0", "reward.execution_weight=0", "reward.semantic_weight=0"])
    with pytest.raises(ConfigError, match="not divisible"):
        Config.load(None, ["model.scratch.hidden_size=100", "model.scratch.num_heads=3"])


def test_malformed_override_and_missing_file():
    with pytest.raises(ConfigError, match="key.sub=value"):
        Config.load(None, ["grpo.beta"])
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load("jobs/nope.yaml")


def test_yaml_round_trip(tmp_path):
    c = Config.load("jobs/tiny_grpo.yaml")
    path = tmp_path / "c.yaml"
    path.write_text(c.to_yaml())
    assert Config.load(path) == c


def test_auto_dtype_resolves_for_this_machine():
    import torch

    fast_bf16 = torch.cuda.is_available() or torch.ops.mkldnn._is_mkldnn_bf16_supported()
    auto = Config.load("jobs/tiny_grpo.yaml").model
    assert auto.dtype == "auto" and auto.resolved_dtype == ("bfloat16" if fast_bf16 else "float32")
    for name in ("bfloat16", "float16", "float32"):  # an explicit dtype is kept wherever it runs
        assert Config.load(None, [f"model.dtype={name}"]).model.resolved_dtype == name
    with pytest.raises(ValueError, match="dtype"):
        Config.load(None, ["model.dtype=int8"])
