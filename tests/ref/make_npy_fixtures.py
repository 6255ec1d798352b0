#!/usr/bin/env python3
"""make_npy_fixtures.py: writes the small .npy files in tests/fixtures/npy/ with NumPy itself, so
that tests/test_npy.c checks the reader against files it did not write. One file per header
version (1.0, 2.0, 3.0), each dtype the reader accepts, and the shapes (2, 3), (5,), (2, 2), ().
The values are spelled out in test_npy.c. Run from the repository root:
    /usr/bin/python3 tests/ref/make_npy_fixtures.py
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "npy")


def write(name, arr, version):
    with open(os.path.join(OUT, name), "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    write("f4_2x3_v1.npy", np.arange(6, dtype="<f4").reshape(2, 3) * np.float32(0.5) - np.float32(1), (1, 0))
    write("f8_5_v2.npy", np.array([1.5, -2.25, 0.1, 0.0, 3e10], dtype="<f8"), (2, 0))
    write("i8_2x2_v3.npy", np.array([[1, -2], [3, 2**31 - 1]], dtype="<i8"), (3, 0))
    write("f4_scalar_v1.npy", np.array(3.5, dtype="<f4"), (1, 0))
    for n in sorted(os.listdir(OUT)):
        print(n, np.load(os.path.join(OUT, n)).tolist())


if __name__ == "__main__":
    main()
