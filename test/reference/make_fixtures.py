"""Writes the Hugging Face reference fixtures under test/fixtures/hf/ (deterministic).

    /usr/bin/python3 test/reference/make_fixtures.py

Every expected value is computed by hf_reference.py (a line-by-line mirror of transformers'
GPT2LMHeadModel / LlamaForCausalLM and PEFT LoRA) in float64 from float32 weights, then
stored as float32. See test/fixtures/hf/README.md for what each directory proves.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402
from safetensors_io import save_file  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf"))
TRANSFORMERS_V4 = "4.51.3"  # the v4 config.json layout mirrored below (keys written by PretrainedConfig.to_diff_dict)
TRANSFORMERS_V5 = "5.18.0"
WEIGHT_STD = 0.2  # large enough that logits are far from flat, small enough that softmax is not saturated


# ---------------------------------------------------------------------------------------
# Writing helpers (formats as transformers / PEFT write them)
# ---------------------------------------------------------------------------------------


def write_json(path: str, obj) -> None:
    """PretrainedConfig.to_json_string / PeftConfigMixin.save_pretrained: json.dumps(indent=2, sort_keys=True)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_plain_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=1) + "\n")


def save_tensors(path: str, tensors: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}, path, {"format": "pt"})


# ---------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------

VOCAB = 37  # odd on purpose: no accidental alignment to 4 or 8
BOS = 35
EOS = 36

GPT2_CONFIG = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": BOS,
    "embd_pdrop": 0.1,
    "eos_token_id": EOS,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_embd": 16,
    "n_head": 2,
    "n_inner": None,
    "n_layer": 2,
    "n_positions": 32,
    "reorder_and_upcast_attn": False,
    "resid_pdrop": 0.1,
    "scale_attn_by_inverse_layer_idx": False,
    "scale_attn_weights": True,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    # transformers omits keys equal to PretrainedConfig defaults; written here explicitly
    # (gpt2-tiny-original/config.json omits it, as the original Hub config does)
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "transformers_version": TRANSFORMERS_V4,
    "use_cache": True,
    "vocab_size": VOCAB,
}

# The original GPT-2 Hub config.json: n_ctx, task_specific_params, no torch_dtype / tie_word_embeddings.
GPT2_ORIGINAL_CONFIG = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": BOS,
    "embd_pdrop": 0.1,
    "eos_token_id": EOS,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_ctx": 32,
    "n_embd": 16,
    "n_head": 2,
    "n_layer": 2,
    "n_positions": 32,
    "resid_pdrop": 0.1,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": VOCAB,
}

LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": BOS,
    "eos_token_id": EOS,
    "head_dim": 4,
    "hidden_act": "silu",
    "hidden_size": 16,
    "initializer_range": 0.02,
    "intermediate_size": 40,
    "max_position_embeddings": 64,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": TRANSFORMERS_V4,
    "use_cache": True,
    "vocab_size": VOCAB,
}


def config_v5(config: dict) -> dict:
    """The same model as transformers 5.x writes config.json (checked against 5.18.0 by
    verify_with_transformers.py): `dtype` instead of `torch_dtype`, `rope_parameters`
    {rope_theta, rope_type} instead of `rope_theta` / `rope_scaling` (Llama), and the
    PretrainedConfig keys v5 always writes (pad_token_id, add_cross_attention for GPT-2)."""
    out = {k: v for k, v in config.items() if k not in ("rope_theta", "rope_scaling", "torch_dtype")}
    if config["model_type"] == "llama":
        out["rope_parameters"] = {"rope_theta": config["rope_theta"], "rope_type": "default"}
    else:
        out["add_cross_attention"] = False
    out["pad_token_id"] = None
    out["dtype"] = "float32"
    out["transformers_version"] = TRANSFORMERS_V5
    return out


# A second Llama that exercises what llama-tiny does not: head_dim != hidden_size / heads
# (q_proj [heads*head_dim, hidden], o_proj [hidden, heads*head_dim]), a single KV head (MQA),
# q/k/v/o and MLP biases, tied embeddings (no lm_head.weight stored), another rope_theta and eps.
LLAMA_VARIANT_CONFIG = dict(
    LLAMA_CONFIG,
    attention_bias=True,
    head_dim=6,
    intermediate_size=24,
    mlp_bias=True,
    num_attention_heads=2,
    num_key_value_heads=1,
    rms_norm_eps=1e-05,
    rope_theta=500000.0,
    tie_word_embeddings=True,
)


