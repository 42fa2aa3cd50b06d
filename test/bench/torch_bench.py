#!/usr/bin/env python3
"""The training step of `webtune bench` in PyTorch eager mode: the reference WebTune's
throughput is stated against.

Same model, same batch, same step as src/cli/bench.ts:
  forward (training) -> masked cross-entropy (labels = input ids, -100 ignored, shifted by one
  inside the loss, sum / count) -> backward -> clip_grad_norm_(1.0) -> AdamW (lr 1e-4,
  weight decay 0) -> one readback of the loss and the gradient norm.

The models are plain torch modules that do the arithmetic of transformers' GPT2LMHeadModel
(Conv1D weights [in, out], gelu_new, LayerNorm eps 1e-5, tied lm_head) and LlamaForCausalLM
(RMSNorm, RoPE rotate-half with theta 10000, grouped KV heads, SiLU-gated MLP, tied lm_head),
with the presets and custom sizes of `webtune bench`, so only PyTorch is needed. Initialisation
follows transformers (normal 0.02; GPT-2 c_proj scaled by 1/sqrt(2 * n_layer)). LoRA (--mode lora)
is PEFT's: r 8, alpha 16 on the bench's target modules, A kaiming-uniform, B zero, base frozen.

Float32 throughout; TF32 matrix products stay off (PyTorch's default) unless --tf32.

  python3 test/bench/torch_bench.py --layers 4 --heads 4 --dim 128 --ctx 128 --batch 8 --vocab 512 --device cuda --json
  python3 test/bench/torch_bench.py --preset all --device cpu --steps 3

Each row: tokens/s and ms/step (median of --steps timed steps after --warmup steps, each timed
between device synchronisations), CUDA kernels launched in one step (from torch.profiler; CUDA
only), peak bytes allocated on the GPU during a step (torch.cuda.max_memory_allocated: weights,
gradients, optimizer state and activations), and the time of the very first step.
"""
import argparse
import json
import math
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The sizes of models/config.ts presetConfig (hidden, layers, heads, positions, Llama MLP width).
SIZES = {
    'nano': dict(hidden=64, layers=2, heads=2, positions=256, llama_inner=176),
    'micro': dict(hidden=128, layers=4, heads=4, positions=512, llama_inner=352),
    'small': dict(hidden=256, layers=12, heads=4, positions=1024, llama_inner=688),
}
PRESET_NAMES = ['nano', 'micro', 'small']

# BENCH_LORA of src/cli/bench.ts, on every linear of a block (benchLoraTargets).
BENCH_LORA = dict(r=8, alpha=16, targets={
    'gpt2': ['c_attn', 'c_proj', 'c_fc'],
    'llama': ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
})


def config_for(name, family, vocab, ctx, layers=None, heads=None, dim=None):
    """The model `webtune bench` builds for a preset, or for a custom size (configFor in bench.ts)."""
    s = SIZES['micro' if name == 'custom' else name]
    hidden, n_layer, n_head, positions, inner = s['hidden'], s['layers'], s['heads'], s['positions'], s['llama_inner']
    kv = n_head // 2
    if name == 'custom':
        hidden = dim if dim is not None else hidden
        n_head = heads if heads is not None else n_head
        n_layer = layers if layers is not None else n_layer
        if hidden % n_head:
            raise SystemExit(f'torch_bench: --dim {hidden} is not a multiple of --heads {n_head}.')
        positions = max(positions, ctx)
        kv = n_head // 2 if n_head % 2 == 0 else n_head
        inner = math.ceil(hidden * 8 / 3 / 16) * 16  # modelSize in models/config.ts: about 8/3 * hidden, rounded up to 16
    if family == 'gpt2':
        return dict(family='gpt2', vocab=vocab, positions=positions, dim=hidden, layers=n_layer, heads=n_head,
                    inner=4 * hidden, eps=1e-5, init=0.02)
    return dict(family='llama', vocab=vocab, positions=positions, dim=hidden, layers=n_layer, heads=n_head,
                kv_heads=kv, head_dim=hidden // n_head, inner=inner, eps=1e-5, rope_theta=10000.0, init=0.02)


# ---------------------------------------------------------------------------------------------
# Layers


class LoraBranch(nn.Module):
    """PEFT's LoRA branch: scaling * x @ A^T @ B^T, A [r, in] kaiming-uniform(a=sqrt(5)), B [out, r] zero."""

    def __init__(self, fan_in, fan_out, r, alpha):
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(r, fan_in))
        self.lora_B = nn.Parameter(torch.zeros(fan_out, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / r

    def forward(self, x):
        return (x @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


class Conv1D(nn.Module):
    """transformers' Conv1D: weight [in, out], y = x @ W + b."""

    def __init__(self, fan_in, fan_out, std):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_in, fan_out) * std)
        self.bias = nn.Parameter(torch.zeros(fan_out))
        self.lora = None

    def forward(self, x):
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)
        return y if self.lora is None else y + self.lora(x)

    def add_lora(self, r, alpha):
        self.lora = LoraBranch(self.weight.shape[0], self.weight.shape[1], r, alpha)


