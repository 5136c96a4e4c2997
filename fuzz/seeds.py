#!/usr/bin/env python3
"""Builds the fuzz targets' seed corpora from the repository's fixtures: fuzz/seeds.py OUTDIR.
OUTDIR/<target>/ gets one file per seed (libFuzzer adds what it finds beside them)."""

import base64
import json
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
out = Path(sys.argv[1])


def put(target: str, name: str, data: bytes) -> None:
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


images = sorted((REPO / "tests/fixtures/images").glob("*"))
for i, img in enumerate(images):
    raw = img.read_bytes()
    if img.suffix == ".b64":
        continue
    # The target's first byte picks the resize mode.
    put("decode_image", f"{img.stem}-squash", b"\x00" + raw)
    put("decode_image", f"{img.stem}-crop", b"\x01" + raw)

for p in [*sorted((REPO / "config").glob("*.yaml")), REPO / "config/defaults.json",
          REPO / "bench/service/mock-hailo10h.yaml"]:
    put("config", p.name, p.read_bytes())
put("config", "models.yaml", b"backend:\n  type: mock\nmodels:\n  - name: a\n  - name: b\n    default: true\n")

parity = json.loads((REPO / "tests/fixtures/tokenizer_parity.json").read_text())
texts = [c["text"] if isinstance(c, dict) else c for c in (parity if isinstance(parity, list) else parity.get("cases", []))]
for i, t in enumerate(texts[:60]):
    put("tokenizer", f"parity-{i:03}", str(t).encode())
put("tokenizer", "long-word", b"a" * 3000)

small = base64.b64encode(images[0].read_bytes()).decode() if images else ""
bodies = [
    {"image": small, "labels": ["cat", "dog"], "top_k": 1},
    {"image": small, "labels": ["cat"], "templates": ["a photo of a {}.", "{} {}"], "negative_labels": ["x"]},
    {"image": small, "label_set": "pets", "threshold": 0.5},
    {"texts": ["a cat", "a dog"], "model": "m"},
    {"text": "a cat"},
    {"images": [small]},
    {"labels": ["cat"], "prompt_template": "a {}"},
]
for i, b in enumerate(bodies):
    put("request_json", f"body-{i}", json.dumps(b).encode())

# Host and Authorization values (the access target reads each input as both).
for i, h in enumerate([b"127.0.0.1:5000", b"[::1]:5000", b"localhost", b"CLIP.example.org.",
                       b"pi5:5000", b"evil.example:80", b"Bearer s3cret-Key", b"bearer  s3cret-Key ",
                       b"Basic czNjcmV0", b"Bearer"]):
    put("access", f"head-{i}", h)


def npy(shape, descr: str, fortran: bool, payload: bytes) -> bytes:
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


put("npy", "f32-2x3", npy((2, 3), "<f4", False, struct.pack("<6f", *range(6))))
put("npy", "f32-2x3-fortran", npy((2, 3), "<f4", True, struct.pack("<6f", *range(6))))
put("npy", "f16-4", npy((4,), "<f2", False, struct.pack("<4e", 0.5, 1.0, -2.0, 3.5)))
put("npy", "f64-2", npy((2,), "<f8", False, struct.pack("<2d", 1.0, 2.0)))
print(f"seeds in {out}: " + ", ".join(f"{d.name} {len(list(d.iterdir()))}" for d in sorted(out.iterdir())))
