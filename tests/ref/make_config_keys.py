#!/usr/bin/env python3
"""make_config_keys.py: the keys (and default values) of every config class headpursuit reads,
from transformers itself, for tests/test_config_keys.py.

Writes tests/fixtures/config_keys/<Class>.json: {"class", "transformers", "keys": {key: default}}
for LlamaConfig, MistralConfig, Qwen2Config, LlavaNextConfig, CLIPVisionConfig (each `Class().to_dict()`,
which includes PretrainedConfig's generic keys) and LlavaNextImageProcessor (the keys its
`to_dict()` saves to preprocessor_config.json). Nested configs (LlavaNextConfig's text_config /
vision_config) are listed as keys here and audited through their own classes.

Run with the reference environment (tests/ref/setup_ref_env.sh):
  .venv-ref/bin/python tests/ref/make_config_keys.py
Gemma3TextConfig needs transformers >= 4.50 (make_gemma3_fixtures.py's environment, 4.53.3):
  /work/venv-g3/bin/python tests/ref/make_config_keys.py --gemma3
A new architecture is audited by adding its class here and an expectation table for its keys
in tests/test_config_keys.py.
"""
import json
import os
import sys

import transformers
from transformers import (CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextImageProcessor,
                          MistralConfig, Qwen2Config)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "config_keys")


def plain(v):
    """JSON-safe default (enums, tuples and the like as their JSON form or repr)."""
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def main():
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["--gemma3"]:
        from transformers import Gemma3TextConfig
        classes = {"Gemma3TextConfig": Gemma3TextConfig().to_dict()}
    else:
        classes = {c.__name__: c().to_dict() for c in (LlamaConfig, MistralConfig, Qwen2Config,
                                                       LlavaNextConfig, CLIPVisionConfig)}
        classes["LlavaNextImageProcessor"] = LlavaNextImageProcessor().to_dict()
    for name, d in classes.items():
        d.pop("transformers_version", None)  # written by save_pretrained, not a setting
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump({"class": name, "transformers": transformers.__version__,
                       "keys": {k: plain(v) for k, v in sorted(d.items())}}, f, indent=1)
            f.write("\n")
        print(f"{name}: {len(d)} keys")


if __name__ == "__main__":
    main()
