#!/usr/bin/env python3
"""check_gemma3_gguf.py: a real Gemma 3 GGUF through headpursuit against transformers' GGUF loader.

Not part of `make test` (the model is 253 MB and transformers >= 4.53 is needed: see
make_gemma3_fixtures.py for the environment). Usage:
  /work/venv-g3/bin/python tests/ref/check_gemma3_gguf.py MODEL.gguf [--bin ./headpursuit]
For each prompt (a chat turn, plain text, and one longer than the 512-token sliding window):
the token ids of both tokenizers, then on each id sequence the logits at every position
(max |ours - ref| / max |ref|) and 16 greedy tokens (transformers' generate vs `headpursuit
generate --no-eos`). Exit 1 when
logits differ by more than 1e-4 relative or a greedy continuation differs.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

TOL = 1e-4
N_NEW = 16


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--bin", default="./headpursuit")
    a = ap.parse_args()
    torch.set_num_threads(2)
    mdir, mfile = os.path.split(os.path.realpath(a.gguf))
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(mdir, gguf_file=mfile)
    model = AutoModelForCausalLM.from_pretrained(mdir, gguf_file=mfile, torch_dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}; "
          f"{type(model).__name__} loaded in {time.time() - t0:.0f}s; layer_types "
          f"{model.config.layer_types}", flush=True)
    story = ("The river ran past the old mill, where the miller's daughter counted sacks of grain "
             "and sang about the sea she had never seen. ")
    texts = ["<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n",
             "The capital of France is",
             story * 22 + "Where did the river run?"]
    tmp = tempfile.mkdtemp(prefix="hp_g3_")
    bad = 0
    for i, text in enumerate(texts):
        ref_ids = tok(text)["input_ids"]  # with <bos>
        p = subprocess.run([a.bin, "tokenize", a.gguf, "--text", text], capture_output=True, text=True)
        ours_ids = json.loads(p.stdout)["ids"] if p.returncode == 0 else None
        print(f"prompt {i}: tokenizers {'agree' if ours_ids == ref_ids else 'DIFFER'} "
              f"({len(ours_ids or [])} ids ours, {len(ref_ids)} transformers')", flush=True)
        if ours_ids != ref_ids:
            print(f"  ours {ours_ids[:24]}\n  ref  {ref_ids[:24]}")
        # the forward on both id sequences (transformers' GGUF tokenizer is a conversion)
        for who, ids in (("ours", ours_ids), ("transformers'", ref_ids)):
            if ids is None or (who != "ours" and ids == ours_ids):
                continue
            ids_file = os.path.join(tmp, f"p{i}.json")
            json.dump([ids], open(ids_file, "w"))
            out = os.path.join(tmp, f"l{i}.npy")
            subprocess.run([a.bin, "logits", a.gguf, "--ids-file", ids_file, "--out", out, "--quiet"],
                           check=True)
            ours = np.load(out)[0]
            os.remove(out)
            with torch.no_grad():
                ref = model(torch.tensor([ids])).logits[0].float().numpy()
                gen = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     do_sample=False, max_new_tokens=N_NEW, min_new_tokens=N_NEW,
                                     eos_token_id=None, pad_token_id=0)[0, len(ids):].tolist()
            rel = float(np.abs(ours - ref).max() / np.abs(ref).max())
            p = subprocess.run([a.bin, "generate", a.gguf, "--ids-file", ids_file, "--max-new", str(N_NEW),
                                "--no-eos", "--json", "--quiet"], capture_output=True, text=True, check=True)
            ours_gen = json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][0])["ids"]
            ok = rel <= TOL and ours_gen == gen
            bad += not ok
            print(f"  {who} ids ({len(ids)}): logits max rel err {rel:.2e} (all positions), argmax "
                  f"agree {(ours.argmax(-1) == ref.argmax(-1)).mean():.3f}; greedy {N_NEW} tokens "
                  f"{'identical' if ours_gen == gen else 'DIFFER'}: {tok.decode(gen)!r}", flush=True)
            if ours_gen != gen:
                print(f"    ours {ours_gen}\n    ref  {gen}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
