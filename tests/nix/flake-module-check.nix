# Applied (by check.sh, via `nix eval --apply`) to the flake's nixosModules, with nixpkgs
# overridden by nixpkgs' lib alone: proves flake.nix evaluates and its wrapped module works.
{ libDir }:
nixosModules:
let
  lib = import libDir;
  h = import ./harness.nix { inherit lib; };
  evaluated = h.eval {
    # Both names at once: the wrapper's `key` must make the module system load it only once.
    modules = [
      nixosModules.default
      nixosModules.hailo-clip
    ];
    config.services.hailo-clip = {
      enable = true;
      # The flake's default package needs a real nixpkgs, which cannot be built here.
      package = h.stubs.placeholderPackage;
      settings.backend.type = "mock";
    };
  };
  got = {
    names = builtins.attrNames nixosModules;
    failed = h.failedAssertions evaluated;
    execStart = (h.serviceConfig evaluated).ExecStart;
  };
  expected = {
    names = [
      "default"
      "hailo"
      "hailo-clip"
    ];
    failed = [ ];
    execStart = "${h.stubs.placeholderPackage.outPath}/bin/hailo-clip serve";
  };
in
if got == expected then
  "ok"
else
  "got ${builtins.toJSON got}, expected ${builtins.toJSON expected}"
