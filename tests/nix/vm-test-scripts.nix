# The Python test scripts of tests/nixos/*.nix, extracted without nixpkgs (runNixOSTest is
# replaced by the identity) so check.sh can at least compile them; the VMs need a real nixpkgs.
{ libDir }:
let
  lib = import libDir;
  fake = {
    pkgs = {
      testers.runNixOSTest = test: test;
      curl = null;
    };
    self.nixosModules.default = { };
    package = null;
  };
  # What the scripts read from the evaluated nodes.
  nodes.machine.services.hailo-clip.settings.backend.type = "mock";
  tests = lib.filterAttrs (name: _: name != "common") (
    lib.mapAttrs' (file: _: lib.nameValuePair (lib.removeSuffix ".nix" file) (import (../nixos + "/${file}") fake)) (
      lib.filterAttrs (file: type: type == "regular" && lib.hasSuffix ".nix" file) (builtins.readDir ../nixos)
    )
  );
  script = t: if builtins.isFunction t.testScript then t.testScript { inherit nodes; } else t.testScript;
in
lib.mapAttrs (name: t: builtins.toFile "${name}.py" (script t)) tests
