"""The official `openai` client against POST /v1/embeddings of the live service: string and list
input, float and base64 encodings, each giving the same vectors as /v1/embed/text."""

import base64
import json
import os
import struct
import sys
import urllib.error
import urllib.request

import openai

BASE = os.environ["HAILO_CLIP_URL"]
MODEL = os.environ.get("HAILO_CLIP_MODEL", "clip-resnet-50x4")


def post(path, body):
    req = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.load(e), e.headers


def vector(e):
    """An embedding as floats: the client hands back an explicitly asked-for base64 as is."""
    if isinstance(e, str):
        raw = base64.b64decode(e)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return e


def close(a, b):
    return len(a) == len(b) and all(abs(x - y) <= 1e-6 for x, y in zip(a, b))


def main():
    client = openai.OpenAI(base_url=BASE + "/v1", api_key="unused")
    texts = ["a photo of a cat.", "a photo of a dog.", "a long caption " * 40]
    status, ref, _ = post("/v1/embed/text", {"texts": texts})
    assert status == 200, ref
    want = ref["result"]
    assert ref["truncated"] == [False, False, True], ref["truncated"]

    # Without encoding_format the client asks for base64 itself and decodes it.
    for fmt in ("float", "base64", None):
        kw = {} if fmt is None else {"encoding_format": fmt}
        one = client.embeddings.create(model=MODEL, input=texts[0], **kw)
        assert isinstance(one.data[0].embedding, str) == (fmt == "base64")
        assert len(one.data) == 1 and one.data[0].index == 0
        got = vector(one.data[0].embedding)
        assert close(got, want[0]), f"{fmt}: single text differs from /v1/embed/text"
        assert one.model == MODEL
        assert one.usage.prompt_tokens == 8 and one.usage.total_tokens == 8, one.usage

        many = client.embeddings.create(model=MODEL, input=texts, **kw)
        assert [d.index for d in many.data] == [0, 1, 2]
        for d in many.data:
            assert close(vector(d.embedding), want[d.index]), f"{fmt}: text {d.index} differs"
        # The long caption is cut to the 77-token context.
        assert many.usage.prompt_tokens == 8 + 8 + 77, many.usage

    raw = client.embeddings.with_raw_response.create(model=MODEL, input=texts)
    assert raw.headers.get("x-truncated-inputs") == "2", dict(raw.headers)

    dim = len(want[0])
    ok = client.embeddings.create(model=MODEL, input="cat", dimensions=dim)
    assert len(ok.data[0].embedding) == dim
    try:
        client.embeddings.create(model=MODEL, input="cat", dimensions=dim // 2)
        raise AssertionError("smaller dimensions accepted")
    except openai.UnprocessableEntityError as e:
        assert e.response.json()["error_type"] == "invalid_request", e.response.text
    try:
        client.embeddings.create(model="text-embedding-3-small", input="cat")
        raise AssertionError("unknown model accepted")
    except openai.NotFoundError as e:
        assert e.response.json()["error_type"] == "model_not_found", e.response.text
        assert MODEL in e.response.json()["error"]
    for bad in ("", "   "):
        try:
            client.embeddings.create(model=MODEL, input=bad)
            raise AssertionError(f"{bad!r} accepted")
        except openai.UnprocessableEntityError as e:
            assert e.response.json()["error_type"] == "invalid_request", e.response.text
    status, body, _ = post("/v1/embeddings", {"model": MODEL, "input": [[320, 1125]]})
    assert status == 422 and "token arrays" in body["error"], body
    status, body, _ = post("/v1/embeddings", {"model": MODEL, "input": "x", "encoding_format": "int8"})
    assert status == 422 and body["error_type"] == "invalid_request", body
    # Images by the same route, Infinity's way: "modality": "image" through extra_body.
    with open("tests/fixtures/images/cat.jpg", "rb") as f:
        uri = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode()
    status, ref, _ = post("/v1/embed/image", {"image": uri})
    assert status == 200, ref
    img = client.embeddings.create(model=MODEL, input=[uri], extra_body={"modality": "image"})
    assert close(img.data[0].embedding, ref["result"]), "image differs from /v1/embed/image"
    print("openai client: 6 text calls agree with /v1/embed/text, 1 image call with /v1/embed/image; errors as documented")


if __name__ == "__main__":
    sys.exit(main())
