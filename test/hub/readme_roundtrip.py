"""Runs the README's Python snippets on what readme_roundtrip.ts wrote, and checks that
transformers + PEFT compute the logits WebTune computed. Needs torch, transformers, peft.

    python test/hub/readme_roundtrip.py OUT_DIR
"""
import json
import sys

import torch

out = sys.argv[1]
base, adapter_dir, merged_dir = f'{out}/base', f'{out}/adapter', f'{out}/merged'
ref = json.load(open(f'{out}/webtune_logits.json'))
ids = torch.tensor(ref['input_ids'])

# --- README: a WebTune LoRA adapter in PEFT ---
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter_dir)
tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
# ---
with torch.no_grad():
    got = model(input_ids=ids).logits.flatten()
err = (got - torch.tensor(ref['with_adapter'])).abs().max().item()
print(f'adapter logits max |diff| {err:.2e}')
assert err < 1e-4, err

# --- README: a merged WebTune checkpoint ---
merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
# ---
with torch.no_grad():
    got = merged(input_ids=ids).logits.flatten()
err = (got - torch.tensor(ref['merged'])).abs().max().item()
print(f'merged logits max |diff| {err:.2e}')
assert err < 1e-4, err

# The chat template travels in the saved tokenizer_config.json.
text = tokenizer.apply_chat_template([{'role': 'user', 'content': 'hi'}], tokenize=False)
print('chat template:', repr(text))
assert text == '<|im_start|>user\nhi<|im_end|>\n', text

# --- README: continuing with TRL (the parts that need only peft) ---
from peft import LoraConfig, PeftConfig
cfg = PeftConfig.from_pretrained(adapter_dir)
peft_config = LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, target_modules=sorted(cfg.target_modules), task_type='CAUSAL_LM')
print('peft_config from adapter_config.json:', peft_config.r, peft_config.lora_alpha, sorted(peft_config.target_modules))
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter_dir, is_trainable=True)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print('trainable params when resuming the adapter:', trainable)
assert trainable > 0
try:
    import trl  # noqa: F401
    print('trl', trl.__version__, 'available')
except ImportError:
    print('trl not installed: SFTTrainer snippet not run')
print('OK')
