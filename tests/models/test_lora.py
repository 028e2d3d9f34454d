import pytest

from rl_sql.config import LoraConfig
from rl_sql.models.lora import peft_lora_config


def test_every_layer_by_default():
    config = peft_lora_config(LoraConfig(r=8, alpha=16), num_layers=30)
    assert config.layers_to_transform is None and config.r == 8 and config.lora_alpha == 16
    assert set(config.target_modules) == set(LoraConfig().target_modules)


def test_last_layers_adapts_only_the_top_of_the_stack():
    config = peft_lora_config(LoraConfig(last_layers=10), num_layers=30)
    assert config.layers_to_transform == list(range(20, 30))


def test_last_layers_beyond_the_model_is_a_clear_error():
    with pytest.raises(ValueError, match=r"lora.last_layers=31 but the model has 30 layers: use at most 30"):
        peft_lora_config(LoraConfig(last_layers=31), num_layers=30)


def test_a_peft_model_gets_adapters_only_where_asked():
    import torch
    from peft import get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                                         num_attention_heads=2, num_key_value_heads=2, vocab_size=100))
    model = get_peft_model(model, peft_lora_config(LoraConfig(r=4, last_layers=1), num_layers=4))
    adapted = {name.split(".layers.")[1].split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert adapted == {"3"}
