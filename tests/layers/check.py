#!/usr/bin/env python3
"""Checks that the workspace's crates import only downward:

    clip -> config -> backend -> engine -> http -> hailo-clip (the command line)

Each crate may depend on the layers below it and on nothing above or beside it; `hailort-sys`
is the backend's alone. Cargo enforces the rest: a crate cannot name one it does not depend on.
Reads `cargo metadata`; prints one line per crate and exits 1 on a violation.
"""
import json
import subprocess
import sys

ORDER = [
    "hailo-clip-clip",
    "hailo-clip-config",
    "hailo-clip-backend",
    "hailo-clip-engine",
    "hailo-clip-http",
    "hailo-clip",
]
# Leaves that only the named layer (and the command line's tests) may use.
PRIVATE = {"hailort-sys": {"hailo-clip-backend"}}

meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
members = {p["name"]: p for p in meta["packages"]}
missing = [n for n in ORDER if n not in members]
if missing:
    sys.exit(f"layers: crates missing from the workspace: {missing}")
failed = False
for i, name in enumerate(ORDER):
    below = set(ORDER[:i])
    bad = False
    for dep in members[name]["dependencies"]:
        d, kind = dep["name"], dep["kind"]
        if d in ORDER and d not in below:
            print(f"FAIL {name} depends on {d}, which is not below it")
            bad = True
        if d in PRIVATE and name not in PRIVATE[d] and kind != "dev":
            print(f"FAIL {name} depends on {d}, which only {sorted(PRIVATE[d])} may use")
            bad = True
    deps = sorted({d["name"] for d in members[name]["dependencies"] if d["name"] in ORDER})
    failed |= bad
    print(f"{'FAIL' if bad else 'ok  '} {name}: {', '.join(deps) or '(leaf)'}")
sys.exit(1 if failed else 0)
