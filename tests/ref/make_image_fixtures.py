#!/usr/bin/env python3
"""make_image_fixtures.py: test images and Hugging Face references for tests/test_image.c.

Writes tests/fixtures/images/:
  *.png, *.jpg      small images: photos from Debian python3-skimage (copied when small, else
                    downscaled and re-encoded by PIL) and synthetic ones covering every PNG colour
                    type / bit depth, Adam7, palettes with out-of-range indices, 16-bit, grey, CMYK
                    and progressive JPEG, extreme aspect ratios and tiny sizes
  bad/              broken inputs (truncated, corrupt, not an image); PIL's verdict is recorded
  ref/*.rgb         PIL's Image.open(f).convert("RGB") as raw bytes (every s-th row and column
                    for the larger images, s = "rgb_stride")
  ref/*.u8          HF LlavaNextImageProcessor pixel_values for the small config, mapped back to
                    the uint8 value each float came from ([n_tiles, 3, crop, crop]); the mapping
                    is checked to be exact (each float equals HF's normalisation of that byte)
  ref/*.f32.npy     the same pixel_values as float32, for two images (the normalisation itself)
  ref/*.336.npy     llava-v1.6 config (crop 336): every 257th element of the flattened
                    pixel_values (float32); the whole tensor is covered by "mix" below
  manifest.json     per image: size, PIL mode, format, reference files, and per processor config
                    n_tiles, best resolution, image_sizes, mixsum64 (see mixsum64()) of the uint8 stack, sums,
                    and the image-token count from HF's own model code
  tokens_<cfg>.txt  image-token counts for many (h, w), from LlavaNextForConditionalGeneration.
                    pack_image_features run on zero features (HF's real code), with the grid and
                    unpadded shapes, the processor's count (LlavaNextProcessor), and the counts
                    with current transformers' unpadding (int(round(x, 7)), replicated): 4.46.3's
                    model truncates a float there and disagrees with its own processor for a few
                    sizes (all such sizes in a scanned range are included)
  synth_small.txt   the small-config processor on synthetic noise images of many sizes (content
                    from synth() below, which test_image.c reimplements): n_tiles, best, mixsum64

Run from anywhere with the reference environment (tests/ref/setup_ref_env.sh; PIL 9.4.0 is Debian's
python3-pil through --system-site-packages) and Debian python3-skimage installed:
    .venv-ref/bin/python tests/ref/make_image_fixtures.py
Re-running reproduces every file byte for byte.
"""
import io
import json
import os
import re
import struct
import sys
import types
import zlib

import numpy as np
import PIL
import torch
import transformers
from PIL import Image
from transformers import LlavaNextImageProcessor
from transformers.image_utils import ChannelDimension
from transformers.models.llava_next.image_processing_llava_next import _get_patch_output_size
from transformers.models.llava_next.modeling_llava_next import (LlavaNextForConditionalGeneration,
                                                                  image_size_to_num_patches)
from transformers.models.llava_next.processing_llava_next import LlavaNextProcessor

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "images")
SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def grid(c):
    return [[c, 2 * c], [2 * c, c], [2 * c, 2 * c], [3 * c, c], [c, 3 * c]]


# The real llava-hf/llava-v1.6-mistral-7b-hf preprocessor settings, and a small one for tiny models.
CONFIGS = {
    "llava336": {"crop": 336, "patch": 14, "pinpoints": grid(336)},
    "small": {"crop": 32, "patch": 8, "pinpoints": grid(32)},
}
SAMPLE_STRIDE = 257


def processor(cfg, cls=LlavaNextImageProcessor):
    return cls(
        do_resize=True, size={"shortest_edge": cfg["crop"]}, image_grid_pinpoints=cfg["pinpoints"],
        resample=3, do_center_crop=True, crop_size={"height": cfg["crop"], "width": cfg["crop"]},
        do_rescale=True, rescale_factor=0.00392156862745098, do_normalize=True, image_mean=MEAN,
        image_std=STD, do_pad=True, do_convert_rgb=True)


# ------------------------------------------------------------------ helpers

