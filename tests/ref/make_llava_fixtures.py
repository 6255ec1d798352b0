#!/usr/bin/env python3
"""make_llava_fixtures.py: the Hugging Face reference for headpursuit's LLaVA-NeXT parity test.

Writes tests/fixtures/tiny-llava/ (see its README.md):
  config.json, model.safetensors, preprocessor_config.json   a random LlavaNextForConditionalGeneration
  tokenizer.json                 a tiny Llama-style SentencePiece BPE (byte fallback) with "<image>"
  ref/<image>.png                the four test images (made here with numpy)
  ref/<image>.pixels.npy         pixel_values the HF image processor gives for it [n_tiles, 3, 32, 32]
  ref/<image>.tower.npy          CLIP hidden_states[vision_feature_layer] without CLS [n_tiles, 16, 32]
  ref/<image>.features.npy       packed image features (the inputs_embeds rows at the image tokens)
  ref/<image>.logits.npy         fp32 logits of every position (one image: the budget for
                                 fixtures is 1 MB)
  ref/cases.json                 per image: size (h, w), tile count, image-token count, prompt ids
  ref/<image>.text_logits.npy    logits of the llava-v1.6-mistral prompt for TEXT ("[INST] <image>\n
                                 TEXT [/INST]") through LlavaNextProcessor (one image)
  ref/<image>.capture.npy        for the same prompt, the heads' contributions c[l,h] = z[l,h] W_O[:, h]^T
                                 (z read by a forward hook on o_proj) averaged over the image-token
                                 positions, over the other positions, and at the last position
                                 [3, layers, heads, D] (Head Pursuit's capture, PAPER.md §1)

Run with the reference environment (tests/ref/setup_ref_env.sh):
  .venv-ref/bin/python tests/ref/make_llava_fixtures.py
  .venv-ref/bin/python tests/ref/make_llava_fixtures.py --proc
--proc writes tests/fixtures/tiny-llava-proc/ instead: a smaller model whose image processor is
not CLIP's default (image_mean = image_std = 0.5, size.shortest_edge 30 above the 24-pixel
crop_size = vision image_size, rescale_factor 1/250), two images (wide with logits, tall), no
tokenizer; the same files otherwise.
  .venv-ref/bin/python tests/ref/make_llava_fixtures.py --full DIR   (optional, ~1.5 GB, ~2 min)
--full writes the same files for llava-v1.6-mistral's full vision shapes into DIR (outside the
repository; tests/test_llava_parity.py checks it when HP_LLAVA_FULL=DIR): CLIP ViT-L/14-336
(24 layers, D 1024, 16 heads, 577 positions), the default pinpoints, projector 1024 -> 4096, and
a one-layer text model of width 4096 (vocabulary 272: the vocabulary is not a vision shape), on
scikit-image's chelsea.png (300x451: 3 tiles, 1464 image tokens).
Everything is float32, eager attention, fixed seeds: re-running reproduces the same files.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, normalizers, processors
from transformers import (CLIPVisionConfig, LlamaTokenizerFast, LlavaNextConfig,
                          LlavaNextForConditionalGeneration, LlavaNextImageProcessor,
                          LlavaNextProcessor, MistralConfig)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "tiny-llava")

WEIGHT_STD = 0.2   # ~10x the default init (as make_fixtures.py): peaked attention, bugs show
NORM_NOISE = 0.1   # LayerNorm/RMSNorm weights 1 + N(0, 0.1^2): a forgotten weight shows
BIAS_STD = 0.2     # every bias nonzero: a forgotten bias shows
IMAGE_TOKEN = 270
PINPOINTS = [[32, 64], [64, 32], [64, 64], [96, 32], [32, 96]]
# (name, height, width, logits?): each exercises one anyres case (see README.md).
IMAGES = [
    ("square", 64, 64, False),   # 2x2 grid, nothing unpadded
    ("wide", 20, 130, True),     # 1x3 grid, padding rows cut
    ("tall", 70, 50, False),     # 2x2 grid, padding columns cut
    ("small", 10, 7, False),     # upscaled into 1x2, columns cut to 2 of 8
]
TEXT = "What is it?"  # the user text of the templated prompt
TEXT_IMAGE = "small"
# Prompt around the image token, like "<s>[INST] <image>\n... [/INST]" (BOS 1).
PRE = [1, 3, 71, 212, 9]
POST = [13, 150, 44, 201, 7, 99]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_full_config():
    """llava-v1.6-mistral-7b's vision side (LlavaNextConfig's default CLIP-L/336, default
    pinpoints and image_seq_length 576) with a one-layer text model of the real width."""
    text = MistralConfig(vocab_size=272, hidden_size=4096, intermediate_size=512,
                         num_hidden_layers=1, num_attention_heads=32, num_key_value_heads=8,
                         rope_theta=1e6, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    return LlavaNextConfig(text_config=text.to_dict(), image_token_index=IMAGE_TOKEN,
                           tie_word_embeddings=False)


def make_config():
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=4, image_size=32, patch_size=8)
    text = MistralConfig(vocab_size=272, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    # image_seq_length: transformers 4.46 treats a prompt with fewer image tokens than this as
    # "legacy" (one unexpanded token, merged by the model); every image here has >= 16 tokens
    # (the base tile alone), as real ones have >= 576, so the expanded path is the one tested.
    return LlavaNextConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                           image_token_index=IMAGE_TOKEN, image_grid_pinpoints=PINPOINTS,
                           vision_feature_layer=-2, vision_feature_select_strategy="default",
                           projector_hidden_act="gelu", image_seq_length=16,
                           tie_word_embeddings=False)


# --proc: a processor unlike CLIP's defaults (what tiny-llava-proc/ tests)
PROC_CROP = 24
PROC_KW = dict(size={"shortest_edge": 30}, crop_size={"height": PROC_CROP, "width": PROC_CROP},
               image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], rescale_factor=1 / 250)
PROC_PINPOINTS = [[24, 48], [48, 24], [48, 48], [72, 24]]
PROC_IMAGES = [("wide", 20, 130, True), ("tall", 70, 50, False)]


def make_proc_config():
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                              num_attention_heads=2, image_size=PROC_CROP, patch_size=8)
    text = MistralConfig(vocab_size=272, hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, rope_theta=10000.0,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    return LlavaNextConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                           image_token_index=IMAGE_TOKEN, image_grid_pinpoints=PROC_PINPOINTS,
                           vision_feature_layer=-1, vision_feature_select_strategy="default",
                           projector_hidden_act="gelu", image_seq_length=9,
                           tie_word_embeddings=False)


def make_tokenizer():
    """Llama's layout in 272 ids: <unk> <s> </s>, the 256 <0xNN> byte-fallback tokens, a few merged
    pieces (enough to exercise merges on "[INST]"), then "<image>" = image_token_index and <pad>.
    Everything else falls back to bytes, as SentencePiece does for unknown characters."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    pieces = ["\u2581", "I", "N", "IN", "S", "T", "ST", "INST", "[", "]", "\u2581["]
    for p in pieces:
        vocab[p] = len(vocab)
    assert len(vocab) == IMAGE_TOKEN
    merges = [("I", "N"), ("S", "T"), ("IN", "ST"), ("\u2581", "[")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                           normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    fast = LlamaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                              unk_token="<unk>", add_bos_token=True, add_eos_token=False)
    fast.add_special_tokens({"additional_special_tokens": ["<image>"], "pad_token": "<pad>"})
    assert fast.convert_tokens_to_ids("<image>") == IMAGE_TOKEN and len(fast) == 272
    return fast


def randomize(model, seed, std=WEIGHT_STD, bias_std=BIAS_STD):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight") or "layer_norm" in name and name.endswith(".weight") \
                    or "layrnorm.weight" in name:
                p.copy_(1.0 + NORM_NOISE * noise)
            elif name.endswith(".bias"):
                p.copy_(bias_std * noise)
            else:
                p.copy_(std * noise)


def make_image(h, w, seed):
    """Smooth colour gradients plus a little noise: deterministic and small as PNG."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for c in range(3):
        a, b, f = rng.uniform(-1, 1, 3)
        v = 128 + 100 * np.sin(a * x / max(w, 1) * 6 + b * y / max(h, 1) * 6 + f * 3)
        chans.append(v + rng.normal(0, 8, (h, w)))
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def head_capture(model, input_ids, **kw):
    """c[l,h] at every position of one prompt, [L, H, T, D]: the input of each decoder layer's
    o_proj (z, [T, H*dh]) split per head and multiplied by that head's W_O columns. Checks that
    the heads' contributions add up to o_proj's output."""
    lm = model.language_model.model
    zs = []
    hooks = [layer.self_attn.o_proj.register_forward_hook(
        lambda mod, args, out: zs.append((args[0][0].clone(), out[0].clone()))) for layer in lm.layers]
    try:
        with torch.no_grad():
            model(input_ids=input_ids, **kw)
    finally:
        for h in hooks:
            h.remove()
    cfg = model.config.text_config
    H, dh = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    out = []
    for layer, (z, o) in zip(lm.layers, zs):
        w = layer.self_attn.o_proj.weight.detach()  # [D, H*dh]
        c = torch.stack([z[:, h * dh:(h + 1) * dh] @ w[:, h * dh:(h + 1) * dh].T for h in range(H)])
        assert torch.allclose(c.sum(0), o, rtol=1e-4, atol=1e-5 * float(o.abs().max())), "sum of heads != o_proj"
        out.append(c)
    return torch.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", metavar="DIR", help="full vision shapes into DIR instead of the fixture")
    ap.add_argument("--proc", action="store_true", help="tiny-llava-proc/ (non-default processor)")
    args = ap.parse_args()
    torch.manual_seed(0)
    full = args.full is not None
    OUT = os.path.abspath(args.full) if full else globals()["OUT"]
    if args.proc:
        OUT = os.path.join(os.path.dirname(OUT), "tiny-llava-proc")
    cfg = make_full_config() if full else make_proc_config() if args.proc else make_config()
    model = LlavaNextForConditionalGeneration(cfg).eval()
    model.config._attn_implementation = "eager"
    model.vision_tower.config._attn_implementation = "eager"
    model.language_model.config._attn_implementation = "eager"
    # 24 pre-LN layers of width 1024 with 0.2-std weights would grow the residual stream past
    # float32; the default init's 0.02 keeps it finite (biases nonzero all the same).
    randomize(model, 1234, *((0.02, 0.02) if full else (WEIGHT_STD, BIAS_STD)))
    crop = cfg.vision_config.image_size
    proc = LlavaNextImageProcessor(size={"shortest_edge": crop}, crop_size={"height": crop, "width": crop},
                                   image_grid_pinpoints=cfg.image_grid_pinpoints)
    images = IMAGES
    if args.proc:
        proc = LlavaNextImageProcessor(image_grid_pinpoints=cfg.image_grid_pinpoints, **PROC_KW)
        images = PROC_IMAGES
    if full:
        photo = "/usr/lib/python3/dist-packages/skimage/data/chelsea.png"  # Debian python3-skimage
        if not os.path.exists(photo):
            sys.exit(f"--full needs {photo} (apt-get install python3-skimage)")
        images = [("chelsea", photo, True)]

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "ref"))
    model.save_pretrained(OUT, safe_serialization=True)
    proc.save_pretrained(OUT)
    if not full and not args.proc:
        tokenizer = make_tokenizer()
        tokenizer.backend_tokenizer.save(os.path.join(OUT, "tokenizer.json"))
        processor = LlavaNextProcessor(image_processor=proc, tokenizer=tokenizer, patch_size=8,
                                       vision_feature_select_strategy="default", image_token="<image>")
    for f in ("generation_config.json",):
        if os.path.exists(os.path.join(OUT, f)):
            os.remove(os.path.join(OUT, f))

    cases = []
    for k, (name, *size, with_logits) in enumerate(images):
        path = os.path.join(OUT, "ref", f"{name}.png")
        if full:
            shutil.copy(size[0], path)
        else:
            Image.fromarray(make_image(*size, 100 + k)).save(path, optimize=True)
        img = np.asarray(Image.open(path).convert("RGB"))  # exactly what a reader of the PNG gets
        h, w = img.shape[:2]
        batch = proc(images=Image.fromarray(img), return_tensors="pt")
        pix, sizes = batch["pixel_values"], batch["image_sizes"]  # [1, n, 3, 32, 32], [1, 2]
        assert sizes.tolist() == [[h, w]], sizes
        with torch.no_grad():
            hs = model.vision_tower(pix[0], output_hidden_states=True).hidden_states
            tower = hs[cfg.vision_feature_layer][:, 1:]
            feats = model.get_image_features(pix, sizes, cfg.vision_feature_layer,
                                             cfg.vision_feature_select_strategy)
            packed, lens = model.pack_image_features(feats, sizes, cfg.vision_feature_select_strategy,
                                                     image_newline=model.image_newline)
        n_img = int(packed.shape[0])
        ids = PRE + [IMAGE_TOKEN] * n_img + POST
        case = {"name": name, "height": h, "width": w, "n_tiles": int(pix.shape[1]),
                "n_image_tokens": n_img, "prompt_single": PRE + [IMAGE_TOKEN] + POST,
                "logits": with_logits}
        np.save(os.path.join(OUT, "ref", f"{name}.pixels.npy"), pix[0].numpy().astype(np.float32))
        np.save(os.path.join(OUT, "ref", f"{name}.tower.npy"), tower.numpy().astype(np.float32))
        np.save(os.path.join(OUT, "ref", f"{name}.features.npy"), packed.numpy().astype(np.float32))
        if with_logits:
            input_ids = torch.tensor([ids])
            with torch.no_grad():
                logits = model(input_ids=input_ids, pixel_values=pix, image_sizes=sizes).logits[0]
                # Self-check: the same logits from the language model with the packed features
                # written into the embeddings at the image tokens, i.e. exactly the injection.
                emb = model.get_input_embeddings()(input_ids)[0].clone()
                emb[input_ids[0] == IMAGE_TOKEN] = packed
                logits2 = model.language_model(inputs_embeds=emb[None]).logits[0]
            assert torch.equal(logits, logits2), (logits - logits2).abs().max()
            np.save(os.path.join(OUT, "ref", f"{name}.logits.npy"), logits.numpy().astype(np.float32))
            case["prompt_expanded"] = ids
        if name == TEXT_IMAGE and not full and not args.proc:
            # The prompt as llava-hf's model card writes it; the processor expands <image>.
            prompt = f"[INST] <image>\n{TEXT} [/INST]"
            batch = processor(images=Image.fromarray(img), text=prompt, return_tensors="pt")
            assert torch.equal(batch["pixel_values"], pix)
            tids = batch["input_ids"]
            assert int((tids == IMAGE_TOKEN).sum()) == n_img, "processor and model disagree"
            with torch.no_grad():
                logits = model(input_ids=tids, pixel_values=pix, image_sizes=sizes).logits[0]
            np.save(os.path.join(OUT, "ref", f"{name}.text_logits.npy"),
                    logits.numpy().astype(np.float32))
            c = head_capture(model, tids, pixel_values=pix, image_sizes=sizes)  # [L, H, T, D]
            is_img = tids[0] == IMAGE_TOKEN
            cap = torch.stack([c[:, :, is_img].mean(2), c[:, :, ~is_img].mean(2), c[:, :, -1]])
            np.save(os.path.join(OUT, "ref", f"{name}.capture.npy"), cap.numpy().astype(np.float32))
            case["text"] = TEXT
            case["text_ids"] = tids[0].tolist()
        cases.append(case)
        log(f"{name}: {h}x{w} -> {pix.shape[1]} tiles, {n_img} image tokens")
    with open(os.path.join(OUT, "ref", "cases.json"), "w") as f:
        json.dump({"image_token": IMAGE_TOKEN, "cases": cases}, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    log(f"wrote {OUT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
