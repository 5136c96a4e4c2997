#!/usr/bin/env python3
"""Write a tiny random-weight CLIP in Immich's ONNX layout, with torch references.

The layout is the one Immich publishes its CLIP exports in (immich-app/immich machine-learning/
export): `config.json` (open_clip model config), `visual/model.onnx` (float32 [1, 3, S, S] named
`image` -> L2-normalised `embedding`), `visual/preprocess_cfg.json` (open_clip's preprocess config),
`textual/model.onnx` (int32 [1, context] named `text` -> L2-normalised `embedding`),
`textual/tokenizer.json` (a Hugging Face tokenizers file) and `textual/tokenizer_config.json`.

The tokenizer.json is built from open_clip's own BPE vocabulary the way Hugging Face converts
CLIP's, and checked to give open_clip's ids on every reference text.

Usage: export-immich.py --out tests/fixtures/immich-tiny
       export-immich.py --siglip --out tests/fixtures/immich-tiny-siglip
(needs tools/requirements-export.txt). Output is deterministic for fixed package versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import open_clip
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGES = REPO_ROOT / "tests" / "fixtures" / "images"

# A ViT CLIP small enough to commit: the token table (49408 x 16) is most of it.
TINY_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2},
}
SEED = 0
TEXTS = [
    "a photo of a cat.",
    "a photo of a dog.",
    "a photo of an astronaut.",
    "a photo of a cup of coffee.",
    "Straße, café & naïve — ünïcödé",
    "",
]
LABELS = ["cat", "dog", "astronaut", "cup of coffee"]
TEMPLATE = "a photo of a {}."


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clip_tokenizer_json(path: Path):
    """CLIP's BPE as a tokenizers file, shaped like transformers' CLIPConverter output."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    st = open_clip.tokenizer.SimpleTokenizer()
    merges = sorted(st.bpe_ranks, key=st.bpe_ranks.get)
    # open_clip names the special tokens <start_of_text>/<end_of_text>; Hugging Face's CLIP files
    # (and so Immich's) <|startoftext|>/<|endoftext|>. Same ids.
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(k, k): v for k, v in st.encoder.items()}
    bpe = models.BPE(vocab=vocab, merges=merges, end_of_word_suffix="</w>",
                     unk_token="<|endoftext|>", continuing_subword_prefix="")
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence([
        normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(
        ("<|endoftext|>", vocab["<|endoftext|>"]), ("<|startoftext|>", vocab["<|startoftext|>"]),
        trim_offsets=False, add_prefix_space=False)
    tok.add_special_tokens(["<|startoftext|>", "<|endoftext|>"])
    path.write_text(tok.to_str(pretty=False))
    return tok


class Visual(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, image):
        return self.m.encode_image(image, normalize=True)


class HailoTextCore(torch.nn.Module):
    """What Hailo's text encoder HEF computes: token embeddings in (the host looks them up),
    positional embedding, transformer, final LayerNorm; every position out. A stand-in for the
    HEF in tests of the host half (lookup, EOT padding, EOT row, projection)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, token_embeddings):
        m = self.m
        x = token_embeddings + m.positional_embedding
        x = m.transformer(x, attn_mask=m.attn_mask)
        return m.ln_final(x)


class Textual(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, text):
        return self.m.encode_text(text, normalize=True)


def export(module, example, path: Path, name: str):
    torch.backends.mha.set_fastpath_enabled(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Batch 1, as Immich exports (no dynamic axes).
        torch.onnx.export(module, (example,), str(path), input_names=[name], output_names=["embedding"],
                          opset_version=17, do_constant_folding=True, dynamo=False)


def to_tensor(img: Image.Image, mean, std) -> torch.Tensor:
    a = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return ((a - m) / s)[None]


# SigLIP's architecture at toy size: non-causal text transformer pooled at the last position,
# projection with bias, sentencepiece-style (Unigram) tokenizer, sigmoid scoring with a learnt
# scale and bias. Context 16 instead of SigLIP's 64.
SIGLIP_CONTEXT = 16
SIGLIP_CORPUS = [
    "a photo of a cat", "a photo of a dog", "a photo of an astronaut", "a photo of a cup of coffee",
    "a picture of the sky at night", "two dogs playing in the snow", "a cat sitting on a chair",
    "a cup of tea on a table", "an astronaut on the moon", "the big red car", "a small house",
    "people walking in a city street", "a bowl of fruit", "a bird in a tree", "coffee beans",
]


def siglip_tokenizer(path: Path):
    """A Unigram tokenizer shaped like SigLIP's (Metaspace pieces, </s> appended and used for padding)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>")
    tok.train_from_iterator(SIGLIP_CORPUS * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    path.write_text(tok.to_str(pretty=False))
    return tok


def siglip_ids(tok, text: str) -> list[int]:
    """As Immich (and open_clip's HFTokenizer with clean='canonicalize') tokenizes for SigLIP."""
    clean = open_clip.tokenizer.canonicalize_text(open_clip.tokenizer.basic_clean(text))
    ids = tok.encode(clean).ids[:SIGLIP_CONTEXT]
    if len(ids) == SIGLIP_CONTEXT:
        ids[-1] = tok.token_to_id("</s>")
    return ids + [tok.token_to_id("</s>")] * (SIGLIP_CONTEXT - len(ids))


def make_siglip(out: Path) -> int:
    (out / "visual").mkdir(parents=True, exist_ok=True)
    (out / "textual").mkdir(parents=True, exist_ok=True)
    tok = siglip_tokenizer(out / "textual" / "tokenizer.json")
    (out / "textual" / "tokenizer_config.json").write_text(json.dumps({"pad_token": "</s>"}, indent=2) + "\n")
    cfg = {
        "embed_dim": 32, "init_logit_bias": -10, "custom_text": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": SIGLIP_CONTEXT, "vocab_size": tok.get_vocab_size(), "width": 32,
                     "heads": 2, "layers": 2, "no_causal_mask": True, "proj_bias": True, "pool_type": "last",
                     "norm_kwargs": {"eps": 1e-6}, "tokenizer_kwargs": {"clean": "canonicalize"}},
    }
    cfg_file = out / "tiny-siglip.json"
    cfg_file.write_text(json.dumps(cfg))
    open_clip.add_model_config(cfg_file)
    cfg_file.unlink()
    torch.manual_seed(SEED)
    model = open_clip.create_model("tiny-siglip", pretrained=None, precision="fp32", device="cpu")
    model.eval()
    with torch.no_grad():
        # A trained model's scale and bias put scores across (0, 1); the init values (10, -10)
        # would leave every random-weight score near 0.
        model.logit_scale.fill_(float(np.log(8.0)))
        model.logit_bias.fill_(-1.0)
    for p in model.parameters():
        p.requires_grad_(False)
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    pre = open_clip.get_model_preprocess_cfg(model)
    (out / "visual" / "preprocess_cfg.json").write_text(json.dumps(pre, indent=2) + "\n")
    size = cfg["vision_cfg"]["image_size"]
    export(Visual(model), torch.zeros(1, 3, size, size), out / "visual" / "model.onnx", "image")
    export(Textual(model), torch.ones(1, SIGLIP_CONTEXT, dtype=torch.int32), out / "textual" / "model.onnx", "text")

    scale = float(model.logit_scale.exp())
    bias = float(model.logit_bias)
    ref = {"embedding_dimension": 32, "image_size": size, "context_length": SIGLIP_CONTEXT,
           "logit_scale": scale, "logit_bias": bias, "texts": [], "images": {}}
    with torch.no_grad():
        for text in TEXTS[:-1] + [TEMPLATE.format(l) for l in LABELS]:
            ids = siglip_ids(tok, text)
            e = model.encode_text(torch.tensor([ids], dtype=torch.int32), normalize=True)[0]
            ref["texts"].append({"text": text, "ids": ids, "embedding": e.tolist()})
        exact = Image.open(IMAGES / "astronaut.png").convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        exact.save(out / "exact.png")
        img = model.encode_image(to_tensor(exact, pre["mean"], pre["std"]), normalize=True)[0]
        ref["images"]["exact.png"] = img.tolist()
        labels = torch.stack([torch.tensor(t["embedding"]) for t in ref["texts"][-len(LABELS):]])
        scores = torch.sigmoid(scale * (labels @ img) + bias)
        ref["classify"] = {"image": "exact.png", "template": TEMPLATE,
                           "labels": {l: float(x) for l, x in zip(LABELS, scores)}}
    ts = ort.InferenceSession(str(out / "textual" / "model.onnx"), providers=["CPUExecutionProvider"])
    worst = max(float(np.abs(ts.run(None, {"text": np.array([t["ids"]], dtype=np.int32)})[0][0]
                             - np.array(t["embedding"])).max()) for t in ref["texts"])
    assert worst < 1e-5, worst
    ref["files"] = {p.relative_to(out).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256(p)}
                    for p in sorted(out.rglob("*")) if p.is_file() and p.name != "reference.json"}
    (out / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    print(f"wrote {out}: scores {ref['classify']['labels']}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--siglip", action="store_true", help="the tiny SigLIP-architecture model instead of the CLIP one")
    args = ap.parse_args(argv)
    out: Path = args.out
    if args.siglip:
        return make_siglip(out)
    (out / "visual").mkdir(parents=True, exist_ok=True)
    (out / "textual").mkdir(parents=True, exist_ok=True)

    cfg_file = out / "tiny-vit.json"
    cfg_file.write_text(json.dumps(TINY_VIT))
    open_clip.add_model_config(cfg_file)
    cfg_file.unlink()
    torch.manual_seed(SEED)
    model = open_clip.create_model("tiny-vit", pretrained=None, precision="fp32", device="cpu")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    (out / "config.json").write_text(json.dumps(TINY_VIT, indent=2) + "\n")
    pre = open_clip.get_model_preprocess_cfg(model)
    (out / "visual" / "preprocess_cfg.json").write_text(json.dumps(pre, indent=2) + "\n")
    size = TINY_VIT["vision_cfg"]["image_size"]
    export(Visual(model), torch.zeros(1, 3, size, size), out / "visual" / "model.onnx", "image")
    export(Textual(model), torch.ones(1, 77, dtype=torch.int32), out / "textual" / "model.onnx", "text")
    tok = clip_tokenizer_json(out / "textual" / "tokenizer.json")
    (out / "textual" / "tokenizer_config.json").write_text(json.dumps({
        "pad_token": "<|endoftext|>", "model_max_length": 77}, indent=2) + "\n")

    ref = {"embedding_dimension": TINY_VIT["embed_dim"], "image_size": size, "texts": [], "images": {}}
    with torch.no_grad():
        for text in TEXTS + [TEMPLATE.format(l) for l in LABELS]:
            ids = open_clip.tokenize([text])[0]
            hf = tok.encode(text).ids
            n = int((ids != 0).sum())
            assert hf == ids[:n].tolist(), (text, hf, ids[:n].tolist())
            emb = model.encode_text(ids[None].to(torch.int32), normalize=True)[0]
            ref["texts"].append({"text": text, "ids": ids[:n].tolist(), "embedding": emb.tolist()})

        # At the model's own size no resize happens on either side: same pixels in, so the
        # embeddings must agree to float rounding.
        exact = Image.open(IMAGES / "astronaut.png").convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        exact.save(out / "exact.png")
        e = model.encode_image(to_tensor(exact, pre["mean"], pre["std"]), normalize=True)[0]
        ref["images"]["exact.png"] = e.tolist()
        # A larger photo through open_clip's own preprocessing (resize shortest side + centre crop).
        from open_clip.transform import PreprocessCfg, image_transform_v2
        tf = image_transform_v2(PreprocessCfg(**pre), is_train=False)
        photo = Image.open(IMAGES / "astronaut.png").convert("RGB")
        ref["images"]["astronaut.png"] = model.encode_image(tf(photo)[None], normalize=True)[0].tolist()

        img = torch.tensor(ref["images"]["exact.png"])
        labels = torch.stack([torch.tensor(t["embedding"]) for t in ref["texts"][len(TEXTS):]])
        scores = torch.softmax(100.0 * labels @ img, dim=0)
        ref["classify"] = {"image": "exact.png", "template": TEMPLATE,
                           "labels": {l: float(s) for l, s in zip(LABELS, scores)}}

    # The host half of the Hailo text path, in torch: look up, pad after EOT with the EOT
    # embedding (model zoo), core, EOT row, projection; must equal encode_text.
    core = HailoTextCore(model)
    width = model.token_embedding.weight.shape[1]
    export(core, torch.zeros(1, 77, width), out / "hailo_text_core.onnx", "token_embeddings")
    with torch.no_grad():
        for t in ref["texts"]:
            ids = torch.zeros(77, dtype=torch.long)
            ids[: len(t["ids"])] = torch.tensor(t["ids"])
            eot = int(ids.argmax())
            padded = ids.clone()
            padded[eot + 1:] = ids[eot]
            rows = model.token_embedding(padded)[None]
            y = core(rows)[0, eot] @ model.text_projection
            y = y / y.norm()
            d = float((y - torch.tensor(t["embedding"])).abs().max())
            assert d < 1e-5, (t["text"], d)

    # The exported graphs against torch, before anything is committed.
    vs = ort.InferenceSession(str(out / "visual" / "model.onnx"), providers=["CPUExecutionProvider"])
    ts = ort.InferenceSession(str(out / "textual" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = to_tensor(exact, pre["mean"], pre["std"]).numpy()
    worst = float(np.abs(vs.run(None, {"image": x})[0][0] - np.array(ref["images"]["exact.png"])).max())
    for t in ref["texts"]:
        ids = np.zeros((1, 77), dtype=np.int32)
        ids[0, : len(t["ids"])] = t["ids"]
        worst = max(worst, float(np.abs(ts.run(None, {"text": ids})[0][0] - np.array(t["embedding"])).max()))
    assert worst < 1e-5, worst
    ref["onnx_vs_torch_max_abs"] = worst
    ref["files"] = {p.relative_to(out).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256(p)}
                    for p in sorted(out.rglob("*")) if p.is_file() and p.name != "reference.json"}
    (out / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    print(f"wrote {out}: onnx vs torch max abs {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