# ---------------------------------------------------------------------------------------
# Weights (random, HF names and layouts)
# ---------------------------------------------------------------------------------------


def randn(*shape, std=WEIGHT_STD):
    return torch.randn(*shape, dtype=torch.float32) * std


def gpt2_weights(c: dict) -> dict:
    C, V, P, L = c["n_embd"], c["vocab_size"], c["n_positions"], c["n_layer"]
    inner = c["n_inner"] or 4 * C
    w = {"transformer.wte.weight": randn(V, C), "transformer.wpe.weight": randn(P, C, std=0.1)}
    for i in range(L):
        p = f"transformer.h.{i}"
        w[f"{p}.ln_1.weight"] = 1 + randn(C, std=0.1)
        w[f"{p}.ln_1.bias"] = randn(C, std=0.1)
        w[f"{p}.attn.c_attn.weight"] = randn(C, 3 * C)  # Conv1D [in, out]
        w[f"{p}.attn.c_attn.bias"] = randn(3 * C, std=0.1)
        w[f"{p}.attn.c_proj.weight"] = randn(C, C)
        w[f"{p}.attn.c_proj.bias"] = randn(C, std=0.1)
        w[f"{p}.ln_2.weight"] = 1 + randn(C, std=0.1)
        w[f"{p}.ln_2.bias"] = randn(C, std=0.1)
        w[f"{p}.mlp.c_fc.weight"] = randn(C, inner)
        w[f"{p}.mlp.c_fc.bias"] = randn(inner, std=0.1)
        w[f"{p}.mlp.c_proj.weight"] = randn(inner, C)
        w[f"{p}.mlp.c_proj.bias"] = randn(C, std=0.1)
    w["transformer.ln_f.weight"] = 1 + randn(C, std=0.1)
    w["transformer.ln_f.bias"] = randn(C, std=0.1)
    return w  # lm_head.weight is tied to wte and, as transformers saves GPT-2, not stored


def llama_weights(c: dict) -> dict:
    C, V, L, I = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"], c["intermediate_size"]
    hd = ref.llama_head_dim(c)
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    w = {"model.embed_tokens.weight": randn(V, C, std=0.5)}
    for i in range(L):
        p = f"model.layers.{i}"
        w[f"{p}.input_layernorm.weight"] = 1 + randn(C, std=0.1)
        w[f"{p}.self_attn.q_proj.weight"] = randn(nh * hd, C, std=0.3)  # nn.Linear [out, in]
        w[f"{p}.self_attn.k_proj.weight"] = randn(nkv * hd, C, std=0.3)
        w[f"{p}.self_attn.v_proj.weight"] = randn(nkv * hd, C, std=0.3)
        w[f"{p}.self_attn.o_proj.weight"] = randn(C, nh * hd, std=0.3)
        if c["attention_bias"]:
            w[f"{p}.self_attn.q_proj.bias"] = randn(nh * hd, std=0.1)
            w[f"{p}.self_attn.k_proj.bias"] = randn(nkv * hd, std=0.1)
            w[f"{p}.self_attn.v_proj.bias"] = randn(nkv * hd, std=0.1)
            w[f"{p}.self_attn.o_proj.bias"] = randn(C, std=0.1)
        w[f"{p}.post_attention_layernorm.weight"] = 1 + randn(C, std=0.1)
        w[f"{p}.mlp.gate_proj.weight"] = randn(I, C, std=0.3)
        w[f"{p}.mlp.up_proj.weight"] = randn(I, C, std=0.3)
        w[f"{p}.mlp.down_proj.weight"] = randn(C, I, std=0.3)
        if c["mlp_bias"]:
            w[f"{p}.mlp.gate_proj.bias"] = randn(I, std=0.1)
            w[f"{p}.mlp.up_proj.bias"] = randn(I, std=0.1)
            w[f"{p}.mlp.down_proj.bias"] = randn(C, std=0.1)
    w["model.norm.weight"] = 1 + randn(C, std=0.1)
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = randn(V, C, std=0.5)
    return w


