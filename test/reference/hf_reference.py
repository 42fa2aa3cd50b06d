"""Reference forward pass and loss of transformers' GPT2LMHeadModel and LlamaForCausalLM
(and PEFT LoRA on their linear layers), re-implemented in plain PyTorch.

The transformers and peft Python packages cannot be installed where these fixtures are
made, so this file mirrors their eager modeling code line by line instead; each function
names the transformers / PEFT function it follows. The model is written as functions over
a dict of parameters keyed by their Hugging Face names, so that gradients with respect to
every named parameter come straight out of torch.autograd.

Conventions beyond transformers (they are WebTune's, see the Conventions section of README.md):
- `attention_mask` [B, T] holds SEGMENT IDS: 0 = padding, otherwise query i attends key j
  iff j <= i and seg[j] == seg[i]. A Hugging Face 0/1 mask is the one-segment case. Packed
  rows (1, 1, 1, 2, 2, 2, 0) with `position_ids` restarting at 0 are what transformers
  computes for sequences packed by position_ids (masking_utils.find_packed_sequence_indices
  turns restarting position_ids into a block-diagonal causal mask). A padding query attends
  only to itself here, so its (unused) output is finite; the contract leaves it undefined.
- dtype: run in float32 to mirror a float32 transformers model, or in float64 for the
  fixtures' expected values. Where transformers casts to float32 to avoid half-precision
  loss (RMSNorm, softmax, loss), this code upcasts to at least float32 and never downcasts,
  so a float64 run stays float64. Two float32 steps are kept as transformers has them,
  because they define the values: the RoPE inv_freq buffer and cos/sin (computed in float32
  under autocast(enabled=False)). ForCausalLMLoss's `logits.float()` is not a downcast here:
  the float64 reference loss is more precise than transformers' float64-model loss (~1e-8).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

Params = dict  # HF parameter name -> tensor
LoraSpec = dict  # module path -> {"A": [r, in], "B": [out, r], "scaling": float, "fan_in_fan_out": bool}


# True: cast to float32 exactly where transformers does (LlamaRMSNorm, eager softmax, loss),
# even in a float64 model. verify_with_transformers.py sets it to show that this mirror and
# transformers agree to float64 rounding; the fixtures are made with it False (upcast only).
MIRROR_FLOAT32_CASTS = False


def _at_least_f32(dtype: torch.dtype) -> torch.dtype:
    if MIRROR_FLOAT32_CASTS:
        return torch.float32
    return torch.float64 if dtype == torch.float64 else torch.float32


# ---------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------


def lora_scaling(r: int, lora_alpha: float, use_rslora: bool) -> float:
    """peft/tuners/lora/layer.py LoraLayer.update_layer:
    scaling = lora_alpha / sqrt(r) with use_rslora, else lora_alpha / r."""
    return lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r


def linear(params: Params, path: str, x: torch.Tensor, layout: str, lora: Optional[LoraSpec] = None) -> torch.Tensor:
    """One projection by module path, optionally with a LoRA adapter.

    layout 'in_out': transformers.pytorch_utils.Conv1D (GPT-2): weight [in, out],
        y = addmm(bias, x.view(-1, in), weight).view(..., out)
    layout 'out_in': torch.nn.Linear (Llama): weight [out, in], y = x @ weight.T + bias

    LoRA follows peft/tuners/lora/layer.py Linear.forward (unmerged, dropout 0):
        result = base_layer(x); result = result + lora_B(lora_A(dropout(x))) * scaling
    with lora_A = nn.Linear(in, r) (weight [r, in]) and lora_B = nn.Linear(r, out) (weight
    [out, r]). For a Conv1D base (fan_in_fan_out=True) PEFT reads in_features, out_features
    = weight.shape, so A and B keep the same [r, in] / [out, r] shapes.
    """
    w = params[path + ".weight"]
    b = params.get(path + ".bias")
    if layout == "in_out":
        size_out = x.shape[:-1] + (w.shape[1],)
        flat = x.reshape(-1, x.shape[-1])
        y = (torch.addmm(b, flat, w) if b is not None else flat @ w).view(size_out)
    elif layout == "out_in":
        y = F.linear(x, w, b)
    else:
        raise ValueError(layout)
    if lora is not None and path in lora:
        ad = lora[path]
        y = y + F.linear(F.linear(x, ad["A"]), ad["B"]) * ad["scaling"]
    return y


def merge_lora(params: Params, lora: LoraSpec, layouts: dict[str, str]) -> Params:
    """peft/tuners/lora/layer.py Linear.merge / get_delta_weight:
    delta = transpose(B @ A, fan_in_fan_out) * scaling; base weight += delta."""
    merged = dict(params)
    for path, ad in lora.items():
        delta = (ad["B"] @ ad["A"]) * ad["scaling"]  # [out, in]
        if ad["fan_in_fan_out"]:
            delta = delta.T  # Conv1D stores [in, out]
        if (layouts[path] == "in_out") != bool(ad["fan_in_fan_out"]):
            raise ValueError(f"{path}: fan_in_fan_out must be {layouts[path] == 'in_out'} for this layer")
        merged[path + ".weight"] = params[path + ".weight"] + delta
    return merged


def segment_mask(attention_mask: Optional[torch.Tensor], B: int, T: int) -> torch.Tensor:
    """Bool [B, 1, T, T]: True where query i may attend key j.

    The causal part is GPT2Attention's `bias` buffer (torch.tril of ones) / transformers'
    causal_mask_function (kv_idx <= q_idx); the segment part is masking_utils'
    packed_sequence_mask_function (same packed sequence) combined with padding_mask_function
    (key not padding)."""
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    if attention_mask is None:
        return causal.view(1, 1, T, T).expand(B, 1, T, T)
    seg = attention_mask.to(torch.int64)
    same = seg[:, :, None] == seg[:, None, :]  # [B, Tq, Tk]
    real_q = (seg != 0)[:, :, None]
    allowed = causal[None] & same & real_q
    # padding queries: attend to themselves only (any finite value; the contract leaves them undefined)
    allowed = allowed | (torch.eye(T, dtype=torch.bool)[None] & ~real_q)
    return allowed[:, None]


def default_position_ids(B: int, T: int) -> torch.Tensor:
    """GPT2Model / LlamaModel: position_ids = cache_position.unsqueeze(0) = arange(T) without a cache."""
    return torch.arange(T, dtype=torch.int64)[None].expand(B, T)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100):
    """transformers/loss/loss_utils.py ForCausalLMLoss with num_items_in_batch=None:
        logits = logits.float()
        labels = pad(labels, (0, 1), value=ignore_index); shift_labels = labels[..., 1:]
        loss = cross_entropy(logits.view(-1, V), shift_labels.view(-1), ignore_index, reduction='mean')
    Returns (mean loss, per-row sums [B], per-row counts [B]); mean = sum(sums) / sum(counts).
    """
    logits = logits.to(_at_least_f32(logits.dtype))
    B, T, V = logits.shape
    shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:].contiguous()
    mean = F.cross_entropy(logits.view(-1, V), shift_labels.view(-1), ignore_index=ignore_index, reduction="mean")
    per_token = F.cross_entropy(
        logits.view(-1, V), shift_labels.view(-1), ignore_index=ignore_index, reduction="none"
    ).view(B, T)
    counts = (shift_labels != ignore_index).sum(dim=1)
    return mean, per_token.sum(dim=1), counts


# ---------------------------------------------------------------------------------------
# GPT-2 (transformers/models/gpt2/modeling_gpt2.py)
# ---------------------------------------------------------------------------------------


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """transformers/activations.py NewGELUActivation (ACT2FN['gelu_new']):
    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


