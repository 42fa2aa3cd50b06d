"""Sanity checks of hf_reference.py itself, with torch only (no transformers needed).

    /usr/bin/python3 test/reference/check_reference.py

- gradients: central finite differences in float64 on a few entries of several parameters
  (and LoRA A/B) agree with autograd;
- causality: changing a future token leaves earlier logits unchanged;
- padding: changing padded tokens leaves real positions' logits and the loss unchanged;
- packing: a packed row equals its examples run alone (segment mask + restarting positions);
- RoPE: shifting every Llama position by a constant leaves the logits unchanged (relative
  positions only), and GPT-2 logits do change (learned absolute positions);
- identities: Conv1D == nn.Linear with the transposed weight; gelu_new == F.gelu(tanh);
  repeat_kv == repeat_interleave; merged LoRA == unmerged; rsLoRA scaling alpha / sqrt(r);
- the stored fixtures reload and recompute to what expected.safetensors holds;
- safetensors: deserialize(serialize(x)) == x and the header is 8-byte aligned.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_reference as ref  # noqa: E402
import make_fixtures as mk  # noqa: E402
from safetensors_io import deserialize, load_file, serialize  # noqa: E402

ROOT = mk.ROOT
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def load_fixture(name):
    d = os.path.join(ROOT, name)
    cfg = json.load(open(os.path.join(d, "config.json")))
    w = {k: v.double() for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    base = os.path.join(ROOT, name.replace("-v5", ""))  # v5 variants share the v4 inputs
    inputs = json.load(open(os.path.join(base, "inputs.json")))
    return cfg, w, inputs


def loss_of(cfg, w, inputs, lora=None):
    ids, mask, pos, labels = mk.as_tensors(inputs)
    logits = ref.forward(cfg, w, ids, mask, pos, lora)
    return ref.causal_lm_loss(logits, labels)[0]


def finite_differences():
    gen = torch.Generator().manual_seed(5)
    for name in ("gpt2-tiny", "llama-tiny", "llama-tiny-variant"):
        cfg, w, inputs = load_fixture(name)
        params = {k: v.clone().requires_grad_(True) for k, v in w.items()}
        loss_of(cfg, params, inputs).backward()
        worst = 0.0
        keys = sorted(params)
        for key in keys[:: max(1, len(keys) // 6)]:
            p = w[key]
            for _ in range(3):
                idx = tuple(int(torch.randint(0, s, (1,), generator=gen)) for s in p.shape)
                h = 1e-6
                plus = dict(w); plus[key] = p.clone(); plus[key][idx] += h
                minus = dict(w); minus[key] = p.clone(); minus[key][idx] -= h
                fd = (loss_of(cfg, plus, inputs) - loss_of(cfg, minus, inputs)).item() / (2 * h)
                ad = params[key].grad[idx].item()
                # central differences in float64 with h = 1e-6: ~1e-9 absolute error
                worst = max(worst, abs(fd - ad) / (1e-8 + 1e-6 * abs(ad)))
        check(worst < 1, f"{name}: finite differences vs autograd within 1e-8 + 1e-6 |g| (worst ratio {worst:.2f})")


def lora_finite_differences():
    cfg, w, inputs = load_fixture("llama-tiny")
    torch.manual_seed(3)
    path = "model.layers.1.self_attn.v_proj"
    A = torch.randn(4, 16, dtype=torch.float64) * 0.3
    B = torch.randn(8, 4, dtype=torch.float64) * 0.3
    s = ref.lora_scaling(4, 8, True)
    check(abs(s - 4.0) < 1e-15, "rsLoRA scaling = alpha / sqrt(r)")
    Ag, Bg = A.clone().requires_grad_(True), B.clone().requires_grad_(True)
    loss_of(cfg, w, inputs, {path: {"A": Ag, "B": Bg, "scaling": s, "fan_in_fan_out": False}}).backward()
    worst = 0.0
    for mat, grad, which in ((A, Ag.grad, "A"), (B, Bg.grad, "B")):
        for idx in ((0, 0), (3, 2), (1, 3)):
            h = 1e-6
            p = mat.clone(); p[idx] += h
            m = mat.clone(); m[idx] -= h
            def lo(x):
                a, b = (x, B) if which == "A" else (A, x)
                return loss_of(cfg, w, inputs, {path: {"A": a, "B": b, "scaling": s, "fan_in_fan_out": False}})
            fd = (lo(p) - lo(m)).item() / (2 * h)
            worst = max(worst, abs(fd - grad[idx].item()) / (1e-8 + 1e-6 * abs(grad[idx].item())))
    check(worst < 1, f"LoRA A/B finite differences vs autograd within 1e-8 + 1e-6 |g| (worst ratio {worst:.2f})")


def masking_properties():
    for name in ("gpt2-tiny", "llama-tiny"):
        cfg, w, inputs = load_fixture(name)
        ids, mask, _, labels = mk.as_tensors(inputs)
        base = ref.forward(cfg, w, ids, mask)
        changed = ids.clone(); changed[0, 5] = (changed[0, 5] + 7) % cfg["vocab_size"]
        out = ref.forward(cfg, w, changed, mask)
        check(torch.equal(out[0, :5], base[0, :5]) and not torch.allclose(out[0, 5:], base[0, 5:]),
              f"{name}: causal (a change at t=5 moves only t >= 5)")
        padded = ids.clone(); padded[1, 6:] = torch.tensor([1, 2, 3])
        out = ref.forward(cfg, w, padded, mask)
        same = torch.equal(out[1, :6], base[1, :6])
        l0 = ref.causal_lm_loss(base, labels)[0]
        l1 = ref.causal_lm_loss(out, labels)[0]
        check(same and float(l0) == float(l1), f"{name}: padded tokens do not reach real positions or the loss")
        # segment ids 1..k behave like separate rows
        seg_mask = torch.tensor([[1, 1, 1, 2, 2, 2, 0]])
        pos = torch.tensor([[0, 1, 2, 0, 1, 2, 0]])
        row = ids[:1, :7]
        packed = ref.forward(cfg, w, row, seg_mask, pos)
        a = ref.forward(cfg, w, row[:, :3])
        b = ref.forward(cfg, w, row[:, 3:6])
        check(torch.allclose(packed[0, :3], a[0], atol=1e-12) and torch.allclose(packed[0, 3:6], b[0], atol=1e-12),
              f"{name}: packed row == examples run alone")
        shifted = ref.forward(cfg, w, ids, mask, ref.default_position_ids(*ids.shape) + 5)
        moved = float((shifted - base)[mask != 0].abs().max())
        if cfg["model_type"] == "llama":
            check(moved < 1e-4, f"{name}: RoPE depends on relative positions only (shift by 5 moves logits {moved:.1e})")
        else:
            check(moved > 1e-2, f"{name}: learned absolute positions (shift by 5 moves logits {moved:.2f})")


def identities():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    w = torch.randn(5, 7, dtype=torch.float64)
    b = torch.randn(7, dtype=torch.float64)
    conv = ref.linear({"m.weight": w, "m.bias": b}, "m", x, "in_out")
    lin = ref.linear({"m.weight": w.T.contiguous(), "m.bias": b}, "m", x, "out_in")
    check(torch.allclose(conv, lin, atol=1e-14), "Conv1D [in, out] == nn.Linear with the transposed weight")
    check(torch.allclose(ref.gelu_new(x), F.gelu(x, approximate="tanh"), atol=1e-14), "gelu_new == gelu(approximate='tanh')")
    kv = torch.randn(2, 2, 3, 4, dtype=torch.float64)
    check(torch.equal(ref.repeat_kv(kv, 3), torch.repeat_interleave(kv, 3, dim=1)), "repeat_kv == repeat_interleave on heads")
    for name, lname in (("gpt2-tiny", "gpt2-tiny-c_attn"), ("llama-tiny", "llama-tiny-qv")):
        cfg, weights, inputs = load_fixture(name)
        d = os.path.join(ROOT, "lora", lname)
        acfg = json.load(open(os.path.join(d, "adapter_config.json")))
        ad = load_file(os.path.join(d, "adapter_model.safetensors"))
        s = ref.lora_scaling(acfg["r"], acfg["lora_alpha"], acfg["use_rslora"])
        lora = {}
        for k in ad:
            if k.endswith(".lora_A.weight"):
                path = k[len("base_model.model."): -len(".lora_A.weight")]
                lora[path] = {"A": ad[k].double(), "B": ad[k.replace("lora_A", "lora_B")].double(),
                              "scaling": s, "fan_in_fan_out": acfg["fan_in_fan_out"]}
        ids, mask, pos, _ = mk.as_tensors(inputs)
        un = ref.forward(cfg, weights, ids, mask, pos, lora)
        me = ref.forward(cfg, ref.merge_lora(weights, lora, ref.layouts(cfg)), ids, mask, pos)
        exp = load_file(os.path.join(d, "expected.safetensors"))
        real = mask != 0
        check(torch.allclose(un, me, atol=1e-12), f"lora/{lname}: merged == unmerged")
        check(torch.allclose(un[real].float(), exp["logits"][real], rtol=1e-6, atol=1e-6), f"lora/{lname}: reload recomputes expected logits")


def fixtures_recompute():
    for name in ("gpt2-tiny", "gpt2-tiny-v5", "llama-tiny", "llama-tiny-v5", "llama-tiny-variant"):
        cfg, w, _ = load_fixture(name)
        base = name.replace("-v5", "")
        inputs = json.load(open(os.path.join(ROOT, base, "inputs.json")))
        ids, mask, pos, _ = mk.as_tensors(inputs)
        exp = load_file(os.path.join(ROOT, base, "expected.safetensors"))
        out = ref.forward(cfg, w, ids, mask, pos).float()
        real = mask != 0
        check(torch.allclose(out[real], exp["logits"][real], rtol=1e-6, atol=1e-6), f"{name}: reload recomputes expected logits")
    # the original GPT-2 layout holds the same tensors plus the causal buffers
    orig = load_file(os.path.join(ROOT, "gpt2-tiny-original", "model.safetensors"))
    new = load_file(os.path.join(ROOT, "gpt2-tiny", "model.safetensors"))
    same = all(torch.equal(orig[k[len("transformer."):]], v) for k, v in new.items())
    extra = sorted(set(orig) - {k[len("transformer."):] for k in new})
    check(same and extra == ["h.0.attn.bias", "h.1.attn.bias"], f"gpt2-tiny-original: same weights, extra {extra}")
    # shards hold exactly the single-file tensors
    idx = json.load(open(os.path.join(ROOT, "llama-tiny-sharded", "model.safetensors.index.json")))
    single = load_file(os.path.join(ROOT, "llama-tiny", "model.safetensors"))
    got = {}
    for shard in sorted(set(idx["weight_map"].values())):
        got.update(load_file(os.path.join(ROOT, "llama-tiny-sharded", shard)))
    check(set(got) == set(single) == set(idx["weight_map"]) and all(torch.equal(got[k], single[k]) for k in single),
          "llama-tiny-sharded: shards == model.safetensors")


def safetensors_roundtrip():
    t = {"b": torch.arange(6, dtype=torch.float32).view(2, 3), "a": torch.tensor([1, -2], dtype=torch.int64),
         "c": torch.tensor([1.5], dtype=torch.bfloat16), "e": torch.zeros(0, 4)}
    buf = serialize(t, {"format": "pt"})
    n = int.from_bytes(buf[:8], "little")
    back, meta = deserialize(buf)
    check((8 + n) % 8 == 0 and meta == {"format": "pt"} and all(torch.equal(back[k], t[k]) for k in t),
          "safetensors round trip (F32, I64, BF16, empty), header 8-byte aligned")
    check(list(back) == ["a", "b", "e", "c"], f"safetensors order: dtype alignment, then name ({list(back)})")


if __name__ == "__main__":
    torch.set_num_threads(1)
    safetensors_roundtrip()
    identities()
    masking_properties()
    fixtures_recompute()
    finite_differences()
    lora_finite_differences()
    print(f"{len(failures)} failures")
    sys.exit(1 if failures else 0)