def mixsum64(a):
    """Checksum of a uint8 array that every element and its position change (test_image.c
    computes the same): sum over i of (a[i] + 1) * splitmix64((i + 1) * 0x9E3779B97F4A7C15),
    modulo 2^64, as 16 hex digits."""
    a = np.ascontiguousarray(a, dtype=np.uint8).reshape(-1)
    with np.errstate(over="ignore"):
        z = (np.arange(1, a.size + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
        h = np.sum((a.astype(np.uint64) + np.uint64(1)) * z, dtype=np.uint64)
    return "%016x" % int(h)


def norm_lut():
    """HF's float32 value for each byte and channel: rescale in float64 then float32, then
    (x - mean) / std in float32 (transformers.image_transforms.rescale / normalize)."""
    v = np.arange(256, dtype=np.float64) * 0.00392156862745098
    v = v.astype(np.float32)
    mean, std = np.array(MEAN, dtype=np.float32), np.array(STD, dtype=np.float32)
    return np.stack([(v - mean[c]) / std[c] for c in range(3)])  # [3, 256] float32


LUT = norm_lut()


def to_u8(pv):
    """Maps HF pixel_values [n, 3, s, s] back to bytes; asserts every float is exactly one of
    the 256 values HF's normalisation can produce for its channel."""
    out = np.empty(pv.shape, dtype=np.uint8)
    for c in range(3):
        lut = LUT[c]
        order = np.argsort(lut)
        x = pv[:, c]
        idx = np.searchsorted(lut[order], x)
        idx = np.clip(idx, 0, 255)
        u = order[idx]
        assert np.array_equal(lut[u].view(np.uint32), x.view(np.uint32)), "pixel_values not a normalised byte"
        out[:, c] = u
    return out


def synth(h, w, seed):
    """Deterministic noise image (test_image.c computes the same): a 32-bit hash of (x, y, c)."""
    y, x, c = np.meshgrid(np.arange(h, dtype=np.uint64), np.arange(w, dtype=np.uint64),
                          np.arange(3, dtype=np.uint64), indexing="ij")
    m = np.uint64(0xFFFFFFFF)
    v = ((x * np.uint64(73856093)) ^ (y * np.uint64(19349663)) ^ (c * np.uint64(83492791)) ^
         np.uint64((seed * 2654435761) & 0xFFFFFFFF)) & m
    v ^= v >> np.uint64(13)
    v = (v * np.uint64(0x5BD1E995)) & m
    v ^= v >> np.uint64(15)
    return (v & np.uint64(255)).astype(np.uint8)


class FixedPadProcessor(LlavaNextImageProcessor):
    """HF's processor with one bug fixed: _pad_for_patching calls self.pad without the channel
    format, so pad guesses it, and an image resized to 1 or 3 rows is taken for channels-first
    and padded along the wrong axes. Used only where it changes the result (flagged)."""

    def _pad_for_patching(self, image, target_resolution, input_data_format):
        th, tw = target_resolution
        nh, nw = _get_patch_output_size(image, target_resolution, input_data_format)
        py, px = (th - nh) // 2, (tw - nw) // 2
        return self.pad(image, padding=((py, py), (px, px)), input_data_format=input_data_format)


def run_hf(cfg, make_input, h):
    """HF processor on one image (make_input() gives a fresh PIL image or array). Returns
    pixel_values [n, 3, crop, crop], image_sizes, and the HF quirks that had to be sidestepped:
    "channel_guess" (an image 1 or 3 rows high is taken for channels-first, so channels_last is
    passed explicitly) and "pad_axes" (FixedPadProcessor above differs from HF's)."""
    quirks = []
    kw = {}
    if h in (1, 3):
        kw["input_data_format"] = ChannelDimension.LAST
        quirks.append("channel_guess")
    fixed = processor(cfg, FixedPadProcessor)(make_input(), return_tensors="np", **kw)
    pv = fixed["pixel_values"][0]
    try:
        plain = processor(cfg)(make_input(), return_tensors="np", **kw)["pixel_values"][0]
    except Exception:  # HF's bug may also raise
        plain = None
    if plain is None or plain.shape != pv.shape or not np.array_equal(plain, pv):
        quirks.append("pad_axes")
    return pv, [int(v) for v in fixed["image_sizes"][0]], quirks


class _Cfg:
    pass


def hf_tokens(cfg, h, w):
    """Image-token count and shapes from HF's model code: pack_image_features on zero features."""
    crop, patch = cfg["crop"], cfg["patch"]
    P = crop // patch
    fake = _Cfg()
    fake.config = types.SimpleNamespace(
        vision_config=types.SimpleNamespace(image_size=crop, patch_size=patch),
        image_grid_pinpoints=cfg["pinpoints"])
    n = image_size_to_num_patches((h, w), cfg["pinpoints"], crop)
    feats = [torch.zeros(n, P * P, 1)]
    sizes = torch.tensor([[h, w]])
    packed, lens = LlavaNextForConditionalGeneration.pack_image_features(
        fake, feats, sizes, "default", image_newline=torch.zeros(1))
    return int(lens[0]), n


def hf_processor_tokens(cfg, h, w):
    """LlavaNextProcessor's own count (what it expands <image> to), vision strategy "default"."""
    fake = types.SimpleNamespace(image_processor=types.SimpleNamespace(image_grid_pinpoints=cfg["pinpoints"]),
                                 patch_size=cfg["patch"])
    fake._get_unpadded_features = lambda *a: LlavaNextProcessor._get_unpadded_features(fake, *a)
    return LlavaNextProcessor._get_number_of_features(fake, h, w, cfg["crop"], cfg["crop"]) - 1


def shapes(cfg, h, w):
    """Grid and unpadded feature-map shapes, by HF's functions (for the table's diagnostics)."""
    from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape, unpad_image
    from transformers.image_processing_utils import select_best_resolution
    bh, bw = select_best_resolution((h, w), cfg["pinpoints"])
    gh, gw = get_anyres_image_grid_shape((h, w), cfg["pinpoints"], cfg["crop"])
    P = cfg["crop"] // cfg["patch"]
    u = unpad_image(torch.zeros(1, gh * P, gw * P), torch.tensor([h, w]))
    return bh, bw, gh, gw, u.shape[1], u.shape[2]


# ------------------------------------------------------------------ PNG writer (for what PIL cannot write)

def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", int(s)) for s in samples)
    if depth == 8:
        return bytes(int(s) for s in samples)
    out, acc, nbits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | int(s)
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def png_bytes(a, depth, ctype, plte=None, trns=None, interlace=False, extra=b""):
    """a: [h, w, channels] integer samples."""
    h, w = a.shape[:2]
    raw = bytearray()
    if not interlace:
        for y in range(h):
            raw += b"\0" + pack_row(a[y].reshape(-1), depth)
    else:
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                               (1, 0, 2, 2), (0, 1, 1, 2)]:
            sub = a[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for y in range(sub.shape[0]):
                raw += b"\0" + pack_row(sub[y].reshape(-1), depth)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(interlace)))
    out += extra
    if plte is not None:
        out += chunk(b"PLTE", bytes(int(v) for v in plte))
    if trns is not None:
        out += chunk(b"tRNS", bytes(int(v) for v in trns))
    return out + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