GPT2_ACT = {
    "gelu_new": gelu_new,
    # ACT2FN['gelu_pytorch_tanh'] = PytorchGELUTanh: F.gelu(x, approximate='tanh'), same function as gelu_new
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
}


def gpt2_forward(
    config: dict,
    params: Params,
    input_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
    position_ids: Optional[torch.Tensor] = None,
    lora: Optional[LoraSpec] = None,
) -> torch.Tensor:
    """GPT2LMHeadModel.forward in eval mode (dropout off), no cache. Returns logits [B, T, V]."""
    if config.get("scale_attn_by_inverse_layer_idx") or config.get("reorder_and_upcast_attn"):
        raise ValueError("scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not mirrored")
    B, T = input_ids.shape
    C = config["n_embd"]
    nh = config["n_head"]
    hd = C // nh
    eps = config["layer_norm_epsilon"]
    act = GPT2_ACT[config["activation_function"]]
    if position_ids is None:
        position_ids = default_position_ids(B, T)
    allowed = segment_mask(attention_mask, B, T)

    # GPT2Model.forward: inputs_embeds = wte(input_ids); hidden = inputs_embeds + wpe(position_ids)
    h = params["transformer.wte.weight"][input_ids] + params["transformer.wpe.weight"][position_ids]  # [B, T, C]
    for i in range(config["n_layer"]):
        p = f"transformer.h.{i}"
        # GPT2Block.forward: residual + attn(ln_1(h)); residual + mlp(ln_2(h))
        x = F.layer_norm(h, (C,), params[f"{p}.ln_1.weight"], params[f"{p}.ln_1.bias"], eps)
        # GPT2Attention.forward: query, key, value = c_attn(x).split(split_size=C, dim=2)
        qkv = linear(params, f"{p}.attn.c_attn", x, "in_out", lora)  # [B, T, 3C]
        q, k, v = qkv.split(C, dim=2)
        # _split_heads: view(B, T, nh, hd).permute(0, 2, 1, 3)
        q, k, v = (t.view(B, T, nh, hd).permute(0, 2, 1, 3) for t in (q, k, v))  # [B, nh, T, hd]
        # GPT2Attention._attn / eager_attention_forward: (q @ k^T) / sqrt(hd); masked with finfo.min; softmax
        w = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], v.size(-1) ** 0.5, dtype=q.dtype)
        w = torch.where(allowed, w, torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype))
        w = F.softmax(w, dim=-1).type(v.dtype)
        a = torch.matmul(w, v)  # [B, nh, T, hd]
        # _merge_heads: permute back and view(B, T, C)
        a = a.permute(0, 2, 1, 3).contiguous().view(B, T, C)
        h = h + linear(params, f"{p}.attn.c_proj", a, "in_out", lora)
        x = F.layer_norm(h, (C,), params[f"{p}.ln_2.weight"], params[f"{p}.ln_2.bias"], eps)
        # GPT2MLP.forward: c_proj(act(c_fc(x)))
        m = act(linear(params, f"{p}.mlp.c_fc", x, "in_out", lora))
        h = h + linear(params, f"{p}.mlp.c_proj", m, "in_out", lora)
    h = F.layer_norm(h, (C,), params["transformer.ln_f.weight"], params["transformer.ln_f.bias"], eps)
    # GPT2LMHeadModel: lm_head = nn.Linear(n_embd, vocab, bias=False), weight tied to wte
    head = params["transformer.wte.weight"] if config.get("tie_word_embeddings", True) else params["lm_head.weight"]
    if lora is not None and "lm_head" in lora:
        return linear({**params, "lm_head.weight": head}, "lm_head", h, "out_in", lora)
    return F.linear(h, head)


