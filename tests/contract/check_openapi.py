"""/openapi.json of the live service: a valid OpenAPI 3.1 document that describes every route
the router serves and every error_type."""

import json
import os
import sys
import urllib.request

from openapi_spec_validator import validate

BASE = os.environ["HAILO_CLIP_URL"]

# Every route of crates/http/src/lib.rs (the contract run fails when one is missing here or there).
ROUTES = {
    ("get", "/health"), ("get", "/info"), ("get", "/metrics"), ("get", "/openapi.json"),
    ("post", "/v1/classify"), ("post", "/v1/embed/image"), ("post", "/v1/embed/text"),
    ("post", "/v1/embeddings"), ("get", "/v1/models"), ("get", "/v1/label-sets"),
    ("get", "/v1/label-sets/{name}"), ("put", "/v1/label-sets/{name}"),
    ("delete", "/v1/label-sets/{name}"), ("get", "/ping"), ("post", "/predict"),
    ("get", "/"), ("get", "/docs"),
}
ERROR_TYPES = {
    "invalid_base64", "invalid_image", "unsupported_image", "image_too_large", "invalid_request",
    "model_not_found", "label_set_not_found", "label_set_stale", "overloaded", "not_ready",
    "backend_unavailable", "shutting_down", "internal", "body_too_large",
    "unsupported_media_type", "malformed_json", "invalid_multipart", "unsupported_task",
    "unauthorized", "not_found", "rate_limited", "body_timeout", "timeout", "host_not_allowed",
}


def main():
    with urllib.request.urlopen(BASE + "/openapi.json") as r:
        assert r.headers["content-type"].startswith("application/json")
        spec = json.load(r)
    assert spec["openapi"].startswith("3.1"), spec["openapi"]
    validate(spec)
    have = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert have == ROUTES, f"missing {ROUTES - have}, undocumented here {have - ROUTES}"
    types = set(spec["components"]["schemas"]["ErrorType"]["enum"])
    assert types == ERROR_TYPES, f"error types differ: {types ^ ERROR_TYPES}"
    for (m, p) in have:
        op = spec["paths"][p][m]
        assert op.get("summary") or op.get("description"), f"{m} {p} has no description"
    print(f"openapi: valid {spec['openapi']}, {len(have)} operations, {len(types)} error types")


if __name__ == "__main__":
    sys.exit(main())
