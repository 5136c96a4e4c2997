#!/usr/bin/env python3
"""Export an open_clip CLIP model to two ONNX files plus torch reference outputs.

Writes into --out:
  image.onnx      pixel_values float32 [N,3,H,W] (CLIP mean/std normalised) -> image_embeds [N,D]
  text.onnx       input_ids int64 [N,77]                                    -> text_embeds  [N,D]
  model.json      what the Rust service needs to drive the two files
  reference.json  torch outputs for fixed inputs (see docs/onnx-export.md), unless --no-references
  pixels/, preprocessed/  raw little-endian float32 tensors referenced by reference.json

Embeddings are NOT L2-normalised in the graphs: the service normalises them, and the raw
vectors keep the norm information visible to parity tests.

Examples:
  export-onnx.py --model RN50x4 --pretrained openai --out models/rn50x4      (needs internet)
  export-onnx.py --model RN50x4 --random --seed 0 --out /tmp/rn50x4-random
  export-onnx.py --model tests/fixtures/tiny-rn/open_clip_config.json --random --seed 0 --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import open_clip
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES_DIR = REPO_ROOT / "tests" / "fixtures" / "images"
# The photos the end-to-end references cover; other files in the folder (benchmark image) are skipped.
REFERENCE_IMAGES = ["cat.jpg", "astronaut.png", "coffee.jpg"]
PROMPT_TEMPLATE = "a photo of a {}."
ZERO_SHOT_LABELS = ["cat", "dog", "astronaut", "cup of coffee"]
EXTRA_TEXTS = [
    "",
    "A PHOTO OF A CAT.",
    "café crème brûlée",
    "a photo of a 🐱 and a 🐶",
    "東京の猫の写真",
    "fish &amp; chips",
    # > 77 tokens: exercises truncation with EOT kept as the last id.
    " ".join(["a very long caption about a cat sitting on a mat"] * 12),
]
# Service-facing names for the resize modes; open_clip calls center_crop 'shortest'.
RESIZE_MODES = {"squash": "squash", "center_crop": "shortest"}
OPENAI_ARCHITECTURES = {"RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336"}


class ImageEncoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.encode_image(pixel_values, normalize=False)


class TextEncoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model.encode_text(input_ids, normalize=False)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_model_name(model_arg: str) -> tuple[str, dict | None]:
    """A path to an open_clip-format config json registers it under its file stem."""
    p = Path(model_arg)
    if p.suffix == ".json" and p.is_file():
        open_clip.add_model_config(p)
        return p.stem, json.loads(p.read_text())
    return model_arg, None


def build_model(args):
    name, custom_cfg = resolve_model_name(args.model)
    if args.quick_gelu == "auto":
        # OpenAI's checkpoints were trained with QuickGELU; random exports keep the same
        # graph ops (Sigmoid/Mul instead of Erf) so runtimes are tested on what they will run.
        quick = name in OPENAI_ARCHITECTURES or bool(custom_cfg and custom_cfg.get("quick_gelu"))
    else:
        quick = args.quick_gelu == "on"
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    pretrained = None if args.random else args.pretrained
    model = open_clip.create_model(name, pretrained=pretrained, precision="fp32", device="cpu",
                                   force_quick_gelu=quick)
    model.eval()
    if args.random:
        n = calibrate_batchnorm(model, args.bn_calibration_batches, args.seed)
        if n:
            print(f"calibrated {n} BatchNorm layers on {args.bn_calibration_batches} batches of 8 random images")
    return name, model, quick


def calibrate_batchnorm(model, batches: int, seed: int):
    """Random-init ResNet CLIP maps every image to nearly the same embedding (pairwise cosine
    0.99999): fresh BatchNorms are identities in eval mode and open_clip zero-gates each residual
    branch, so activations shrink layer by layer until constant terms dominate. Trained nets have
    BatchNorms that keep activations at unit scale. Setting the running statistics from forward
    passes over smooth random images (and opening the residual gates) restores that, and the
    embeddings become input-dependent. Touches BatchNorm buffers/affine terms only."""
    bns = [m for m in model.visual.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not bns or batches <= 0:
        return 0
    size = model_geometry(model)[0]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over all calibration batches
            m.weight.fill_(1.0)
        model.visual.train()
        for _ in range(batches):
            low = torch.randn(8, 3, max(size // 8, 2), max(size // 8, 2), generator=g)
            model.visual(torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False))
    model.eval()
    return len(bns)


def model_geometry(model):
    visual = model.visual
    size = visual.image_size
    if isinstance(size, (tuple, list)):
        size = size[0]
    dim = model.text_projection.shape[1] if model.text_projection is not None else model.transformer.width
    return int(size), int(dim), int(model.context_length), int(model.vocab_size)


def export_onnx(module, example, path: Path, input_name: str, output_name: str, opset: int):
    # nn.MultiheadAttention's inference fast path (taken by ViT towers, which have no mask) traces
    # to aten::_native_multi_head_attention, which has no ONNX symbolic.
    torch.backends.mha.set_fastpath_enabled(False)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream but yields compact, well-supported graphs.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    return m


def ort_session(path: Path, threads: int | None):
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def to_list(a) -> list:
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


def tensor_stats(t: np.ndarray) -> dict:
    """Per-channel stats of a [3,H,W] tensor: a cheap first check for Rust preprocessing."""
    return {
        "mean": [float(t[c].mean()) for c in range(t.shape[0])],
        "std": [float(t[c].std()) for c in range(t.shape[0])],
        "min": [float(t[c].min()) for c in range(t.shape[0])],
        "max": [float(t[c].max()) for c in range(t.shape[0])],
    }


def write_f32(path: Path, t: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(t, dtype="<f4").tofile(path)


def pixel_tensors(size: int) -> list[tuple[str, str, np.ndarray]]:
    """Deterministic input tensors, independent of any image decoder or resizer."""
    yy, xx = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    gradient = np.stack([
        (xx / (size - 1)) * 4.0 - 2.0,
        (yy / (size - 1)) * 4.0 - 2.0,
        np.sin(xx * 0.3) * np.cos(yy * 0.2) * 2.0,
    ]).astype(np.float32)
    return [
        ("zeros", "all 0.0 (the dataset-mean colour after normalisation)", np.zeros((3, size, size), np.float32)),
        ("gradient", "c0=x/(S-1)*4-2, c1=y/(S-1)*4-2, c2=2*sin(0.3x)*cos(0.2y)", gradient),
        ("random-0", "numpy.random.default_rng(0).standard_normal((3,S,S))",
         np.random.default_rng(0).standard_normal((3, size, size)).astype(np.float32)),
        ("random-1", "numpy.random.default_rng(1).standard_normal((3,S,S))",
         np.random.default_rng(1).standard_normal((3, size, size)).astype(np.float32)),
    ]


def display_path(p: Path) -> str:
    p = p.resolve()
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def cosine(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def make_references(model, out: Path, size: int, dim: int, mean, std, logit_scale: float,
                    img_sess, txt_sess, images_dir: Path) -> dict:
    tokenizer = open_clip.get_tokenizer("RN50")  # every OpenAI CLIP shares this BPE and context length
    worst = {"image": 0.0, "text": 0.0}

    def run_image(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ref = model.encode_image(torch.from_numpy(batch)).numpy()
        got = img_sess.run(None, {"pixel_values": batch})[0]
        worst["image"] = max(worst["image"], float(np.abs(ref - got).max()))
        return ref

    def run_text(ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ref = model.encode_text(torch.from_numpy(ids)).numpy()
        got = txt_sess.run(None, {"input_ids": ids})[0]
        worst["text"] = max(worst["text"], float(np.abs(ref - got).max()))
        return ref

    pixels = []
    for name, how, t in pixel_tensors(size):
        rel = Path("pixels") / f"{name}.f32"
        write_f32(out / rel, t)
        pixels.append({"name": name, "generator": how, "file": str(rel), "shape": [3, size, size],
                       "image_embeds": to_list(run_image(t[None])[0])})
    # The batched run must agree with the single runs: catches batch-axis mistakes in the graph.
    stacked = np.stack([np.fromfile(out / p["file"], dtype="<f4").reshape(3, size, size) for p in pixels])
    batched = run_image(stacked)
    batch_vs_single = max(float(np.abs(batched[i] - np.array(p["image_embeds"])).max()) for i, p in enumerate(pixels))

    images = []
    for fname in REFERENCE_IMAGES:
        path = images_dir / fname
        if not path.is_file():
            print(f"warning: {path} missing, skipping", file=sys.stderr)
            continue
        pil = Image.open(path).convert("RGB")
        entry = {"name": path.stem, "file": display_path(path), "sha256": sha256_file(path),
                 "width": pil.width, "height": pil.height, "preprocess": {}}
        for mode, oc_mode in RESIZE_MODES.items():
            tf = open_clip.image_transform(size, is_train=False, mean=mean, std=std,
                                           resize_mode=oc_mode, interpolation="bicubic")
            t = tf(pil).numpy().astype(np.float32)
            rel = Path("preprocessed") / f"{path.stem}-{mode}.f32"
            write_f32(out / rel, t)
            entry["preprocess"][mode] = {"tensor_file": str(rel), "shape": list(t.shape),
                                         "stats": tensor_stats(t),
                                         "image_embeds": to_list(run_image(t[None])[0])}
        images.append(entry)

    prompts = [PROMPT_TEMPLATE.format(label) for label in ZERO_SHOT_LABELS]
    texts = []
    all_texts = prompts + EXTRA_TEXTS
    ids = tokenizer(all_texts).numpy().astype(np.int64)
    embeds = run_text(ids)
    for i, text in enumerate(all_texts):
        texts.append({"text": text, "input_ids": [int(x) for x in ids[i]], "text_embeds": to_list(embeds[i])})

    def l2n(v):
        v = np.asarray(v, np.float64)
        return v / np.linalg.norm(v)

    label_vecs = np.stack([l2n(t["text_embeds"]) for t in texts[:len(prompts)]])
    zero_shot = []
    for img in images:
        for mode, pp in img["preprocess"].items():
            logits = logit_scale * (label_vecs @ l2n(pp["image_embeds"]))
            e = np.exp(logits - logits.max())
            zero_shot.append({"image": img["name"], "resize_mode": mode,
                              "logits": to_list(logits), "probs": to_list(e / e.sum())})

    # How input-dependent the embeddings are: random-weight towers can collapse to one vector.
    # Identical inputs (a square photo squashes and crops alike; casing is folded) are counted once.
    img_inputs = {}
    for p in pixels:
        img_inputs.setdefault((out / p["file"]).read_bytes(), p["image_embeds"])
    for img in images:
        for pp in img["preprocess"].values():
            img_inputs.setdefault((out / pp["tensor_file"]).read_bytes(), pp["image_embeds"])
    txt_inputs = {}
    for t in texts:
        txt_inputs.setdefault(tuple(t["input_ids"]), t["text_embeds"])

    def pairwise(vecs):
        c = [cosine(vecs[i], vecs[j]) for i in range(len(vecs)) for j in range(i + 1, len(vecs))]
        return {"distinct_inputs": len(vecs), "max_cosine": max(c), "mean_cosine": float(np.mean(c)),
                "min_cosine": min(c)}

    return {
        "schema": 1,
        "embedding_dimension": dim,
        "image_size": size,
        "context_length": int(ids.shape[1]),
        "mean": list(mean),
        "std": list(std),
        "logit_scale": logit_scale,
        "tensor_format": "raw little-endian float32, C-contiguous, shape as given",
        "pixel_tensors": pixels,
        "images": images,
        "texts": texts,
        "zero_shot": {"template": PROMPT_TEMPLATE, "labels": ZERO_SHOT_LABELS, "results": zero_shot},
        "onnxruntime_max_abs_diff": {**worst, "image_batch_vs_single": batch_vs_single},
        "distinctness": {"image": pairwise(list(img_inputs.values())), "text": pairwise(list(txt_inputs.values()))},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="open_clip model name (RN50x4, ViT-B-32, ...) or an open_clip config .json")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--pretrained", help="open_clip pretrained tag (e.g. openai; downloads) or a local checkpoint path")
    src.add_argument("--random", action="store_true", help="random weights (no download)")
    ap.add_argument("--seed", type=int, default=0, help="torch seed for random weights")
    ap.add_argument("--bn-calibration-batches", type=int, default=8,
                    help="with --random: BatchNorm statistics from this many batches of 8 random images "
                         "(0 = keep open_clip's init, whose image embeddings barely depend on the input)")
    ap.add_argument("--quick-gelu", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--name", help="name recorded in model.json (default: the open_clip model name or config file stem)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--images-dir", type=Path, default=DEFAULT_IMAGES_DIR)
    ap.add_argument("--no-references", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads for verification")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    name, model, quick = build_model(args)
    name = args.name or name
    size, dim, ctx, vocab = model_geometry(model)
    pp = getattr(model.visual, "preprocess_cfg", {}) or {}
    mean = [float(x) for x in pp.get("mean", open_clip.OPENAI_DATASET_MEAN)]
    std = [float(x) for x in pp.get("std", open_clip.OPENAI_DATASET_STD)]
    logit_scale = float(model.logit_scale.exp().item())
    t_build = time.monotonic() - t0
    print(f"model {name}: D={dim} image_size={size} context={ctx} quick_gelu={quick} (built in {t_build:.1f}s)")

    # Batch 2 at export time so the tracer cannot specialise anything to batch 1.
    ex_img = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1234))
    tokenizer = open_clip.get_tokenizer("RN50")
    ex_txt = tokenizer(["a photo of a cat.", "a diagram"]).to(torch.int64)
    image_path, text_path = out / "image.onnx", out / "text.onnx"
    t1 = time.monotonic()
    with torch.no_grad():
        # The exporter restores the wrapper's train/eval mode recursively afterwards: a wrapper left
        # in its default train mode would flip BatchNorm to batch statistics for the references.
        export_onnx(ImageEncoder(model).eval(), ex_img, image_path, "pixel_values", "image_embeds", args.opset)
        export_onnx(TextEncoder(model).eval(), ex_txt, text_path, "input_ids", "text_embeds", args.opset)
    assert not any(m.training for m in model.modules()), "model left in train mode after export"
    t_export = time.monotonic() - t1
    print(f"exported in {t_export:.1f}s: {image_path} ({image_path.stat().st_size} B), {text_path} ({text_path.stat().st_size} B)")

    img_sess = ort_session(image_path, args.threads)
    txt_sess = ort_session(text_path, args.threads)
    with torch.no_grad():
        vi = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(99))
        ref_i = model.encode_image(vi).numpy()
        d_img = float(np.abs(ref_i - img_sess.run(None, {"pixel_values": vi.numpy()})[0]).max())
        vt = tokenizer(["a photo of a dog.", "", "zebra crossing at night", "🐱"]).to(torch.int64)
        ref_t = model.encode_text(vt).numpy()
        d_txt = float(np.abs(ref_t - txt_sess.run(None, {"input_ids": vt.numpy()})[0]).max())
    # Relative to the largest reference component: random-weight embeddings can have any scale.
    r_img, r_txt = d_img / float(np.abs(ref_i).max()), d_txt / float(np.abs(ref_t).max())
    print(f"onnxruntime vs torch max abs diff: image {d_img:.3g} (relative {r_img:.3g}), text {d_txt:.3g} (relative {r_txt:.3g})")

    refs = None
    t2 = time.monotonic()
    if not args.no_references:
        refs = make_references(model, out, size, dim, mean, std, logit_scale, img_sess, txt_sess, args.images_dir)
        refs["model"] = name
        (out / "reference.json").write_text(json.dumps(refs, ensure_ascii=False) + "\n")
        d = refs["onnxruntime_max_abs_diff"]
        print(f"references: onnxruntime vs torch max abs diff image {d['image']:.3g}, text {d['text']:.3g}; "
              f"pairwise cosine of distinct inputs image {refs['distinctness']['image']}, "
              f"text {refs['distinctness']['text']}")
    t_refs = time.monotonic() - t2

    meta = {
        "name": name,
        "source": "open_clip random init" if args.random else f"open_clip pretrained={args.pretrained}",
        "pretrained": None if args.random else args.pretrained,
        "seed": args.seed if args.random else None,
        "bn_calibration_batches": args.bn_calibration_batches if args.random else None,
        "quick_gelu": quick,
        "embedding_dimension": dim,
        "image_size": size,
        "context_length": ctx,
        "vocab_size": vocab,
        "sot_token_id": 49406,
        "eot_token_id": 49407,
        "mean": mean,
        "std": std,
        "interpolation": "bicubic",
        "logit_scale": logit_scale,
        "embeddings_normalized": False,
        "image": {"file": "image.onnx", "input": "pixel_values", "input_shape": ["batch", 3, size, size],
                  "input_dtype": "float32", "output": "image_embeds", "output_shape": ["batch", dim],
                  "bytes": image_path.stat().st_size, "sha256": sha256_file(image_path)},
        "text": {"file": "text.onnx", "input": "input_ids", "input_shape": ["batch", ctx],
                 "input_dtype": "int64", "output": "text_embeds", "output_shape": ["batch", dim],
                 "bytes": text_path.stat().st_size, "sha256": sha256_file(text_path)},
        "opset": args.opset,
        "verification": {"onnxruntime_max_abs_diff_image": d_img, "onnxruntime_max_abs_diff_text": d_txt,
                         "onnxruntime_max_rel_diff_image": r_img, "onnxruntime_max_rel_diff_text": r_txt},
        "versions": {"torch": torch.__version__, "open_clip": open_clip.__version__, "onnx": onnx.__version__,
                     "onnxruntime": ort.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "timings_seconds": {"build": round(t_build, 2), "export": round(t_export, 2), "references": round(t_refs, 2)},
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out / 'model.json'}; total {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
