#!/usr/bin/env python3
"""make_gemma3_fixtures.py: the Hugging Face reference for the tiny Gemma 3 parity fixture.

transformers 4.46.3 (the other fixtures' reference, .venv-ref) has no Gemma 3, so this runs in a
throw-away environment outside the repository. Made with:
  python3 -m venv --system-site-packages /work/venv-g3
  /work/venv-g3/bin/pip install torch==2.2.2 "numpy<2"          # PyPI's wheel; runs on the CPU
  /work/venv-g3/bin/pip install --no-deps transformers==4.53.3 accelerate==1.8.1
  /work/venv-g3/bin/pip install "huggingface_hub<1.0" "tokenizers>=0.21,<0.22" safetensors \
      regex pyyaml tqdm packaging filelock requests gguf sentencepiece psutil
  /work/venv-g3/bin/python tests/ref/make_gemma3_fixtures.py
The versions used are written into the fixture's ref/versions.json.

Writes tests/fixtures/tiny-gemma3/ (a random Gemma3ForCausalLM, float32) and its ref/ in the
layout of make_fixtures.py's tiny models: prompts, logits, greedy continuations, head
contributions (o_proj pre-hooks: z_h · W_O,h, before post_attention_layernorm), edited logits.
The model (D 48 != H·Dh 64) exercises what Gemma 3 adds: 6 layers of which 2 global (layer_types), a sliding
window of 4 shorter than the prompts, local and global rope bases apart, query_pre_attn_scalar
24 != head_dim 16, GQA 4/2, norm weights far from 0 (x·(1 + w)), GeGLU, tied embeddings
scaled by sqrt(D), final_logit_softcapping.
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (randomize, make_prompts, write_ref, visible_keys)

NAME = "tiny-gemma3"


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    mf.log(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    types = ["sliding_attention", "sliding_attention", "full_attention",
             "sliding_attention", "sliding_attention", "full_attention"]
    cfg = Gemma3TextConfig(
        vocab_size=256, hidden_size=48, intermediate_size=64, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24,
        max_position_embeddings=64, rope_theta=10000.0, rope_local_base_freq=100.0,
        sliding_window=4, layer_types=types, rms_norm_eps=1e-6, final_logit_softcapping=8.0,
        attn_logit_softcapping=None, hidden_activation="gelu_pytorch_tanh",
        tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, pad_token_id=0,
        torch_dtype="float32", attn_implementation="eager")
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(cfg).eval()
    mf.randomize(model, seed=11)
    d = os.path.join(mf.FIX, NAME)
    model.save_pretrained(d, safe_serialization=True)
    model = Gemma3ForCausalLM.from_pretrained(d, torch_dtype=torch.float32,
                                              attn_implementation="eager").eval()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.config.layer_types == types
    prompts = mf.make_prompts(12, 256, [3, 7, 10, 13], [(model, None), (model, mf.GREEDY_EDIT)])
    mf.write_ref(model, NAME, prompts)
    # the logits must depend on the soft-capping, the window and the query scale: each changed
    # alone moves them (else the fixture would not test it)
    base = np.load(os.path.join(d, "ref", "logits.npy"))
    for key, val in (("final_logit_softcapping", None), ("sliding_window", 64),
                     ("query_pre_attn_scalar", 16), ("rope_local_base_freq", 10000.0)):
        c2 = Gemma3TextConfig.from_pretrained(d)
        setattr(c2, key, val)
        m2 = Gemma3ForCausalLM.from_pretrained(d, config=c2, torch_dtype=torch.float32,
                                               attn_implementation="eager").eval()
        diff = np.abs(mf.padded_logits(m2, prompts) - base).max() / np.abs(base).max()
        mf.log(f"{key} = {val}: logits move by {diff:.3g} of max|logit|")
        assert diff > 1e-3, key
    mf.save_json(os.path.join(d, "ref", "versions.json"), {
        "torch": torch.__version__, "transformers": transformers.__version__,
        "numpy": np.__version__, "script": "tests/ref/make_gemma3_fixtures.py"})


if __name__ == "__main__":
    main()