def save_pil(im, name, **kw):
    b = io.BytesIO()
    im.save(b, **kw)
    return name, b.getvalue()


# ------------------------------------------------------------------ the image set

def photo(name):
    return Image.open(os.path.join(SKIMAGE, name))


def build_images():
    rng = np.random.RandomState(1234)
    imgs = []

    def add(name, data):
        imgs.append((name, data))

    # Real photos. Copied as they are when small (real encoders' files), else downscaled by PIL.
    for n in ["horse.png", "green_palette.png", "palette_color.png", "palette_gray.png",
              "checker_bilevel.png", "foo3x5x4indexed.png"]:
        with open(os.path.join(SKIMAGE, n), "rb") as f:
            add(n, f.read())
    add(*save_pil(photo("astronaut.png").resize((120, 120), Image.LANCZOS), "astronaut_120.png", format="PNG"))
    add(*save_pil(photo("camera.png").resize((64, 64), Image.LANCZOS), "camera_grey.png", format="PNG"))
    add(*save_pil(photo("chelsea.png").resize((150, 100), Image.LANCZOS), "chelsea.jpg", format="JPEG", quality=90))
    add(*save_pil(photo("coffee.png").convert("RGB"), "coffee_600x400.jpg", format="JPEG", quality=75))
    add(*save_pil(photo("coffee.png").convert("RGB").resize((144, 96), Image.LANCZOS), "coffee_prog.jpg",
                  format="JPEG", quality=85, progressive=True))
    add(*save_pil(photo("rocket.jpg").resize((96, 64), Image.LANCZOS), "rocket_444.jpg", format="JPEG",
                  quality=92, subsampling=0))
    add(*save_pil(photo("camera.png").resize((64, 48), Image.LANCZOS), "camera_grey.jpg", format="JPEG", quality=90))
    add(*save_pil(photo("astronaut.png").resize((48, 32), Image.LANCZOS).convert("CMYK"), "astronaut_cmyk.jpg",
                  format="JPEG", quality=90))

    # Synthetic, PIL-encoded.
    def noise(h, w, c=3):
        base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, c))
        return np.clip(base + rng.randint(-60, 61, (h, w, c)), 0, 255).astype(np.uint8)

    add(*save_pil(Image.fromarray(noise(40, 240)), "wide_240x40.png", format="PNG"))
    add(*save_pil(Image.fromarray(noise(200, 36)), "tall_36x200.png", format="PNG"))
    add(*save_pil(Image.fromarray(noise(13, 20)), "tiny_20x13.png", format="PNG"))
    add(*save_pil(Image.fromarray(noise(3, 7)), "rows3_7x3.png", format="PNG"))
    add(*save_pil(Image.fromarray(noise(1, 9)), "row1_9x1.png", format="PNG"))
    yy, xx = np.mgrid[0:50, 0:1000]
    strip = np.stack([128 + 100 * np.sin(xx / 9.0 + c) * np.cos(yy / 7.0) for c in range(3)], -1)
    strip = np.clip(strip + rng.randint(-3, 4, strip.shape), 0, 255).astype(np.uint8)
    add(*save_pil(Image.fromarray(strip), "strip_1000x50.png", format="PNG"))
    add(*save_pil(Image.fromarray(noise(30, 40, 2), "LA"), "la_40x30.png", format="PNG"))
    add(*save_pil(Image.fromarray(noise(30, 40, 1)[:, :, 0], "L"), "grey_40x30.png", format="PNG"))
    add(*save_pil(Image.fromarray(noise(30, 40, 4), "RGBA"), "rgba_40x30.png", format="PNG"))
    add(*save_pil(Image.fromarray(noise(17, 23)), "noise_23x17_q75.jpg", format="JPEG", quality=75))

    # Synthetic, hand-written PNGs (16-bit, low bit depths, Adam7, odd palettes, ancillary chunks).
    h, w = 24, 32
    add("rgb16_32x24.png", png_bytes(rng.randint(0, 65536, (h, w, 3)), 16, 2))
    g16 = rng.randint(0, 600, (h, w, 1))
    g16[0, :4, 0] = [0, 255, 256, 65535]
    add("grey16_32x24.png", png_bytes(g16, 16, 0))
    add("la16_32x24.png", png_bytes(rng.randint(0, 65536, (h, w, 2)), 16, 4))
    add("rgba16_32x24.png", png_bytes(rng.randint(0, 65536, (h, w, 4)), 16, 6))
    add("grey1_13x7.png", png_bytes(rng.randint(0, 2, (7, 13, 1)), 1, 0))
    add("grey2_13x7.png", png_bytes(rng.randint(0, 4, (7, 13, 1)), 2, 0))
    add("grey4_13x7.png", png_bytes(rng.randint(0, 16, (7, 13, 1)), 4, 0))
    add("pal4_oob_13x7.png", png_bytes(rng.randint(0, 16, (7, 13, 1)), 4, 3, plte=rng.randint(0, 256, 15)))
    add("pal8_trns_33x27.png", png_bytes(rng.randint(0, 200, (27, 33, 1)), 8, 3, plte=rng.randint(0, 256, 600),
                                         trns=[0, 128, 255]))
    add("adam7_rgb_33x27.png", png_bytes(noise(27, 33), 8, 2, interlace=True))
    add("adam7_grey2_11x9.png", png_bytes(rng.randint(0, 4, (9, 11, 1)), 2, 0, interlace=True))
    gama = chunk(b"gAMA", struct.pack(">I", 100000)) + chunk(b"sBIT", bytes([5, 6, 5]))
    add("gamma_sbit_20x13.png", png_bytes(noise(13, 20), 8, 2, extra=gama))
    rgb_trns = chunk(b"tRNS", struct.pack(">HHH", 10, 20, 30))
    add("rgb_trns_20x13.png", png_bytes(noise(13, 20), 8, 2, extra=rgb_trns))
    return imgs


