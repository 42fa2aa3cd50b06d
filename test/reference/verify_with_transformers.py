"""Checks every fixture under test/fixtures/hf/ against the real transformers and PEFT.

    python test/reference/verify_with_transformers.py > test/fixtures/hf/verification.txt

Run with an interpreter that has those packages (they are not project dependencies; the
fixtures were checked with torch 2.13.0, transformers 5.18.0, peft 0.21.0, safetensors 0.8.0).
For each fixture it:
- loads the checkpoint with `from_pretrained` (v4 and v5 config.json, the original GPT-2
  key layout, sharded index) in float64 with eager attention, runs the fixture inputs with
  `labels=`, backpropagates, and compares logits (real positions), loss and every parameter
  gradient with expected.safetensors / expected.json;
- repeats the forward in float32 with the default attention (sdpa) to report the gap;
- packed rows: runs transformers with position_ids restarting at 0 and no attention_mask
  (transformers' packed-sequence detection) and compares with the separate-run values;
- LoRA: PeftModel.from_pretrained, compares logits, loss, lora_A/lora_B gradients, and the
  weights and logits after merge_and_unload;
- formats: re-serialises every .safetensors with the safetensors package (must be byte
  identical), reloads configs and adapter configs and saves them again (same JSON for v5).
Exits non-zero on the first mismatch.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import torch
import transformers
import peft
import safetensors
from safetensors.torch import load_file, save
from transformers import AutoConfig, AutoModelForCausalLM
from peft import LoraConfig, PeftModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf"))
failures = []


def check(cond: bool, what: str) -> None:
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def close(a: torch.Tensor, e: torch.Tensor, rtol: float, atol: float):
    a, e = a.double(), e.double()
    err = ((a - e).abs() - (atol + rtol * e.abs())).max()
    return bool(err <= 0), float((a - e).abs().max())


def read_json(path):
    with open(path) as f:
        return json.load(f)


def load_inputs(d):
    inp = read_json(os.path.join(d, "inputs.json"))
    t = {k: torch.tensor(v, dtype=torch.int64) for k, v in inp.items()}
    return t


def run_model(model, inputs, packed=False):
    # use_cache=False: with a cache object present transformers skips packed-sequence detection
    kw = {"input_ids": inputs["input_ids"], "labels": inputs["labels"], "use_cache": False}
    if packed:
        kw["position_ids"] = inputs["position_ids"]  # no attention_mask: transformers detects the packed sequences
    else:
        kw["attention_mask"] = inputs["attention_mask"]
    out = model(**kw)
    return out


def tolerance(model):
    """transformers' float64 Llama still computes RMSNorm, softmax and RoPE in float32
    (~1e-6 off the float64 fixtures); GPT-2 eager is float64 throughout."""
    return (1e-5, 3e-6) if model.config.model_type == "llama" else (1e-6, 1e-7)


def compare_forward_backward(label, model, inputs, expected, exp_json, grad_names, packed=False):
    rtol, atol = tolerance(model)
    model.zero_grad(set_to_none=True)
    out = run_model(model, inputs, packed)
    out.loss.backward()
    real = inputs["attention_mask"] != 0
    ok, diff = close(out.logits.detach()[real], expected["logits"][real], rtol, max(atol, 1e-6))
    check(ok, f"{label}: logits (max |diff| {diff:.1e})")
    # ForCausalLMLoss upcasts with logits.float(), i.e. computes a float64 model's loss in float32
    ok = abs(float(out.loss) - exp_json["loss"]) <= 1e-6 * max(1, abs(exp_json["loss"]))
    check(ok, f"{label}: loss {float(out.loss):.9f} vs {exp_json['loss']:.9f}")
    worst = 0.0
    n = 0
    for hf_name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = "grad." + grad_names(hf_name)
        if key not in expected:
            check(False, f"{label}: no expected {key}")
            continue
        ok, diff = close(p.grad, expected[key], max(rtol, 1e-5), atol)
        worst = max(worst, diff)
        n += 1
        if not ok:
            check(False, f"{label}: {key} (max |diff| {diff:.1e})")
    expected_grads = [k for k in expected if k.startswith("grad.")]
    check(n == len(expected_grads), f"{label}: {n} parameter gradients match (of {len(expected_grads)} stored; max |diff| {worst:.1e})")


def float32_gap(label, d, inputs, expected):
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)  # default attention implementation
    with torch.no_grad():
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
    real = inputs["attention_mask"] != 0
    ok, diff = close(out.logits[real], expected["logits"][real], 1e-4, 1e-5)
    check(ok, f"{label}: float32 {model.config._attn_implementation} logits within rtol 1e-4 (max |diff| {diff:.1e})")


def load_f64(d):
    model, info = AutoModelForCausalLM.from_pretrained(
        d, dtype=torch.float64, attn_implementation="eager", output_loading_info=True
    )
    model.eval()
    missing = [k for k in info["missing_keys"] if k != "lm_head.weight" or not model.config.tie_word_embeddings]
    check(not missing and not info["mismatched_keys"] and not info["unexpected_keys"] or d.endswith("original"),
          f"{os.path.relpath(d, ROOT)}: from_pretrained, no missing/mismatched keys ({info})")
    return model


def models():
    for name, exp_dir in [
        ("gpt2-tiny", "gpt2-tiny"),
        ("gpt2-tiny-v5", "gpt2-tiny"),
        ("gpt2-tiny-original", "gpt2-tiny"),
        ("llama-tiny", "llama-tiny"),
        ("llama-tiny-v5", "llama-tiny"),
        ("llama-tiny-sharded", "llama-tiny"),
        ("llama-tiny-variant", "llama-tiny-variant"),
    ]:
        d = os.path.join(ROOT, name)
        e = os.path.join(ROOT, exp_dir)
        inputs = load_inputs(e)
        expected = load_file(os.path.join(e, "expected.safetensors"))
        exp_json = read_json(os.path.join(e, "expected.json"))
        model = load_f64(d)
        check(type(model).__name__ == ("GPT2LMHeadModel" if "gpt2" in name else "LlamaForCausalLM"), f"{name}: class {type(model).__name__}")
        compare_forward_backward(name, model, inputs, expected, exp_json, lambda n: n)
        float32_gap(name, d, inputs, expected)
        # the per-row sums: recompute from logits with the shift and ignore_index
        with torch.no_grad():
            out = run_model(model, inputs)
            # exactness of the mirror itself: hf_reference.py in float64 vs transformers in float64
            cfg = read_json(os.path.join(d, "config.json"))
            w = {k: v.double() for k, v in load_file(os.path.join(e, "model.safetensors")).items()}
            ref.MIRROR_FLOAT32_CASTS = True  # cast to float32 where transformers does, even in float64
            mine = ref.forward(cfg, w, inputs["input_ids"], inputs["attention_mask"])
            ref.MIRROR_FLOAT32_CASTS = False
            real = inputs["attention_mask"] != 0
            diff = float((mine - out.logits)[real].abs().max())
            check(diff < 1e-12, f"{name}: hf_reference.py (float32 casts as transformers) == transformers, float64 (max |diff| {diff:.1e})")
            lab = torch.nn.functional.pad(inputs["labels"], (0, 1), value=-100)[:, 1:]
            tok = torch.nn.functional.cross_entropy(out.logits.transpose(1, 2), lab, ignore_index=-100, reduction="none")
        for i, row in enumerate(exp_json["rows"]):
            check(abs(float(tok[i].sum()) - row["sum"]) < 1e-9 * 1e4 ** (cfg["model_type"] == "llama") and int((lab[i] != -100).sum()) == row["count"],
                  f"{name}: row {i} sum {row['sum']:.6f} count {row['count']}")


def packed_rows():
    for name in ("gpt2-tiny", "llama-tiny"):
        d = os.path.join(ROOT, "packed", name)
        inputs = load_inputs(d)
        expected = load_file(os.path.join(d, "expected.safetensors"))
        exp_json = read_json(os.path.join(d, "expected.json"))
        model = load_f64(os.path.join(ROOT, name))
        compare_forward_backward(f"packed/{name}", model, inputs, expected, exp_json, lambda n: n, packed=True)


def lora():
    for name, base in (("gpt2-tiny-c_attn", "gpt2-tiny"), ("llama-tiny-qv", "llama-tiny"), ("llama-tiny-qv-rslora", "llama-tiny")):
        d = os.path.join(ROOT, "lora", name)
        inputs = load_inputs(d)
        expected = load_file(os.path.join(d, "expected.safetensors"))
        exp_json = read_json(os.path.join(d, "expected.json"))
        model = PeftModel.from_pretrained(load_f64(os.path.join(ROOT, base)), d, is_trainable=True).double()
        scaling = {v["default"] for m in model.modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict) for v in [m.scaling]}
        check(scaling == {exp_json["scaling"]}, f"lora/{name}: PEFT scaling {scaling} == {exp_json['scaling']}")
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        check(all("lora_" in n for n in trainable), f"lora/{name}: only adapter matrices trainable ({len(trainable)})")
        compare_forward_backward(f"lora/{name}", model, inputs, expected, exp_json, lambda n: n.replace(".default", ""))
        merged = model.merge_and_unload()
        sd = merged.state_dict()
        for k in [k for k in expected if k.startswith("merged.")]:
            ok, diff = close(sd[k[len("merged."):]], expected[k], 1e-6, 1e-7)
            check(ok, f"lora/{name}: {k} (max |diff| {diff:.1e})")
        with torch.no_grad():
            out = merged(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
        real = inputs["attention_mask"] != 0
        rtol, atol = tolerance(merged)
        ok, diff = close(out.logits[real], expected["logits_merged"][real], rtol, max(atol, 1e-6))
        check(ok, f"lora/{name}: merged logits (max |diff| {diff:.1e})")


def formats():
    for dirpath, _, files in sorted(os.walk(ROOT)):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, ROOT)
            if f.endswith(".safetensors"):
                raw = open(p, "rb").read()
                from safetensors import safe_open
                with safe_open(p, "pt") as h:
                    meta = h.metadata()
                again = save(load_file(p), metadata=meta)
                check(again == raw and meta == {"format": "pt"}, f"{rel}: byte-identical to safetensors.torch.save")
            elif f == "config.json":
                cfg = AutoConfig.from_pretrained(dirpath)
                with tempfile.TemporaryDirectory() as tmp:
                    cfg.save_pretrained(tmp)
                    written = read_json(os.path.join(tmp, "config.json"))
                mine = read_json(p)
                if "dtype" in mine:  # v5 layout: must be exactly what transformers 5 writes
                    a = {k: v for k, v in written.items() if k != "transformers_version"}
                    b = {k: v for k, v in mine.items() if k != "transformers_version"}
                    check(a == b, f"{rel}: identical to transformers {transformers.__version__} save_pretrained"
                          + ("" if a == b else f" (keys differing: {sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))})"))
                else:
                    check(cfg.model_type == mine["model_type"], f"{rel}: v4/original layout loads as {cfg.model_type}")
            elif f == "adapter_config.json":
                cfg = LoraConfig.from_pretrained(dirpath)
                with tempfile.TemporaryDirectory() as tmp:
                    cfg.save_pretrained(tmp)
                    written = read_json(os.path.join(tmp, "adapter_config.json"))
                mine = read_json(p)
                # target_modules is a set in PEFT: its saved list order depends on the hash seed
                for c in (written, mine):
                    c["target_modules"] = sorted(c["target_modules"])
                check(written == mine, f"{rel}: identical to PEFT {peft.__version__} save_pretrained"
                      + ("" if written == mine else f" (keys {sorted(set(written) ^ set(mine))})"))
            elif f == "model.safetensors.index.json":
                idx = read_json(p)
                total = sum(t.numel() * t.element_size() for s in set(idx["weight_map"].values())
                            for t in load_file(os.path.join(dirpath, s)).values())
                check(idx["metadata"]["total_size"] == total, f"{rel}: total_size {total}")


if __name__ == "__main__":
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, safetensors {safetensors.__version__}")
    formats()
    models()
    packed_rows()
    lora()
    print(f"{len(failures)} failures")
    sys.exit(1 if failures else 0)
