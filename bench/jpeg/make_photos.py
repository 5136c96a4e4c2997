#!/usr/bin/env python3
"""12 MP camera-like JPEGs for bench/jpeg.sh, made from scikit-image's sample photos.

Each photo is upscaled (bicubic) to 4000x3000 and saved at quality 90, 4:2:0, baseline, as a
camera writes it: `<name>.jpg` is the smooth upscale, `<name>-noisy.jpg` adds Gaussian sensor-like
noise (sigma 6 per channel) so the entropy-coded data is as heavy as a high-ISO photo's.
Deterministic: the same files every run (seeded noise).

    python bench/jpeg/make_photos.py OUT_DIR
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

PHOTOS = {
    "astronaut": data.astronaut,
    "chelsea": data.chelsea,
    "coffee": data.coffee,
    "rocket": data.rocket,
}
SIZE = (4000, 3000)


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, load in PHOTOS.items():
        base = Image.fromarray(load()).convert("RGB")
        # Landscape 4:3 like a camera; portrait sources are rotated first so none are stretched 2x.
        if base.height > base.width:
            base = base.transpose(Image.Transpose.ROTATE_90)
        big = base.resize(SIZE, Image.Resampling.BICUBIC)
        big.save(out / f"{name}.jpg", quality=90, subsampling="4:2:0")
        arr = np.asarray(big, dtype=np.float32)
        noisy = np.clip(arr + rng.normal(0.0, 6.0, arr.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(out / f"{name}-noisy.jpg", quality=90, subsampling="4:2:0")
        for f in (f"{name}.jpg", f"{name}-noisy.jpg"):
            print(f"{out / f}: {(out / f).stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