# ---------------------------------------------------------------------------------------
# Inputs and expected values
# ---------------------------------------------------------------------------------------

T_MAIN = 9


def main_inputs() -> dict:
    """Two rows, T = 9: row 0 full length with a 3-token prompt not trained; row 1 six real
    tokens, right-padded with EOS, attention_mask 0 and labels -100 on the padding."""
    g = torch.Generator().manual_seed(1234)
    ids0 = torch.randint(0, VOCAB, (T_MAIN,), generator=g).tolist()
    ids1 = torch.randint(0, VOCAB, (6,), generator=g).tolist() + [EOS] * 3
    labels0 = [-100] * 3 + ids0[3:]
    labels1 = [-100] * 2 + ids1[2:6] + [-100] * 3
    return {
        "input_ids": [ids0, ids1],
        "attention_mask": [[1] * T_MAIN, [1] * 6 + [0] * 3],
        "labels": [labels0, labels1],
    }


def as_tensors(inputs: dict):
    ids = torch.tensor(inputs["input_ids"], dtype=torch.int64)
    mask = torch.tensor(inputs["attention_mask"], dtype=torch.int64) if "attention_mask" in inputs else None
    pos = torch.tensor(inputs["position_ids"], dtype=torch.int64) if "position_ids" in inputs else None
    labels = torch.tensor(inputs["labels"], dtype=torch.int64)
    return ids, mask, pos, labels


def run(config, weights, inputs, lora=None, dtype=torch.float64, grad_of="params"):
    """Forward + ForCausalLMLoss + backward in `dtype`. grad_of: 'params' (every base
    parameter) or 'lora' (only the adapter matrices, base frozen as in PEFT)."""
    ids, mask, pos, labels = as_tensors(inputs)
    params = {k: v.to(dtype).requires_grad_(grad_of == "params") for k, v in weights.items()}
    lora_t = None
    if lora is not None:
        lora_t = {
            path: {**ad, "A": ad["A"].to(dtype).requires_grad_(grad_of == "lora"),
                   "B": ad["B"].to(dtype).requires_grad_(grad_of == "lora")}
            for path, ad in lora.items()
        }
    logits = ref.forward(config, params, ids, mask, pos, lora_t)
    loss, sums, counts = ref.causal_lm_loss(logits, labels)
    loss.backward()
    grads = {}
    if grad_of == "params":
        grads = {k: v.grad for k, v in params.items()}
    else:
        for path, ad in lora_t.items():
            grads[f"base_model.model.{path}.lora_A.weight"] = ad["A"].grad
            grads[f"base_model.model.{path}.lora_B.weight"] = ad["B"].grad
    return logits.detach(), loss.detach(), sums.detach(), counts, grads


def float32_gap(config, weights, inputs, lora=None) -> float:
    """Max |logits_f32 - logits_f64| over real (non-padding) positions: how far an exact
    float32 implementation may sit from the stored values."""
    ids, mask, pos, _ = as_tensors(inputs)
    with torch.no_grad():
        a = ref.forward(config, weights, ids, mask, pos, lora)
        d = {k: v.double() for k, v in weights.items()}
        l64 = None if lora is None else {p: {**ad, "A": ad["A"].double(), "B": ad["B"].double()} for p, ad in lora.items()}
        b = ref.forward(config, d, ids, mask, pos, l64)
    real = (mask != 0) if mask is not None else torch.ones(ids.shape, dtype=torch.bool)
    return float((a.double() - b).abs()[real].max())


def expected_json(loss, sums, counts, extra=None) -> dict:
    out = {
        "loss": float(loss),
        "rows": [{"sum": float(s), "count": int(c)} for s, c in zip(sums, counts)],
        "count": int(counts.sum()),
        "note": "computed in float64 by test/reference/hf_reference.py from the float32 weights; "
        "logits at positions where attention_mask == 0 are not defined by the contract: compare real positions only",
    }
    if extra:
        out.update(extra)
    return out


