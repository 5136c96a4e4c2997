#!/usr/bin/env python3
"""Pillow on the same job as crates/clip/examples/jpeg_bench.rs: base64 text to a 288x288 RGB
array. `draft` is Pillow's fastest path (Image.draft: DCT-scaled decode by libjpeg-turbo, then
bicubic resize); `plain` decodes at full size, then resizes.

    python bench/jpeg/pillow_bench.py [--size 288] [--reps 15] FILE...

Prints one JSON line per file and path, as the Rust example does.
"""

import argparse
import base64
import io
import json
import time

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=288)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    size = (a.size, a.size)
    for f in a.files:
        b64 = base64.b64encode(open(f, "rb").read()).decode()

        def draft():
            im = Image.open(io.BytesIO(base64.b64decode(b64)))
            im.draft("RGB", size)
            return np.asarray(im.convert("RGB").resize(size, Image.Resampling.BICUBIC))

        def plain():
            im = Image.open(io.BytesIO(base64.b64decode(b64)))
            return np.asarray(im.convert("RGB").resize(size, Image.Resampling.BICUBIC))

        for name, fn in (("pillow_draft", draft), ("pillow_plain", plain)):
            reps = a.reps if name == "pillow_draft" else max(3, a.reps // 3)
            fn()
            ms = []
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                ms.append((time.perf_counter() - t) * 1e3)
            ms.sort()
            print(json.dumps({"file": f, "path": name, "ms_median": round(ms[reps // 2], 3),
                              "ms_min": round(ms[0], 3), "reps": reps}))


if __name__ == "__main__":
    main()
