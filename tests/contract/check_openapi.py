"""/openapi.json of the live service: a valid OpenAPI 3.1 document that describes every route
the router registers (and no other), each of them reaching a handler, and every error_type."""

import json
import os
import re
import sys
import urllib.error
import urllib.request

from openapi_spec_validator import validate

BASE = os.environ["HAILO_CLIP_URL"]

# Served but not API: the reference page's script.
UNDOCUMENTED = {"/docs/rapidoc-min.js"}


def router_paths():
    """Every path the router in crates/http/src/lib.rs registers."""
    src = open("crates/http/src/lib.rs").read()
    return set(re.findall(r'\.route\(\s*"([^"]+)"', src)) - UNDOCUMENTED


def error_types_answered():
    """Every error_type crates/http/src/error.rs answers with (its `T::Name` arms)."""
    src = open("crates/http/src/error.rs").read()
    names = set(re.findall(r"\bT::([A-Z][A-Za-z0-9]+)", src))
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower() for n in names}


def main():
    with urllib.request.urlopen(BASE + "/openapi.json") as r:
        assert r.headers["content-type"].startswith("application/json")
        spec = json.load(r)
    assert spec["openapi"].startswith("3.1"), spec["openapi"]
    validate(spec)
    have = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    paths = {p for _, p in have}
    served = router_paths()
    assert paths == served, f"not described: {served - paths}; described, not routed: {paths - served}"
    # Each described operation reaches a handler: whatever it answers, it is not the fallback's.
    for m, p in sorted(have):
        req = urllib.request.Request(BASE + p.replace("{name}", "x"), method=m.upper(), data=b"" if m in ("post", "put") else None)
        try:
            with urllib.request.urlopen(req) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
        assert b'"error_type":"not_found"' not in body, f"{m} {p}: no such route"
    types = set(spec["components"]["schemas"]["ErrorType"]["enum"])
    answered = error_types_answered()
    assert types == answered, f"described but never answered, or answered but not described: {types ^ answered}"
    for (m, p) in have:
        op = spec["paths"][p][m]
        assert op.get("summary") or op.get("description"), f"{m} {p} has no description"
    print(f"openapi: valid {spec['openapi']}, {len(have)} operations, {len(types)} error types")


if __name__ == "__main__":
    sys.exit(main())