class Linear(nn.Module):
    """nn.Linear without bias as Llama uses it: weight [out, in], y = x @ W^T."""

    def __init__(self, fan_in, fan_out, std):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) * std)
        self.lora = None

    def forward(self, x):
        y = F.linear(x, self.weight)
        return y if self.lora is None else y + self.lora(x)

    def add_lora(self, r, alpha):
        self.lora = LoraBranch(self.weight.shape[1], self.weight.shape[0], r, alpha)


class RMSNorm(nn.Module):
    """LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight."""

    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def causal_attention(q, k, v, impl):
    """q [B, H, T, D], k and v [B, H, T, D] (KV heads already repeated) -> [B, H, T, D]."""
    if impl == 'sdpa':
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])                     # [B, H, T, T]
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1) @ v


# ---------------------------------------------------------------------------------------------
# GPT-2 (GPT2LMHeadModel)


class GPT2Block(nn.Module):
    def __init__(self, c, attn_impl):
        super().__init__()
        C, std, proj_std = c['dim'], c['init'], c['init'] / math.sqrt(2 * c['layers'])
        self.heads, self.attn_impl = c['heads'], attn_impl
        self.ln_1 = nn.LayerNorm(C, eps=c['eps'])
        self.c_attn = Conv1D(C, 3 * C, std)
        self.attn_c_proj = Conv1D(C, C, proj_std)
        self.ln_2 = nn.LayerNorm(C, eps=c['eps'])
        self.c_fc = Conv1D(C, c['inner'], std)
        self.mlp_c_proj = Conv1D(c['inner'], C, proj_std)

    def forward(self, x):                                                            # [B, T, C]
        B, T, C = x.shape
        H = self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))        # [B, H, T, D]
        a = causal_attention(q, k, v, self.attn_impl).transpose(1, 2).reshape(B, T, C)
        x = x + self.attn_c_proj(a)
        h = self.c_fc(self.ln_2(x))
        return x + self.mlp_c_proj(F.gelu(h, approximate='tanh'))                     # gelu_new


class GPT2LM(nn.Module):
    def __init__(self, c, attn_impl):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(c['vocab'], c['dim']) * c['init'])
        self.wpe = nn.Parameter(torch.randn(c['positions'], c['dim']) * c['init'])
        self.h = nn.ModuleList(GPT2Block(c, attn_impl) for _ in range(c['layers']))
        self.ln_f = nn.LayerNorm(c['dim'], eps=c['eps'])

    def forward(self, ids):                                                          # [B, T] -> [B, T, V]
        T = ids.shape[1]
        x = F.embedding(ids, self.wte) + self.wpe[:T]
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.t()                                           # tied lm_head

    def lora_targets(self, names):
        for b in self.h:
            for attr, short in (('c_attn', 'c_attn'), ('attn_c_proj', 'c_proj'), ('c_fc', 'c_fc'), ('mlp_c_proj', 'c_proj')):
                if short in names:
                    yield getattr(b, attr)