def write_model_fixture(name: str, config: dict, weights: dict, inputs: dict) -> dict:
    d = os.path.join(ROOT, name)
    write_json(os.path.join(d, "config.json"), config)
    save_tensors(os.path.join(d, "model.safetensors"), weights)
    write_plain_json(os.path.join(d, "inputs.json"), inputs)
    logits, loss, sums, counts, grads = run(config, weights, inputs)
    save_tensors(os.path.join(d, "expected.safetensors"), {"logits": logits, **{f"grad.{k}": g for k, g in grads.items()}})
    gap = float32_gap(config, weights, inputs)
    write_json(os.path.join(d, "expected.json"), expected_json(loss, sums, counts, {"float32_max_abs_logit_gap": gap}))
    std = float(logits.std())
    print(f"{name}: loss {float(loss):.6f} logits std {std:.3f} f32 gap {gap:.2e}")
    assert std > 0.5, "logits are too flat to make a discriminating fixture"
    return {"logits": logits, "loss": loss}


# ---------------------------------------------------------------------------------------
# Fixture groups
# ---------------------------------------------------------------------------------------


def gpt2_original(weights: dict, config: dict) -> None:
    """The original GPT-2 Hub layout: no `transformer.` prefix, plus the causal-mask buffer
    h.{i}.attn.bias = tril(ones) [1, 1, n_positions, n_positions] stored as F32."""
    d = os.path.join(ROOT, "gpt2-tiny-original")
    out = {}
    for k, v in weights.items():
        out[k[len("transformer."):]] = v
    P = config["n_positions"]
    for i in range(config["n_layer"]):
        out[f"h.{i}.attn.bias"] = torch.tril(torch.ones(P, P, dtype=torch.float32)).view(1, 1, P, P)
    write_json(os.path.join(d, "config.json"), GPT2_ORIGINAL_CONFIG)
    save_tensors(os.path.join(d, "model.safetensors"), out)


def llama_sharded(weights: dict, config: dict) -> None:
    """modeling_utils.save_pretrained with a small max_shard_size: shards filled in state_dict
    order, named model-0000k-of-0000n.safetensors, plus model.safetensors.index.json
    {"metadata": {"total_parameters", "total_size": bytes}, "weight_map": {name: shard}} (indent 2, sorted keys)."""
    d = os.path.join(ROOT, "llama-tiny-sharded")
    names = list(weights)
    cut = names.index("model.layers.1.input_layernorm.weight")
    shards = [names[:cut], names[cut:]]
    weight_map = {}
    total = 0
    for k, group in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        save_tensors(os.path.join(d, fname), {n: weights[n] for n in group})
        for n in group:
            weight_map[n] = fname
            total += weights[n].numel() * 4
    write_json(os.path.join(d, "config.json"), config)
    params = sum(weights[n].numel() for n in names)
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"metadata": {"total_parameters": params, "total_size": total}, "weight_map": weight_map})


