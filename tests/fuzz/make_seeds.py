#!/usr/bin/env python3
"""make_seeds.py: writes the small valid seed inputs of the fuzz harnesses into
tests/fuzz/seeds/{safetensors,gguf}/ (deterministic). Needs numpy and the PyPI `gguf` package:
    .venv-quant/bin/python tests/fuzz/make_seeds.py
The dequantisation fixture tests/fixtures/quant/quant_types.gguf (every quant type) is copied in
as a seed too."""
import json
import os
import shutil
import struct

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
ST = os.path.join(HERE, "seeds", "safetensors")
GG = os.path.join(HERE, "seeds", "gguf")
rng = np.random.default_rng(7)


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw bytes)."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def write_raw(path, header, data):
    """A safetensors file from a header string taken as is (padded with spaces to 8 bytes)."""
    js = header.encode("utf-8", "surrogateescape")  # \udcXX: the raw byte XX
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + data)


def bad_layouts():
    """Files the reader must refuse, one per rule of the format (seeds near the valid ones)."""
    def t(name, b, e, dt="F32", n=2):
        return '"%s":{"dtype":"%s","shape":[%d],"data_offsets":[%d,%d]}' % (name, dt, n, b, e)
    cases = {
        "bad_trailing": ("{%s}" % t("a", 0, 8), 12),
        "bad_gap": ("{%s,%s}" % (t("a", 0, 8), t("b", 12, 20)), 20),
        "bad_gap_start": ("{%s}" % t("a", 4, 12), 12),
        "bad_overlap": ("{%s,%s}" % (t("a", 0, 8), t("b", 4, 12)), 12),
        "bad_offsets_past_eof": ("{%s}" % t("a", 0, 8), 4),
        "bad_size_mismatch": ("{%s}" % t("a", 0, 12), 12),
        "bad_header_start": (" {%s}" % t("a", 0, 8), 8),
        "bad_header_utf8": ("{%s}" % t("a\udcff", 0, 8), 8),
    }
    for name, (header, dlen) in cases.items():
        write_raw(os.path.join(ST, name + ".safetensors"), header, bytes(range(dlen)))
    # the header length one byte past the end of the file
    js = ("{%s}" % t("a", 0, 8)).encode()
    with open(os.path.join(ST, "bad_header_len.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(js) + 9) + js + bytes(8))


def main():
    os.makedirs(ST, exist_ok=True)
    os.makedirs(GG, exist_ok=True)
    f32 = rng.standard_normal((2, 3)).astype("<f4")
    write_safetensors(os.path.join(ST, "mixed.safetensors"), [
        ("a", "F32", (2, 3), f32.tobytes()),
        ("h", "F16", (4,), np.array([1, -2, 65504, 6e-8], "<f2").tobytes()),
        ("b", "BF16", (2, 2), (f32.reshape(-1)[:4].view("<u4") >> 16).astype("<u2").tobytes()),
        ("i", "I32", (3,), np.array([-1, 0, 7], "<i4").tobytes()),
        ("l", "I64", (1,), np.array([1 << 40], "<i8").tobytes()),
        ("u", "U8", (5,), bytes([0, 60, 120, 180, 240])),
        ("s", "F32", (), np.float32(0.5).tobytes()),
        ("z", "F32", (0, 3), b""),
    ], metadata={"format": "pt"})
    write_safetensors(os.path.join(ST, "one.safetensors"),
                      [("model.embed_tokens.weight", "BF16", (4, 2), bytes(range(16)))])
    write_safetensors(os.path.join(ST, "empty.safetensors"), [])
    bad_layouts()

    w = gguf.GGUFWriter(os.path.join(GG, "metadata.gguf"), arch="llama")
    w.add_uint8("k.u8", 200)
    w.add_int8("k.i8", -5)
    w.add_uint16("k.u16", 60000)
    w.add_int16("k.i16", -30000)
    w.add_uint32("k.u32", 4000000000)
    w.add_int32("k.i32", -2000000000)
    w.add_float32("k.f32", 1.5)
    w.add_bool("k.bool", True)
    w.add_uint64("k.u64", 1 << 63)
    w.add_int64("k.i64", -(1 << 40))
    w.add_float64("k.f64", 2.25)
    w.add_string("k.str", "hello")
    w.add_array("k.arr_i32", [1, -2, 3])
    w.add_array("k.arr_f32", [0.5, -1.0])
    w.add_array("k.arr_str", ["a", "", "xyz"])
    w.add_tensor("t0", rng.standard_normal((2, 4)).astype(np.float32))
    w.add_tensor("t1", gguf.quants.quantize(rng.standard_normal((2, 32)).astype(np.float32), T.Q8_0),
                 raw_dtype=T.Q8_0)
    w.add_tensor("t2", np.array([1, -2, 0.5], np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    w = gguf.GGUFWriter(os.path.join(GG, "tiny_llama.gguf"), arch="llama")
    w.add_context_length(256)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_token_list(["<s>", "</s>", "a", "b", "c"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_tensor("token_embd.weight",
                 gguf.quants.quantize(rng.standard_normal((5, 64)).astype(np.float32), T.Q4_0),
                 raw_dtype=T.Q4_0)
    w.add_tensor("output_norm.weight", np.ones(64, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    shutil.copy(os.path.join(HERE, "..", "fixtures", "quant", "quant_types.gguf"), GG)


if __name__ == "__main__":
    main()