# ---------------------------------------------------------------------------------------------
# Llama (LlamaForCausalLM)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, c, attn_impl):
        super().__init__()
        C, D, std = c['dim'], c['head_dim'], c['init']
        self.heads, self.kv_heads, self.head_dim, self.attn_impl = c['heads'], c['kv_heads'], D, attn_impl
        self.input_layernorm = RMSNorm(C, c['eps'])
        self.q_proj = Linear(C, c['heads'] * D, std)
        self.k_proj = Linear(C, c['kv_heads'] * D, std)
        self.v_proj = Linear(C, c['kv_heads'] * D, std)
        self.o_proj = Linear(c['heads'] * D, C, std)
        self.post_attention_layernorm = RMSNorm(C, c['eps'])
        self.gate_proj = Linear(C, c['inner'], std)
        self.up_proj = Linear(C, c['inner'], std)
        self.down_proj = Linear(c['inner'], C, std)

    def forward(self, x, cos, sin):                                                  # x [B, T, C]; cos, sin [T, D]
        B, T, _ = x.shape
        H, KV, D = self.heads, self.kv_heads, self.head_dim
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, H, D).transpose(1, 2)                          # [B, H, T, D]
        k = self.k_proj(h).view(B, T, KV, D).transpose(1, 2)                         # [B, KV, T, D]
        v = self.v_proj(h).view(B, T, KV, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if KV != H:                                                                  # repeat_kv
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
        a = causal_attention(q, k, v, self.attn_impl).transpose(1, 2).reshape(B, T, H * D)
        x = x + self.o_proj(a)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class LlamaLM(nn.Module):
    def __init__(self, c, attn_impl):
        super().__init__()
        self.embed_tokens = nn.Parameter(torch.randn(c['vocab'], c['dim']) * c['init'])
        self.layers = nn.ModuleList(LlamaBlock(c, attn_impl) for _ in range(c['layers']))
        self.norm = RMSNorm(c['dim'], c['eps'])
        D = c['head_dim']
        inv_freq = 1.0 / (c['rope_theta'] ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
        self.register_buffer('inv_freq', inv_freq, persistent=False)

    def forward(self, ids):                                                          # [B, T] -> [B, T, V]
        T = ids.shape[1]
        pos = torch.arange(T, device=ids.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)                                      # [T, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)                                      # [T, D]
        cos, sin = emb.cos(), emb.sin()
        x = F.embedding(ids, self.embed_tokens)
        for block in self.layers:
            x = block(x, cos, sin)
        return self.norm(x) @ self.embed_tokens.t()                                  # tied lm_head

    def lora_targets(self, names):
        for b in self.layers:
            for n in ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'):
                if n in names:
                    yield getattr(b, n)


def build_model(c, mode, attn_impl, seed, device):
    torch.manual_seed(seed)
    model = GPT2LM(c, attn_impl) if c['family'] == 'gpt2' else LlamaLM(c, attn_impl)
    if mode == 'lora':
        for p in model.parameters():
            p.requires_grad_(False)
        for lin in model.lora_targets(BENCH_LORA['targets'][c['family']]):
            lin.add_lora(BENCH_LORA['r'], BENCH_LORA['alpha'])                      # new parameters train
    return model.to(device)


def masked_cross_entropy(logits, labels):
    """Hugging Face's causal-LM loss: logits at t predict labels at t+1, -100 ignored, sum / count."""
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)


def check_against_transformers(c, attn_impl):
    """These modules against transformers' own model with the same weights: logits, loss and the
    embedding gradient. Returns the worst relative error; raises ImportError without transformers."""
    import transformers
    torch.manual_seed(1)
    mine = build_model(c, 'full', attn_impl, 1, torch.device('cpu')).double()
    with torch.no_grad():   # norms away from 1 / 0, matrices 10x the init: activations of order 1, where gelu variants differ
        for n, p in mine.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
            else:
                p.mul_(10)
    sd = {}
    if c['family'] == 'gpt2':
        cfg = transformers.GPT2Config(vocab_size=c['vocab'], n_positions=c['positions'], n_embd=c['dim'], n_layer=c['layers'],
                                      n_head=c['heads'], activation_function='gelu_new', layer_norm_epsilon=c['eps'],
                                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                                      bos_token_id=0, eos_token_id=0)
        ref = transformers.GPT2LMHeadModel(cfg)
        sd['transformer.wte.weight'], sd['transformer.wpe.weight'] = mine.wte, mine.wpe
        sd['transformer.ln_f.weight'], sd['transformer.ln_f.bias'] = mine.ln_f.weight, mine.ln_f.bias
        for i, b in enumerate(mine.h):
            for hf, m in (('ln_1', b.ln_1), ('attn.c_attn', b.c_attn), ('attn.c_proj', b.attn_c_proj), ('ln_2', b.ln_2),
                          ('mlp.c_fc', b.c_fc), ('mlp.c_proj', b.mlp_c_proj)):
                sd[f'transformer.h.{i}.{hf}.weight'], sd[f'transformer.h.{i}.{hf}.bias'] = m.weight, m.bias
        emb = mine.wte
    else:
        cfg = transformers.LlamaConfig(vocab_size=c['vocab'], hidden_size=c['dim'], intermediate_size=c['inner'],
                                       num_hidden_layers=c['layers'], num_attention_heads=c['heads'], num_key_value_heads=c['kv_heads'],
                                       head_dim=c['head_dim'], max_position_embeddings=c['positions'], rms_norm_eps=c['eps'],
                                       rope_theta=c['rope_theta'], tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
                                       hidden_act='silu', bos_token_id=0, eos_token_id=0)
        ref = transformers.LlamaForCausalLM(cfg)
        sd['model.embed_tokens.weight'], sd['model.norm.weight'] = mine.embed_tokens, mine.norm.weight
        for i, b in enumerate(mine.layers):
            for n in ('q_proj', 'k_proj', 'v_proj', 'o_proj'):
                sd[f'model.layers.{i}.self_attn.{n}.weight'] = getattr(b, n).weight
            for n in ('gate_proj', 'up_proj', 'down_proj'):
                sd[f'model.layers.{i}.mlp.{n}.weight'] = getattr(b, n).weight
            sd[f'model.layers.{i}.input_layernorm.weight'] = b.input_layernorm.weight
            sd[f'model.layers.{i}.post_attention_layernorm.weight'] = b.post_attention_layernorm.weight
        emb = mine.embed_tokens
    ref = ref.double()
    ref.config._attn_implementation = 'eager'
    missing, unexpected = ref.load_state_dict({k: v.detach() for k, v in sd.items()}, strict=False)
    missing = [k for k in missing if k != 'lm_head.weight' and not k.endswith(('attn.bias', 'attn.masked_bias'))]
    if missing or unexpected:
        raise SystemExit(f'torch_bench: transformers check: missing {missing}, unexpected {unexpected}')
    ref.train()
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, c['vocab'], (2, 16), generator=g)
    labels = ids.clone()
    labels[0, :5] = -100                                                             # a masked prompt
    out = ref(input_ids=ids, labels=labels)
    ref_grad = torch.autograd.grad(out.loss, ref.get_input_embeddings().weight)[0]
    logits = mine(ids)
    loss = masked_cross_entropy(logits, labels)
    grad = torch.autograd.grad(loss, emb)[0]
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()
    errs = dict(logits=rel(logits, out.logits), loss=rel(loss, out.loss), embedding_grad=rel(grad, ref_grad))
    print(f"transformers {transformers.__version__} {type(ref).__name__} vs torch_bench ({c['family']}, float64, attention {attn_impl}): "
          + ', '.join(f'{k} rel err {v:.2e}' for k, v in errs.items()) + f'; loss {loss.item():.6f} vs {out.loss.item():.6f}')
    return max(errs.values())