def packed(name: str, config: dict, weights: dict) -> None:
    """One row holding two examples (segments 1, 1, 1, 2, 2, 2, 0; positions restarting at 0).
    Expected values come from running each example ALONE (no mask, positions 0..2) and
    concatenating, so a packed forward that matches proves packing exactness. Labels follow
    the packing rule: each example's first token is -100."""
    g = torch.Generator().manual_seed(99)
    a = torch.randint(0, VOCAB, (3,), generator=g).tolist()
    b = torch.randint(0, VOCAB, (3,), generator=g).tolist()
    inputs = {
        "input_ids": [a + b + [EOS]],
        "attention_mask": [[1, 1, 1, 2, 2, 2, 0]],
        "position_ids": [[0, 1, 2, 0, 1, 2, 0]],
        "labels": [[-100, a[1], a[2], -100, b[1], b[2], -100]],
    }
    # separate runs, float64, one graph so the grads are of the packed row's mean loss
    params = {k: v.double().requires_grad_(True) for k, v in weights.items()}
    la = ref.forward(config, params, torch.tensor([a]))
    lb = ref.forward(config, params, torch.tensor([b]))
    _, sa, ca = ref.causal_lm_loss(la, torch.tensor([[-100, a[1], a[2]]]))
    _, sb, cb = ref.causal_lm_loss(lb, torch.tensor([[-100, b[1], b[2]]]))
    loss = (sa.sum() + sb.sum()) / (ca.sum() + cb.sum())
    loss.backward()
    V = config["vocab_size"]
    logits = torch.cat([la.detach(), lb.detach(), torch.zeros(1, 1, V, dtype=torch.float64)], dim=1)
    grads = {f"grad.{k}": v.grad for k, v in params.items()}
    # the reference's own segment-mask path must agree with the separate runs
    pl, ploss, psums, pcounts, pgrads = run(config, weights, inputs)
    assert torch.allclose(pl[0, :6], logits[0, :6], rtol=1e-10, atol=1e-12), "packed forward differs from separate runs"
    assert abs(float(ploss) - float(loss)) < 1e-12
    for k, v in pgrads.items():
        assert torch.allclose(v, params[k].grad, rtol=1e-9, atol=1e-12), k
    d = os.path.join(ROOT, "packed", name)
    write_plain_json(os.path.join(d, "inputs.json"), inputs)
    save_tensors(os.path.join(d, "expected.safetensors"), {"logits": logits, **grads})
    write_json(
        os.path.join(d, "expected.json"),
        expected_json(loss.detach(), torch.stack([sa.sum() + sb.sum()]), torch.stack([ca.sum() + cb.sum()]),
                      {"model": f"../../{name}", "segments": [{"sum": float(sa.sum()), "count": int(ca.sum())},
                                                               {"sum": float(sb.sum()), "count": int(cb.sum())}]}),
    )
    print(f"packed/{name}: loss {float(loss):.6f}")


def peft_adapter_config(base: str, r: int, alpha: float, targets: list, fan_in_fan_out: bool, use_rslora: bool) -> dict:
    """LoraConfig.to_dict() as PeftConfigMixin.save_pretrained writes adapter_config.json
    (json.dumps(indent=2, sort_keys=True); the field set PEFT 0.21.0 writes, checked by
    verify_with_transformers.py; target_modules, a set in memory, saved as a list)."""
    return {
        "alora_invocation_tokens": None,
        "alpha_pattern": {},
        "arrow_config": None,
        "auto_mapping": None,
        "base_model_name_or_path": base,
        "bias": "none",
        "corda_config": None,
        "ensure_weight_tying": False,
        "eva_config": None,
        "exclude_modules": None,
        "fan_in_fan_out": fan_in_fan_out,
        "inference_mode": True,
        "init_lora_weights": True,
        "kasa_config": None,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": alpha,
        "lora_bias": False,
        "lora_dropout": 0.0,
        "lora_ga_config": None,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": None,
        "monteclora_config": None,
        "peft_type": "LORA",
        "peft_version": "0.21.0",
        "qalora_group_size": 16,
        "r": r,
        "rank_pattern": {},
        "revision": None,
        "target_modules": targets,
        "target_parameters": None,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": None,
        "use_bdlora": None,
        "use_dora": False,
        "use_qalora": False,
        "use_rslora": use_rslora,
        "velora_config": None,
    }