def gpt2_layouts(config: dict) -> dict[str, str]:
    out = {}
    for i in range(config["n_layer"]):
        for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            out[f"transformer.h.{i}.{m}"] = "in_out"
    out["lm_head"] = "out_in"
    return out


# ---------------------------------------------------------------------------------------
# Llama (transformers/models/llama/modeling_llama.py)
# ---------------------------------------------------------------------------------------


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LlamaRMSNorm.forward:
        hidden = hidden.to(float32); variance = hidden.pow(2).mean(-1, keepdim=True)
        hidden = hidden * rsqrt(variance + eps); return weight * hidden.to(input_dtype)"""
    input_dtype = x.dtype
    h = x.to(_at_least_f32(x.dtype))
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(input_dtype)


def llama_rope_theta(config: dict) -> float:
    """transformers v4 writes `rope_theta`; v5 writes `rope_parameters: {rope_theta, rope_type}`."""
    rp = config.get("rope_parameters")
    if rp is not None:
        if rp.get("rope_type", "default") != "default":
            raise ValueError(f"rope_type {rp.get('rope_type')} is not mirrored")
        return float(rp["rope_theta"])
    if config.get("rope_scaling") is not None:
        raise ValueError("rope_scaling is not mirrored")
    return float(config.get("rope_theta", 10000.0))


def llama_head_dim(config: dict) -> int:
    # LlamaAttention: head_dim = getattr(config, "head_dim", hidden_size // num_attention_heads)
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def rope_inv_freq(config: dict) -> torch.Tensor:
    """modeling_rope_utils._compute_default_rope_parameters:
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
    computed in float32: these float32 values are the `inv_freq` buffer a transformers model holds."""
    dim = llama_head_dim(config)
    base = llama_rope_theta(config)
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))


def rope_cos_sin(config: dict, position_ids: torch.Tensor, dtype: torch.dtype):
    """LlamaRotaryEmbedding.forward:
        inv_freq_expanded = inv_freq[None, :, None].float(); position_ids_expanded = position_ids[:, None, :].float()
        with autocast(enabled=False):  # "Force float32"
            freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
            emb = cat((freqs, freqs), dim=-1); cos = emb.cos() * attention_scaling; sin = emb.sin() * attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)
    Angles, cos and sin are float32 even in a float64 model (attention_scaling is 1.0 for the
    default rope type); mirrored exactly, so a float64 run matches transformers to rounding."""
    inv = rope_inv_freq(config)
    freqs = (inv[None, :, None].float() @ position_ids[:, None, :].float()).transpose(1, 2)  # [B, T, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [B, T, hd]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """modeling_llama.rotate_half: cat((-x2, x1)) with x1, x2 the two halves of the last dim."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim: int = 1):
    """modeling_llama.apply_rotary_pos_emb: q * cos + rotate_half(q) * sin (same for k)."""
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(hidden: torch.Tensor, n_rep: int) -> torch.Tensor:
    """modeling_llama.repeat_kv: [B, n_kv, T, hd] -> [B, n_kv * n_rep, T, hd]; head h uses kv head h // n_rep."""
    b, n_kv, t, hd = hidden.shape
    if n_rep == 1:
        return hidden
    return hidden[:, :, None, :, :].expand(b, n_kv, n_rep, t, hd).reshape(b, n_kv * n_rep, t, hd)