# ---------------------------------------------------------------------------------------------
# Measurement


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def count_cuda_kernels(step):
    """CUDA kernels launched by one call of step(), from torch.profiler; None where it cannot tell."""
    try:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
        n = 0
        for e in prof.events():
            dev = getattr(e, 'device_type', None)
            if dev is not None and 'CUDA' in str(dev) and 'Memcpy' not in e.name and 'Memset' not in e.name:
                n += 1
        return n or None
    except Exception as err:                                                         # profiler unavailable: leave it out
        print(f'torch_bench: kernel count unavailable ({err})', file=sys.stderr)
        return None


def measure(preset, c, mode, B, T, steps, warmup, device, attn_impl, tokens, fused_adamw, seed, show_losses):
    model = build_model(c, mode, attn_impl, seed, device)
    V = c['vocab']
    if tokens == 'bench':                                                            # the ids of `webtune bench`
        ids = ((torch.arange(B * T, dtype=torch.int64) * 7919 + 13) % V).view(B, T)
    else:
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, V, (B, T), generator=g)
    ids = ids.to(device)
    labels = ids.clone()                                                             # every position trained
    params = [p for p in model.parameters() if p.requires_grad]
    kw = dict(lr=1e-4, weight_decay=0.0)
    if fused_adamw:
        kw['fused'] = True
    opt = torch.optim.AdamW(params, **kw)
    model.train()
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        loss = masked_cross_entropy(model(ids), labels)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        loss_v, norm_v = torch.stack([loss.detach(), norm.detach().to(loss.dtype)]).tolist()   # the one readback
        if not math.isfinite(loss_v):
            raise SystemExit(f'torch_bench: non-finite loss at step {len(losses) + 1}')
        losses.append(loss_v)
        return loss_v, norm_v

    def timed():
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        return (time.perf_counter() - t0) * 1000

    first_ms = timed()                                                               # kernel loading, cuBLAS handles
    for _ in range(max(0, warmup - 1)):
        timed()
    peak = None
    kernels = None
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        timed()
        peak = torch.cuda.max_memory_allocated(device)
        kernels = count_cuda_kernels(step)
    times = [timed() for _ in range(steps)]
    ms = statistics.median(times)
    if show_losses:
        print(f'losses ({preset}, {mode}): ' + ' '.join(f'{x:.4f}' for x in losses), file=sys.stderr)
    row = dict(preset=preset, mode=mode, path='torch-eager', tokensPerSecond=B * T / (ms / 1000), msPerStep=ms,
               dispatchesPerStep=kernels, peakBytes=peak, firstStepMs=first_ms,
               firstLoss=losses[0], lastLoss=losses[-1], stepsRun=len(losses),
               trainableParams=sum(p.numel() for p in params), totalParams=sum(p.numel() for p in model.parameters()))
    del model, opt
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return row