def lora_fixture(name, base_name, config, weights, inputs, targets, r, alpha, use_rslora):
    fan_in_fan_out = config["model_type"] == "gpt2"
    layouts = ref.layouts(config)
    paths = [p for p in layouts if p.split(".")[-1] in targets]
    scaling = ref.lora_scaling(r, alpha, use_rslora)
    lora = {}
    for p in paths:
        w = weights[p + ".weight"]
        fin, fout = (w.shape[0], w.shape[1]) if layouts[p] == "in_out" else (w.shape[1], w.shape[0])
        # non-zero B (PEFT initialises B = 0) so that the adapter changes the output
        lora[p] = {"A": randn(r, fin, std=0.3), "B": randn(fout, r, std=0.3), "scaling": scaling,
                   "fan_in_fan_out": fan_in_fan_out}
    d = os.path.join(ROOT, "lora", name)
    write_json(os.path.join(d, "adapter_config.json"),
               peft_adapter_config(base_name, r, alpha, sorted(targets), fan_in_fan_out, use_rslora))
    adapter = {}
    for p, ad in lora.items():
        adapter[f"base_model.model.{p}.lora_A.weight"] = ad["A"]
        adapter[f"base_model.model.{p}.lora_B.weight"] = ad["B"]
    save_tensors(os.path.join(d, "adapter_model.safetensors"), adapter)
    write_plain_json(os.path.join(d, "inputs.json"), inputs)
    logits, loss, sums, counts, grads = run(config, weights, inputs, lora=lora, grad_of="lora")
    # merged weights (PEFT merge_and_unload) and the plain model's logits with them
    w64 = {k: v.double() for k, v in weights.items()}
    l64 = {p: {**ad, "A": ad["A"].double(), "B": ad["B"].double()} for p, ad in lora.items()}
    merged = ref.merge_lora(w64, l64, layouts)
    ids, mask, pos, _ = as_tensors(inputs)
    with torch.no_grad():
        merged_logits = ref.forward(config, merged, ids, mask, pos)
        base_logits = ref.forward(config, w64, ids, mask, pos)
    real = mask != 0
    assert torch.allclose(merged_logits[real], logits[real], rtol=1e-9, atol=1e-10), "merged != unmerged"
    change = float((logits - base_logits).abs()[real].max())
    assert change > 0.1, "adapter barely changes the logits"
    tensors = {"logits": logits, "logits_merged": merged_logits}
    tensors.update({f"grad.{k}": g for k, g in grads.items()})
    tensors.update({f"merged.{p}.weight": merged[p + ".weight"] for p in paths})
    save_tensors(os.path.join(d, "expected.safetensors"), tensors)
    gap = float32_gap(config, weights, inputs, lora)
    write_json(os.path.join(d, "expected.json"), expected_json(
        loss, sums, counts, {"base_model": f"../../{base_name}", "scaling": scaling,
                             "float32_max_abs_logit_gap": gap, "max_abs_logit_change_from_base": change}))
    print(f"lora/{name}: loss {float(loss):.6f} scaling {scaling} change {change:.3f}")


def main() -> None:
    if os.path.isdir(ROOT):
        for entry in os.listdir(ROOT):  # keep README.md and verification.txt
            if os.path.isdir(os.path.join(ROOT, entry)):
                shutil.rmtree(os.path.join(ROOT, entry))
    torch.manual_seed(0)
    inputs = main_inputs()

    gw = gpt2_weights(GPT2_CONFIG)
    write_model_fixture("gpt2-tiny", GPT2_CONFIG, gw, inputs)
    gpt2_original(gw, GPT2_CONFIG)

    lw = llama_weights(LLAMA_CONFIG)
    write_model_fixture("llama-tiny", LLAMA_CONFIG, lw, inputs)
    for name, config in (("gpt2-tiny", GPT2_CONFIG), ("llama-tiny", LLAMA_CONFIG)):
        v5 = os.path.join(ROOT, name + "-v5")
        write_json(os.path.join(v5, "config.json"), config_v5(config))
        shutil.copyfile(os.path.join(ROOT, name, "model.safetensors"), os.path.join(v5, "model.safetensors"))
    llama_sharded(lw, LLAMA_CONFIG)

    vw = llama_weights(LLAMA_VARIANT_CONFIG)
    write_model_fixture("llama-tiny-variant", LLAMA_VARIANT_CONFIG, vw, inputs)

    packed("gpt2-tiny", GPT2_CONFIG, gw)
    packed("llama-tiny", LLAMA_CONFIG, lw)

    lora_fixture("gpt2-tiny-c_attn", "gpt2-tiny", GPT2_CONFIG, gw, inputs, ["c_attn"], 4, 8, False)
    lora_fixture("llama-tiny-qv", "llama-tiny", LLAMA_CONFIG, lw, inputs, ["q_proj", "v_proj"], 4, 8, False)
    lora_fixture("llama-tiny-qv-rslora", "llama-tiny", LLAMA_CONFIG, lw, inputs, ["q_proj", "v_proj"], 4, 8, True)


if __name__ == "__main__":
    main()
