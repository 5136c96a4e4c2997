# Evaluates every case in module-tests.nix; the result is a store file with one PASS/FAIL line
# per case (a file, because Nix 2.8 cannot print a raw string from --eval).
{ libDir }:
let
  lib = import libDir;
  tests = import ./module-tests.nix { inherit lib; };
  run =
    name: t:
    let
      r = builtins.tryEval (builtins.deepSeq t.expr t.expr);
    in
    if !r.success then
      "FAIL ${name}: evaluation threw (rerun with --show-trace)\n"
    else if r.value == t.expected then
      "PASS ${name}\n"
    else
      "FAIL ${name}\n  got:      ${builtins.toJSON r.value}\n  expected: ${builtins.toJSON t.expected}\n";
in
builtins.toFile "hailo-clip-module-tests" (lib.concatStrings (lib.mapAttrsToList run tests))
