"""Loads the adapters WebTune wrote (test/fixtures/hf/lora/webtune/<case>/) with the real PEFT and
compares what PEFT computes with what WebTune computed.

    npx tsx test/reference/webtune_adapters.ts            # writes the adapters + WebTune's values
    python test/reference/verify_webtune_adapter.py > test/fixtures/hf/lora/webtune/verification.txt

Needs torch, transformers, peft and safetensors (not project dependencies). For each case:
  - PeftModel.from_pretrained(base, adapter) loads with no missing / unexpected keys;
  - its logits (eval mode, real positions) equal WebTune's `logits`;
  - print_trainable_parameters (adapter loaded trainable) prints WebTune's report line;
  - save_pretrained writes adapter_config.json and adapter_model.safetensors byte-identical to WebTune's;
  - merge_and_unload gives WebTune's `logits_merged`, and its weights equal WebTune's merged
    checkpoint (merged/), which also loads with from_pretrained to the same logits.
Exit status 1 if any check fails.
"""
import contextlib
import io
import json
import os
import sys
import tempfile

import torch
import transformers
import peft
import safetensors
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from peft import PeftModel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "fixtures", "hf", "lora", "webtune")
CASES = ["gpt2-all-linear-lm_head", "llama-regex-rslora-embed", "llama-variant-glob-tied-embed"]
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def close(a, b, rtol=1e-4, atol=1e-5):
    return torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol), (a.double() - b.double()).abs().max().item()


print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, safetensors {safetensors.__version__}")
for name in CASES:
    d = os.path.join(ROOT, name)
    meta = json.load(open(os.path.join(d, "expected.json")))
    inputs = json.load(open(os.path.join(d, meta["inputs"])))
    base_dir = os.path.normpath(os.path.join(d, meta["base_model"]))
    expected = load_file(os.path.join(d, "expected.safetensors"))
    ids = torch.tensor(inputs["input_ids"])
    mask = torch.tensor(inputs["attention_mask"])
    real = mask.bool()

    base = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32, attn_implementation="eager")
    model = PeftModel.from_pretrained(base, d, is_trainable=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        model.print_trainable_parameters()
    line = buf.getvalue().strip()
    check(line == meta["trainable_report"], f"{name}: print_trainable_parameters '{line}' == WebTune '{meta['trainable_report']}'")

    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    ok, gap = close(logits[real], expected["logits"][real])
    check(ok, f"{name}: PEFT logits == WebTune logits (max |diff| {gap:.2e})")

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        f = "adapter_model.safetensors"
        same = open(os.path.join(tmp, f), "rb").read() == open(os.path.join(d, f), "rb").read()
        check(same, f"{name}: PEFT save_pretrained {f} byte-identical to WebTune's")
        # PEFT keeps target_modules in a Python set, so a list comes back in hash order: compare it
        # as a set; everything else must be the same text (WebTune writes the list sorted).
        theirs_text = open(os.path.join(tmp, "adapter_config.json")).read()
        ours_text = open(os.path.join(d, "adapter_config.json")).read()
        def sort_targets(text):
            cfg = json.loads(text)
            if isinstance(cfg["target_modules"], list):
                cfg["target_modules"] = sorted(cfg["target_modules"])
            return json.dumps(cfg, indent=2, sort_keys=True)
        check(sort_targets(theirs_text) == ours_text, f"{name}: PEFT save_pretrained adapter_config.json == WebTune's text (target_modules list compared sorted)")

    merged = model.merge_and_unload()
    with torch.no_grad():
        mlogits = merged(input_ids=ids, attention_mask=mask).logits
    ok, gap = close(mlogits[real], expected["logits_merged"][real])
    check(ok, f"{name}: merge_and_unload logits == WebTune logits_merged (max |diff| {gap:.2e})")
    ours = load_file(os.path.join(d, "merged", "model.safetensors"))
    theirs = {k: v for k, v in merged.state_dict().items() if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
    cfg = json.load(open(os.path.join(d, "merged", "config.json")))
    if cfg.get("tie_word_embeddings", True) and "lm_head.weight" in theirs:
        del theirs["lm_head.weight"]
    check(sorted(ours) == sorted(theirs), f"{name}: merged checkpoint keys == merge_and_unload state_dict keys ({len(ours)}; only ours: {sorted(set(ours) - set(theirs))}, only PEFT's: {sorted(set(theirs) - set(ours))})")
    worst = max((close(ours[k], theirs[k])[1] for k in ours if k in theirs), default=0.0)
    check(all(close(ours[k], theirs[k])[0] for k in ours if k in theirs), f"{name}: merged weights equal (max |diff| {worst:.2e})")
    reloaded = AutoModelForCausalLM.from_pretrained(os.path.join(d, "merged"), torch_dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        rlogits = reloaded(input_ids=ids, attention_mask=mask).logits
    ok, gap = close(rlogits[real], expected["logits_merged"][real])
    check(ok, f"{name}: WebTune's merged checkpoint loads in transformers, logits == logits_merged (max |diff| {gap:.2e})")

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