def llama_forward(
    config: dict,
    params: Params,
    input_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
    position_ids: Optional[torch.Tensor] = None,
    lora: Optional[LoraSpec] = None,
) -> torch.Tensor:
    """LlamaForCausalLM.forward in eval mode, eager attention, no cache. Returns logits [B, T, V]."""
    if config.get("hidden_act", "silu") != "silu":
        raise ValueError("hidden_act other than silu is not mirrored")
    if config.get("pretraining_tp", 1) != 1:
        raise ValueError("pretraining_tp > 1 is not mirrored")
    B, T = input_ids.shape
    nh = config["num_attention_heads"]
    nkv = config.get("num_key_value_heads") or nh
    hd = llama_head_dim(config)
    eps = config["rms_norm_eps"]
    if position_ids is None:
        position_ids = default_position_ids(B, T)
    allowed = segment_mask(attention_mask, B, T)

    h = params["model.embed_tokens.weight"][input_ids]  # [B, T, C]
    cos, sin = rope_cos_sin(config, position_ids, h.dtype)  # [B, T, hd]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        # LlamaDecoderLayer.forward: residual + self_attn(input_layernorm(h)); residual + mlp(post_attention_layernorm(h))
        x = rms_norm(h, params[f"{p}.input_layernorm.weight"], eps)
        # LlamaAttention.forward: hidden_shape = (B, T, -1, head_dim); q/k/v = proj(x).view(hidden_shape).transpose(1, 2)
        q = linear(params, f"{p}.self_attn.q_proj", x, "out_in", lora).view(B, T, nh, hd).transpose(1, 2)
        k = linear(params, f"{p}.self_attn.k_proj", x, "out_in", lora).view(B, T, nkv, hd).transpose(1, 2)
        v = linear(params, f"{p}.self_attn.v_proj", x, "out_in", lora).view(B, T, nkv, hd).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        # eager_attention_forward: repeat_kv; (q @ k^T) * head_dim**-0.5 + mask; softmax(float32); @ v
        k = repeat_kv(k, nh // nkv)
        v = repeat_kv(v, nh // nkv)
        w = torch.matmul(q, k.transpose(2, 3)) * (hd**-0.5)
        w = torch.where(allowed, w, torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype))
        w = F.softmax(w, dim=-1, dtype=_at_least_f32(q.dtype)).to(q.dtype)
        a = torch.matmul(w, v).transpose(1, 2).contiguous().reshape(B, T, nh * hd)  # [B, T, nh*hd]
        h = h + linear(params, f"{p}.self_attn.o_proj", a, "out_in", lora)
        x = rms_norm(h, params[f"{p}.post_attention_layernorm.weight"], eps)
        # LlamaMLP.forward: down_proj(act_fn(gate_proj(x)) * up_proj(x)), act_fn = SiLU
        g = F.silu(linear(params, f"{p}.mlp.gate_proj", x, "out_in", lora))
        u = linear(params, f"{p}.mlp.up_proj", x, "out_in", lora)
        h = h + linear(params, f"{p}.mlp.down_proj", g * u, "out_in", lora)
    h = rms_norm(h, params["model.norm.weight"], eps)
    head = params["model.embed_tokens.weight"] if config.get("tie_word_embeddings", False) else params["lm_head.weight"]
    return linear({**params, "lm_head.weight": head}, "lm_head", h, "out_in", lora)


def llama_layouts(config: dict) -> dict[str, str]:
    out = {}
    for i in range(config["num_hidden_layers"]):
        for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                  "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            out[f"model.layers.{i}.{m}"] = "out_in"
    out["lm_head"] = "out_in"
    return out


# ---------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------


def forward(config: dict, params: Params, input_ids, attention_mask=None, position_ids=None, lora=None):
    if config["model_type"] == "gpt2":
        return gpt2_forward(config, params, input_ids, attention_mask, position_ids, lora)
    if config["model_type"] == "llama":
        return llama_forward(config, params, input_ids, attention_mask, position_ids, lora)
    raise ValueError(f"model_type {config['model_type']!r}")


def layouts(config: dict) -> dict[str, str]:
    return gpt2_layouts(config) if config["model_type"] == "gpt2" else llama_layouts(config)