def build_bad(imgs):
    d = dict(imgs)
    rng = np.random.RandomState(99)
    png, jpg = d["tiny_20x13.png"], d["chelsea.jpg"]
    crc = bytearray(png)
    i = crc.index(b"IDAT")
    crc[i + 6] ^= 0xFF  # a byte inside the compressed data: IDAT CRC no longer matches
    sof = bytearray(jpg)
    j = sof.index(b"\xff\xc0")
    sof[j + 9] = 7  # 7 components
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    return [
        ("truncated.png", png[: len(png) // 2]),
        ("truncated_header.png", png[:20]),
        ("truncated.jpg", jpg[: len(jpg) * 6 // 10]),
        ("truncated_header.jpg", jpg[:100]),
        ("no_eoi.jpg", jpg[:-2]),  # complete data without the end marker: PIL decodes it
        ("random.bin", rng.randint(0, 256, 512).astype(np.uint8).tobytes()),
        ("empty.png", b""),
        ("text.png", b"This is a text file, not an image.\n"),
        ("bad_crc.png", bytes(crc)),
        ("bad_components.jpg", bytes(sof)),
        ("tiny.gif", gif.getvalue()),
        ("signature_only.png", png[:8]),
    ]


# ------------------------------------------------------------------ main

def main():
    assert PIL.__version__ == "9.4.0" and transformers.__version__ == "4.46.3", (PIL.__version__,
                                                                                transformers.__version__)
    if not os.path.isdir(SKIMAGE):
        sys.exit("make_image_fixtures: %s missing: apt-get install python3-skimage" % SKIMAGE)
    torch.manual_seed(0)
    os.makedirs(os.path.join(ROOT, "ref"), exist_ok=True)
    os.makedirs(os.path.join(ROOT, "bad"), exist_ok=True)
    for sub in ["", "ref", "bad"]:  # start clean so that renamed fixtures do not linger
        for n in os.listdir(os.path.join(ROOT, sub)):
            p = os.path.join(ROOT, sub, n)
            if os.path.isfile(p) and n != "README.md":
                os.remove(p)

    imgs = build_images()
    manifest = {"pil_version": PIL.__version__, "transformers_version": transformers.__version__,
                "numpy_version": np.__version__, "mean": MEAN, "std": STD, "sample_stride": SAMPLE_STRIDE,
                "configs": CONFIGS, "images": [], "bad": []}
    full_f32 = {"astronaut_120.png", "strip_1000x50.png"}
    sample_336 = {"astronaut_120.png", "coffee_600x400.jpg", "strip_1000x50.png", "tall_36x200.png",
                  "chelsea.jpg"}
    for name, data in imgs:
        with open(os.path.join(ROOT, name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        mode, fmt = im.mode, im.format
        rgb = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[:2]
        stride = 1 if h * w <= 8000 else 2 if h * w <= 20000 else 4
        ref = rgb[::stride, ::stride]
        base = name.replace(".", "_")  # camera_grey.png and camera_grey.jpg both exist
        with open(os.path.join(ROOT, "ref", base + ".rgb"), "wb") as f:
            f.write(np.ascontiguousarray(ref).tobytes())
        entry = {"file": name, "format": fmt.lower(), "pil_mode": mode, "w": w, "h": h,
                 "rgb": "ref/" + base + ".rgb", "rgb_stride": stride, "rgb_mix": mixsum64(rgb), "proc": {}}
        for cname, cfg in CONFIGS.items():
            pv, sizes, quirks = run_hf(cfg, lambda: Image.open(io.BytesIO(data)), h)
            assert sizes == [h, w], (name, sizes)
            u8 = to_u8(pv)
            tokens, n_patches = hf_tokens(cfg, h, w)
            assert n_patches == pv.shape[0], (name, n_patches, pv.shape)
            bh, bw, gh, gw, uh, uw = shapes(cfg, h, w)
            p = {"n_tiles": int(pv.shape[0]), "best": [bh, bw], "mix": mixsum64(u8),
                 "sum": float(pv.astype(np.float64).sum()), "tokens": tokens,
                 "tokens_processor": hf_processor_tokens(cfg, h, w), "hf_quirks": quirks}
            if cname == "small":
                p["u8"] = "ref/%s.small.u8" % base
                with open(os.path.join(ROOT, p["u8"]), "wb") as f:
                    f.write(u8.tobytes())
                if name in full_f32:
                    p["f32"] = "ref/%s.small.f32.npy" % base
                    np.save(os.path.join(ROOT, p["f32"]), pv.astype(np.float32))
            elif name in sample_336:
                p["sample"] = "ref/%s.336.npy" % base
                np.save(os.path.join(ROOT, p["sample"]), pv.reshape(-1)[::SAMPLE_STRIDE].astype(np.float32))
            entry["proc"][cname] = p
        manifest["images"].append(entry)
        print("%-24s %-5s %-4s %4dx%-4d tiles %d/%d tokens %d/%d" % (
            name, fmt, mode, w, h, entry["proc"]["small"]["n_tiles"], entry["proc"]["llava336"]["n_tiles"],
            entry["proc"]["small"]["tokens"], entry["proc"]["llava336"]["tokens"]))

    for name, data in build_bad(imgs):
        with open(os.path.join(ROOT, "bad", name), "wb") as f:
            f.write(data)
        try:
            rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            verdict = {"file": "bad/" + name, "pil_ok": True, "w": rgb.shape[1], "h": rgb.shape[0],
                       "rgb_mix": mixsum64(rgb)}
        except Exception as ex:  # PIL raises several types: that it raised is what matters
            msg = re.sub(r" at 0x[0-9a-f]+", "", str(ex))  # object addresses change from run to run
            verdict = {"file": "bad/" + name, "pil_ok": False, "pil_error": "%s: %s" % (type(ex).__name__, msg)}
        manifest["bad"].append(verdict)
        print("bad/%-22s PIL %s" % (name, "decodes" if verdict["pil_ok"] else verdict["pil_error"]))

    # Token tables: many sizes, random and edge cases, including every size where HF's
    # processor and model disagree within a scanned range (the model's count is the truth: it
    # is the number of features the model produces).
    rng = np.random.RandomState(7)
    for cname, cfg in CONFIGS.items():
        c = cfg["crop"]
        sizes = set()
        for _ in range(300):
            sizes.add(tuple(int(v) for v in np.exp(rng.uniform(0, np.log(8 * c), 2)).astype(int) + 1))
        for a in [1, 2, 3, c - 1, c, c + 1, 2 * c - 1, 2 * c, 2 * c + 1, 3 * c, 5 * c + 3]:
            for b in [1, 7, c // 2, c, 2 * c, 3 * c + 1, 16384]:
                sizes.add((a, b))
                sizes.add((b, a))
        for hh, ww in cfg["pinpoints"]:
            sizes.add((hh, ww))
            sizes.add((hh // 3, ww // 3))
        mism = []
        lim = 3 * c if c > 100 else 8 * c
        for hh in range(1, lim, 1 if c < 100 else 3):
            for ww in range(1, lim, 1 if c < 100 else 3):
                if len(mism) < 40 and quick_model(cfg, hh, ww) != quick_processor(cfg, hh, ww):
                    mism.append((hh, ww))
        sizes.update(mism)
        rows = []
        for hh, ww in sorted(sizes):
            t, n = hf_tokens(cfg, hh, ww)
            bh, bw, gh, gw, uh, uw = shapes(cfg, hh, ww)
            tp = hf_processor_tokens(cfg, hh, ww)
            assert t == (c // cfg["patch"]) ** 2 + uh * (uw + 1)
            uh7, uw7 = unpad_round7(cfg, hh, ww, gh, gw)
            t7 = (c // cfg["patch"]) ** 2 + uh7 * (uw7 + 1)
            assert t7 == tp and (t7 == t or t != tp), (hh, ww)
            rows.append("%d %d %d %d %d %d %d %d %d %d %d %d %d %d" % (hh, ww, bh, bw, gh, gw, uh, uw, n, t, tp,
                                                                  uh7, uw7, t7))
        with open(os.path.join(ROOT, "tokens_%s.txt" % cname), "w") as f:
            f.write("# h w best_h best_w grid_h grid_w unpad_h unpad_w n_tiles tokens: all from transformers "
                    "4.46.3's model code (pack_image_features); tokens_processor: its LlavaNextProcessor; "
                    "unpad_h unpad_w tokens with round(x, 7) as current transformers\n")
            f.write("\n".join(rows) + "\n")
        print("tokens_%s.txt: %d sizes, %d where HF's processor and model disagree" % (
            cname, len(rows), sum(1 for r in rows if r.split()[9] != r.split()[10])))

    # The small-config processor on synthetic images of many sizes (exact, via mixsum64 of the bytes).
    cfg = CONFIGS["small"]
    rows = []
    sizes = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 5), (5, 3), (1, 200), (200, 1), (31, 31), (32, 32), (33, 33),
             (63, 64), (64, 63), (65, 130), (95, 31), (31, 95), (17, 96), (96, 17), (250, 70), (70, 250),
             (7, 500), (500, 7), (129, 257), (300, 300), (45, 91), (91, 45), (33, 97), (97, 33), (640, 480),
             (16, 48), (48, 16), (62, 33)]
    for _ in range(40):
        sizes.append(tuple(int(v) for v in rng.randint(1, 400, 2)))
    for i, (hh, ww) in enumerate(sizes):
        pv, _, quirks = run_hf(cfg, lambda: synth(hh, ww, i), hh)
        u8 = to_u8(pv)
        bh, bw = shapes(cfg, hh, ww)[:2]
        rows.append("%d %d %d %d %d %d %s %.9e %s" % (hh, ww, i, pv.shape[0], bh, bw, mixsum64(u8),
                                                     pv.astype(np.float64).sum(), ",".join(quirks) or "-"))
    with open(os.path.join(ROOT, "synth_small.txt"), "w") as f:
        f.write("# h w seed n_tiles best_h best_w mixsum64(uint8 tiles) sum(pixel_values) hf_quirks\n")
        f.write("\n".join(rows) + "\n")

    with open(os.path.join(ROOT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = 0
    for dp, _, fs in os.walk(ROOT):
        total += sum(os.path.getsize(os.path.join(dp, n)) for n in fs)
    print("wrote %s: %.2f MB" % (os.path.normpath(ROOT), total / 1e6))


def quick_model(cfg, h, w):
    """pack_image_features' count in plain Python (only to find processor/model disagreements
    quickly; the table itself comes from HF's code)."""
    from transformers.image_processing_utils import select_best_resolution
    bh, bw = select_best_resolution((h, w), cfg["pinpoints"])
    P = cfg["crop"] // cfg["patch"]
    ch, cw = bh // cfg["crop"] * P, bw // cfg["crop"] * P
    if w / h > cw / ch:
        nh = int(h * (cw / w))
        ch -= (ch - nh) // 2 * 2
    else:
        nw = int(w * (ch / h))
        cw -= (cw - nw) // 2 * 2
    return P * P + ch * (cw + 1)


def unpad_round7(cfg, h, w, gh, gw):
    """unpad_image as current transformers write it (int(round(x, 7))), replicated here because
    the reference environment has 4.46.3, which truncates the float instead."""
    P = cfg["crop"] // cfg["patch"]
    ch, cw = gh * P, gw * P
    if w / h > cw / ch:
        nh = int(round(h * (cw / w), 7))
        return ch - (ch - nh) // 2 * 2, cw
    nw = int(round(w * (ch / h), 7))
    return ch, cw - (cw - nw) // 2 * 2


def quick_processor(cfg, h, w):
    return hf_processor_tokens(cfg, h, w)


if __name__ == "__main__":
    main()
