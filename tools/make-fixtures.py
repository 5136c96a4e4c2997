#!/usr/bin/env python3
"""Regenerate the committed test fixtures under tests/fixtures/.

Subcommands:
  images     tests/fixtures/images/: cat.jpg, astronaut.png, coffee.jpg (scikit-image's bundled
             photos) and bench-640x480.jpg
  tiny       tests/fixtures/tiny-rn/: a small random-weight ResNet CLIP exported with export-onnx.py,
             with torch reference outputs
  tokenizer  tests/fixtures/tokenizer_parity.json: open_clip token ids for a corpus of strings
  all        all three, in that order (tiny needs the images)
  check      verify the committed tiny-rn fixture against its references with onnxruntime and
             numpy only (no torch): file hashes, embeddings, batching. Prints 'N passed, N failed'.

Outputs are deterministic for fixed package versions (tools/requirements-export.txt), except the
timings recorded in tiny-rn/model.json.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import sys
from pathlib import Path

import hashlib

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"
IMAGES = FIXTURES / "images"
TINY_DIR = FIXTURES / "tiny-rn"

# CLIP ResNet architecture (ModifiedResNet + attention pool, causal text transformer, QuickGELU)
# at a size that fits in a few MB. The token embedding (49408 x text width) dominates the size,
# which is why the text width is 32.
TINY_CONFIG = {
    "embed_dim": 64,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "patch_size": None},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}
TINY_SEED = 0


def load_exporter():
    spec = importlib.util.spec_from_file_location("export_onnx", REPO_ROOT / "tools" / "export-onnx.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_images():
    import skimage.data
    from PIL import Image

    IMAGES.mkdir(parents=True, exist_ok=True)
    cat = Image.fromarray(skimage.data.chelsea())  # 451x300
    cat.save(IMAGES / "cat.jpg", quality=90, optimize=True)
    # PNG decodes bit-identically in every decoder: lets the Rust side separate resize from decode errors.
    astro = Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS)
    astro.save(IMAGES / "astronaut.png", optimize=True)
    coffee = Image.fromarray(skimage.data.coffee())  # 600x400
    coffee.save(IMAGES / "coffee.jpg", quality=90, optimize=True)
    bench = Image.fromarray(skimage.data.coffee()).resize((640, 480), Image.Resampling.BICUBIC)
    bench.save(IMAGES / "bench-640x480.jpg", quality=90, optimize=True)
    for p in sorted(IMAGES.iterdir()):
        with Image.open(p) as im:
            print(f"{p.relative_to(REPO_ROOT)}: {im.width}x{im.height} {im.mode}, {p.stat().st_size} B")


def make_tiny():
    TINY_DIR.mkdir(parents=True, exist_ok=True)
    cfg_path = TINY_DIR / "open_clip_config.json"
    cfg_path.write_text(json.dumps(TINY_CONFIG, indent=2) + "\n")
    exporter = load_exporter()
    rc = exporter.main(["--model", str(cfg_path), "--name", "tiny-rn", "--random", "--seed", str(TINY_SEED),
                        "--out", str(TINY_DIR),
                        "--images-dir", str(IMAGES)])
    if rc:
        sys.exit(rc)


# ---------------------------------------------------------------- tokenizer corpus

LABELS = [
    "cat", "dog", "bird", "car", "airplane", "ship", "truck", "horse", "deer", "frog",
    "person", "bicycle", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench",
    "elephant", "giraffe", "zebra", "teddy bear", "hair drier", "toothbrush", "cup of coffee",
    "astronaut", "golden retriever", "tabby cat", "red panda", "hot-air balloon", "t-shirt",
]
TEMPLATES = [
    "a photo of a {}.", "a blurry photo of a {}.", "a close-up photo of the {}.", "itap of a {}.",
    "a bad photo of the {}.", "art of the {}.", "a sketch of a {}.", "a {} in a video game.",
]


def corpus() -> list[tuple[str, str]]:
    cases: list[tuple[str, str]] = []
    add = lambda cat, items: cases.extend((cat, s) for s in items)  # noqa: E731
    add("prompt", [TEMPLATES[0].format(l) for l in LABELS])
    add("prompt", [t.format(l) for t in TEMPLATES[1:] for l in ("cat", "golden retriever")])
    add("plain", ["cat", "a", "the quick brown fox jumps over the lazy dog",
                  "person riding a bicycle next to a parked car", "sunset over the mountains",
                  "x-ray image of a chest", "0", "I", "ok"])
    add("punctuation", [
        "hello, world!", "what's up?", "don't stop", "it's a cat", "I'm here", "we'll see", "you're right",
        "they've gone", "he'd know", "rock'n'roll", "a--b", "...", "wait... what?!", "(parenthesised)",
        "[bracketed]", "{braced}", "semi;colon:colon", "say \"cheese\"", "it’s curly", "path/to/file.jpg",
        "user@example.com", "#hashtag @mention", "$100 or €90 or £80", "50% off", "c++ and c#",
        "snake_case_name", "a+b=c", "~tilde~", "back\\slash", "pipe|char", "<tag>", "a.b.c", "!!!",
        "'single quotes'", "`backticks`", "end.",
    ])
    add("numbers", ["1", "12", "123", "1234567890", "3.14159", "2024-01-01", "1,000,000", "0x1F",
                    "-5 degrees", "1st 2nd 3rd 4th", "route 66", "RN50x4", "ViT-B/32", "640x480",
                    "12:30 pm", "v1.2.3"])
    add("casing", ["CAT", "Cat", "cAt", "A PHOTO OF A DOG.", "iPhone", "McDonald's", "NASA astronaut",
                   "ThisIsCamelCase", "İstanbul", "ΟΔΟΣ ΣΟΦΙΑΣ", "\u212a kelvin sign",
                  "won't", "a photo of a children's book.", "wait\u2026 en\u2013dash em\u2014dash"])
    add("whitespace", ["", " ", "   ", "  leading spaces", "trailing spaces  ", "multiple     spaces",
                       "new\nline", "crlf\r\nline", "\ttabs\tand spaces ", "a\u00a0no-break space",
                       "ideographic\u3000space", "zero\u200bwidth", "\n\n\n", "mixed \t\n whitespace"])
    add("accents", ["café", "naïve", "résumé", "Zürich", "São Paulo", "Ångström", "crème brûlée",
                    "piñata", "façade", "Dvořák", "Łódź", "ÉCOLE", "cafe\u0301 (combining accent)",
                    "straße", "Ελληνικά", "русский текст", "עברית", "العربية"])
    add("cjk", ["猫", "東京", "こんにちは世界", "猫の写真", "안녕하세요", "中文测试句子", "一只猫的照片",
                "カタカナ", "ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ", "漢字と kanji mixed"])
    add("emoji", ["🐱", "🐶🐱", "a photo of a 🐕", "👍🏽", "👨‍👩‍👧", "🇯🇵", "❤️", "😀😃😄", "☕ coffee",
                  "🚀 to the 🌕", "✨sparkle✨"])
    add("html", ["fish &amp; chips", "&lt;b&gt;bold&lt;/b&gt;", "&quot;quoted&quot;", "it&#39;s",
                 "&amp;amp;", "&nbsp;space", "&copy; 2024", "caf&eacute;", "&#x1F431;", "a &amp b",
                 "Tom &amp; Jerry &amp; friends"])
    add("ftfy", ["cafÃ©", "â€œquotedâ€\x9d", "ﬁsh ﬂour (ligatures)", "\x00null\x01control",
                 "soft\u00adhyphen", "ＡＢＣ"])
    # 75 word-tokens + SOT + EOT fill exactly 77; 76 and more must truncate keeping EOT last.
    add("length", [" ".join(["cat"] * 74), " ".join(["cat"] * 75), " ".join(["cat"] * 76),
                   " ".join(["cat"] * 200),
                   "a photo of " + " and ".join(LABELS),
                   "supercalifragilisticexpialidocious",
                   "pneumonoultramicroscopicsilicovolcanoconiosis " * 10,
                   "a" * 300,
                   "🐱" * 100,
                   "the " * 40 + "end",
                   ("A long caption: " + "a man in a red jacket walks a small dog along a snowy street. ") * 4])
    return cases


def make_tokenizer_corpus():
    import ftfy
    import open_clip
    from open_clip.tokenizer import whitespace_clean

    tok = open_clip.get_tokenizer("RN50")
    ctx = tok.context_length
    cases = corpus()
    ids = tok([s for _, s in cases]).numpy()

    def encode_without_ftfy(text: str) -> list[int]:
        # open_clip's cleaning minus ftfy: marks strings where a tokenizer lacking ftfy would differ.
        text = html.unescape(html.unescape(text)).strip()
        return _bpe(tok, whitespace_clean(text).lower())

    out = []
    for (cat, text), row in zip(cases, ids):
        raw = tok.encode(text)
        full = len(raw) + 2
        out.append({
            "category": cat,
            "text": text,
            "ids": [int(x) for x in row],
            "untruncated_length": full,
            "truncated": full > ctx,
            "depends_on_ftfy": raw != encode_without_ftfy(text),
        })
    doc = {
        "tokenizer": "open_clip SimpleTokenizer (OpenAI CLIP BPE), cleaning: ftfy.fix_text, html.unescape x2, whitespace collapse, lower-case",
        "versions": {"open_clip": open_clip.__version__, "ftfy": ftfy.__version__},
        "context_length": ctx,
        "sot_token_id": int(tok.sot_token_id),
        "eot_token_id": int(tok.eot_token_id),
        "pad_token_id": 0,
        "truncation": "ids = [SOT] + bpe + [EOT]; if longer than context_length keep the first context_length and set the last to EOT",
        "cases": out,
    }
    path = FIXTURES / "tokenizer_parity.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        # One case per line keeps diffs reviewable.
        f.write("{\n")
        head = {k: v for k, v in doc.items() if k != "cases"}
        for k, v in head.items():
            f.write(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},\n")
        f.write('  "cases": [\n')
        f.write(",\n".join("    " + json.dumps(c, ensure_ascii=False) for c in out))
        f.write("\n  ]\n}\n")
    n_ftfy = sum(c["depends_on_ftfy"] for c in out)
    n_trunc = sum(c["truncated"] for c in out)
    print(f"{path.relative_to(REPO_ROOT)}: {len(out)} cases ({n_trunc} truncated, {n_ftfy} depend on ftfy), {path.stat().st_size} B")


def _bpe(tok, cleaned: str) -> list[int]:
    import regex as re

    ids = []
    for token in re.findall(tok.pat, cleaned):
        token = "".join(tok.byte_encoder[b] for b in token.encode("utf-8"))
        ids.extend(tok.encoder[t] for t in tok.bpe(token).split(" "))
    return ids


def check_fixtures(model_dir: Path) -> int:
    """Consistency of committed files: the ONNX graphs still produce the stored torch outputs."""
    import onnxruntime as ort

    meta = json.loads((model_dir / "model.json").read_text())
    ref = json.loads((model_dir / "reference.json").read_text())
    passed, failed = 0, 0

    def result(name: str, ok: bool, detail: str = ""):
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")

    for part in ("image", "text"):
        f = model_dir / meta[part]["file"]
        result(f"sha256 {f.name}", hashlib.sha256(f.read_bytes()).hexdigest() == meta[part]["sha256"])
    for img in ref["images"]:
        f = REPO_ROOT / img["file"]
        result(f"sha256 {img['file']}", hashlib.sha256(f.read_bytes()).hexdigest() == img["sha256"])
    img = ort.InferenceSession(str(model_dir / meta["image"]["file"]), providers=["CPUExecutionProvider"])
    txt = ort.InferenceSession(str(model_dir / meta["text"]["file"]), providers=["CPUExecutionProvider"])
    s = ref["image_size"]

    def close(got, want) -> tuple[bool, str]:
        want = np.asarray(want, np.float32)
        rel = float(np.abs(got - want).max() / np.abs(want).max())
        cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        # Relative to the largest component; random full-size ResNets reach 7e-4 on near-cancelling
        # inputs (the all-zeros tensor) between torch and onnxruntime, the tiny model stays < 1e-5.
        return rel < 2e-3 and cos > 0.99999, f"rel={rel:.2e} cos={cos:.8f}"

    cases = [(p["name"], p["file"], p["image_embeds"]) for p in ref["pixel_tensors"]]
    cases += [(f"{i['name']}/{m}", pp["tensor_file"], pp["image_embeds"]) for i in ref["images"] for m, pp in i["preprocess"].items()]
    tensors = []
    for name, rel_file, want in cases:
        x = np.fromfile(model_dir / rel_file, dtype="<f4").reshape(1, 3, s, s)
        tensors.append(x[0])
        result(f"image {name}", *close(img.run(None, {meta["image"]["input"]: x})[0][0], want))
    batch = img.run(None, {meta["image"]["input"]: np.stack(tensors)})[0]
    result("image batch of %d" % len(tensors), *close(batch.reshape(-1), np.concatenate([c[2] for c in cases])))
    ids = np.array([t["input_ids"] for t in ref["texts"]], dtype=np.int64)
    out = txt.run(None, {meta["text"]["input"]: ids})[0]
    for t, got in zip(ref["texts"], out):
        result(f"text {t['text'][:40]!r}", *close(got, t["text_embeds"]))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["images", "tiny", "tokenizer", "all", "check"])
    ap.add_argument("--model-dir", type=Path, default=TINY_DIR, help="for check: an export-onnx.py output dir")
    args = ap.parse_args(argv)
    if args.what == "check":
        return check_fixtures(args.model_dir)
    if args.what in ("images", "all"):
        make_images()
    if args.what in ("tiny", "all"):
        make_tiny()
    if args.what in ("tokenizer", "all"):
        make_tokenizer_corpus()
    return 0


if __name__ == "__main__":
    sys.exit(main())