def device_name(device):
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or 'cpu'


def table(rows):
    head = ['preset', 'mode', 'path', 'tokens/s', 'ms/step', 'kernels', 'peak MiB', 'first step ms', 'loss 1st -> last']
    body = [[r['preset'], r['mode'], r['path'], f"{r['tokensPerSecond']:.0f}", f"{r['msPerStep']:.2f}",
             '-' if r['dispatchesPerStep'] is None else str(r['dispatchesPerStep']),
             '-' if r['peakBytes'] is None else f"{r['peakBytes'] / 2 ** 20:.1f}", f"{r['firstStepMs']:.0f}",
             f"{r['firstLoss']:.4f} -> {r['lastLoss']:.4f}"] for r in rows]
    w = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    fmt = lambda r: '  '.join(c.ljust(w[i]) if i < 3 else c.rjust(w[i]) for i, c in enumerate(r))
    return '\n'.join([fmt(head), '  '.join('-' * n for n in w)] + [fmt(r) for r in body])


def main(argv=None):
    ap = argparse.ArgumentParser(description='The `webtune bench` training step in PyTorch eager mode.')
    ap.add_argument('--preset', default='all', help="nano, micro, small or 'all' (ignored with --layers/--heads/--dim)")
    ap.add_argument('--family', default='gpt2', choices=['gpt2', 'llama'])
    ap.add_argument('--layers', type=int)
    ap.add_argument('--heads', type=int)
    ap.add_argument('--dim', type=int)
    ap.add_argument('--ctx', type=int, default=128)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--vocab', type=int, default=512)
    ap.add_argument('--steps', type=int, default=5, help='timed steps (median reported)')
    ap.add_argument('--warmup', type=int, default=2, help='untimed steps first, the very first one reported as firstStepMs')
    ap.add_argument('--mode', default='both', choices=['full', 'lora', 'both'])
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', help='cuda, cuda:N or cpu')
    ap.add_argument('--attn', default='sdpa', choices=['sdpa', 'eager'],
                    help="attention: F.scaled_dot_product_attention (transformers' default) or explicit softmax(QK^T)V")
    ap.add_argument('--tokens', default='bench', choices=['bench', 'random'],
                    help="input ids: those of `webtune bench` ((i*7919+13) mod vocab) or uniform random")
    ap.add_argument('--fused-adamw', action='store_true', help='torch.optim.AdamW(fused=True) instead of the default implementation')
    ap.add_argument('--tf32', action='store_true', help='allow TF32 matrix products (off: true float32, as WebGPU computes)')
    ap.add_argument('--threads', type=int, help='torch.set_num_threads on CPU')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--losses', action='store_true', help='print every step loss to stderr')
    ap.add_argument('--json', action='store_true', help='print one JSON object (the shape of `webtune bench --json`)')
    ap.add_argument('--check-transformers', action='store_true',
                    help="compare these modules with transformers' model (same weights, float64, CPU) and exit")
    a = ap.parse_args(argv)

    device = torch.device(a.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('torch_bench: --device cuda but torch.cuda.is_available() is False (use --device cpu).')
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    attn = a.attn
    if attn == 'sdpa' and not hasattr(F, 'scaled_dot_product_attention'):
        attn = 'eager'                                                               # torch < 2.0
    custom = a.layers is not None or a.heads is not None or a.dim is not None
    presets = ['custom'] if custom else PRESET_NAMES if a.preset == 'all' else [a.preset]
    for p in presets:
        if p != 'custom' and p not in SIZES:
            raise SystemExit(f"torch_bench: unknown --preset '{p}'; choose {', '.join(PRESET_NAMES)} or all.")
    modes = ['full', 'lora'] if a.mode == 'both' else [a.mode]
    steps = max(1, a.steps)
    if a.check_transformers:
        worst = 0.0
        for p in presets:
            worst = max(worst, check_against_transformers(config_for(p, a.family, a.vocab, a.ctx, a.layers, a.heads, a.dim), attn))
        return 0 if worst < 1e-5 else 1       # transformers computes RMSNorm, RoPE and the loss in float32
    if device.type == 'cuda':
        torch.zeros(1, device=device)                                                # context created outside the first step
    rows = []
    for p in presets:
        c = config_for(p, a.family, a.vocab, a.ctx, a.layers, a.heads, a.dim)
        if a.ctx > c['positions']:
            raise SystemExit(f"torch_bench: --ctx {a.ctx} exceeds the model's {c['positions']} positions.")
        for mode in modes:
            if not a.json:
                print(f'torch_bench: {p} ({a.family}, {mode}), batch {a.batch} x {a.ctx}, {steps} timed steps...', file=sys.stderr)
            rows.append(measure(p, c, mode, a.batch, a.ctx, steps, max(1, a.warmup), device, attn, a.tokens,
                                a.fused_adamw, a.seed, a.losses))
    notes = []
    if 'lora' in modes:
        notes.append(f"lora: r {BENCH_LORA['r']}, alpha {BENCH_LORA['alpha']} on {', '.join(BENCH_LORA['targets'][a.family])}; only the adapters train.")
    notes.append(f"attention {attn}; AdamW {'fused' if a.fused_adamw else 'default implementation'}; tf32 {'on' if a.tf32 else 'off'}; "
                 f"tokens {a.tokens}; threads {torch.get_num_threads()}")
    out = dict(backend='torch', device=device_name(device), deviceType=device.type, torch=torch.__version__,
               cuda=torch.version.cuda, batch=a.batch, ctx=a.ctx, vocab=a.vocab, family=a.family, steps=steps,
               notes=notes, results=rows)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f'torch {torch.__version__} eager on {device.type}: {out["device"]}')
        print(f'batch {a.batch} x ctx {a.ctx}, vocab {a.vocab}, family {a.family}; median of {steps} steps after {a.warmup} warm-up')
        for n in notes:
            print(n)
        print('')
        print(table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
