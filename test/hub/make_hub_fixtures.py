"""Tiny Hugging Face checkpoints and the logits transformers computes on them, for test/hub/.

Run from the repository root with torch + transformers + safetensors installed (not project
dependencies; the tests only read the committed outputs):

    python test/hub/make_hub_fixtures.py

Writes test/hub/fixtures/<name>/ for three checkpoints saved by `save_pretrained` itself:

    gpt2-f16        GPT2LMHeadModel, weights stored as float16 (tied lm_head)
    llama-bf16      LlamaForCausalLM, weights stored as bfloat16 (tied), config.json carrying the
                    fields of HuggingFaceTB/SmolLM2's config (v4 spelling: rope_theta,
                    "rope_scaling": null, pretraining_tp, is_llama_config, rope_interleaved,
                    transformers.js_config, torch_dtype bfloat16) plus generation_config.json
    llama-sharded   LlamaForCausalLM, float32, untied lm_head, grouped-query attention, split into
                    shards with model.safetensors.index.json

and beside each, expected.safetensors: `input_ids` (int32 [2, 4]) and `logits` (float32
[2, 4, vocab]) from transformers' forward pass on the checkpoint as saved, loaded back with
`from_pretrained(dir, dtype=torch.float32)`: the half-precision weights upcast to float32, as
WebTune loads them. Deterministic (fixed seeds).
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import (GenerationConfig, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM, AutoModelForCausalLM)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
VOCAB = 1024  # the bundled tokenizer's vocabulary (models/tokenizer), so the tests can pair them
INPUT_IDS = torch.tensor([[1, 17, 300, 1023], [2, 900, 64, 0]], dtype=torch.int32)


def randomize(model, seed):
    # Larger-than-init random values everywhere (norm weights and biases too), so that every
    # tensor, any transposition and any missed bias shows in the logits.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if p.ndim == 1 and 'bias' not in _ else 0.0))


def expected(dirname):
    model = AutoModelForCausalLM.from_pretrained(dirname, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=INPUT_IDS.long()).logits.float().contiguous()
    save_file({'input_ids': INPUT_IDS.contiguous(), 'logits': logits}, os.path.join(dirname, 'expected.safetensors'))
    return logits


def fresh(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def gpt2_f16():
    d = fresh('gpt2-f16')
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    randomize(model, 1)
    model.to(torch.float16).save_pretrained(d)
    expected(d)


def llama_bf16():
    d = fresh('llama-bf16')
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=True,
                      bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    randomize(model, 2)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2, max_new_tokens=32)
    model.to(torch.bfloat16).save_pretrained(d)
    # The field set of HuggingFaceTB/SmolLM2-135M-Instruct's config.json (transformers 4.x spelling).
    path = os.path.join(d, 'config.json')
    with open(path) as f:
        saved = json.load(f)
    theta = (saved.get('rope_parameters') or {}).get('rope_theta', saved.get('rope_theta', 10000.0))
    smol = {
        'architectures': ['LlamaForCausalLM'], 'attention_bias': False, 'attention_dropout': 0.0, 'bos_token_id': 1,
        'eos_token_id': 2, 'hidden_act': 'silu', 'hidden_size': 32, 'initializer_range': 0.041666666666666664,
        'intermediate_size': 64, 'is_llama_config': True, 'max_position_embeddings': 64, 'mlp_bias': False,
        'model_type': 'llama', 'num_attention_heads': 4, 'num_hidden_layers': 2, 'num_key_value_heads': 2,
        'pad_token_id': 2, 'pretraining_tp': 1, 'rms_norm_eps': 1e-05, 'rope_interleaved': False, 'rope_scaling': None,
        'rope_theta': theta, 'tie_word_embeddings': True, 'torch_dtype': 'bfloat16',
        'transformers.js_config': {'kv_cache_dtype': {'q4f16': 'float16', 'fp16': 'float16'}},
        'transformers_version': '4.42.3', 'use_cache': True, 'vocab_size': VOCAB,
    }
    with open(path, 'w') as f:
        json.dump(smol, f, indent=2, sort_keys=True)
        f.write('\n')
    expected(d)


def llama_sharded():
    d = fresh('llama-sharded')
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=500.0,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    randomize(model, 3)
    model.save_pretrained(d, max_shard_size=40_000)
    assert os.path.exists(os.path.join(d, 'model.safetensors.index.json')), 'expected a sharded save'
    expected(d)


if __name__ == '__main__':
    gpt2_f16()
    llama_bf16()
    llama_sharded()
    for name in sorted(os.listdir(OUT)):
        files = sorted(os.listdir(os.path.join(OUT, name)))
        print(name, [(f, os.path.getsize(os.path.join(OUT, name, f))) for f in files])
