# Used by gen-units.sh: the unit text modules/hailo-clip.nix renders for one Debian package
# flavor (tests/nix/harness.nix evaluates the module with stubbed NixOS options).
#   cpu:   backend onnx (the CPU package; mock runs under the same unit)
#   hailo: backend hailo with text on the CPU (onnx), the split hosts/pi5 deploys
{ libDir, flavor }:
let
  lib = import libDir;
  h = import ../../tests/nix/harness.nix { inherit lib; };
  isHailo = flavor == "hailo";
  backend =
    if isHailo then
      {
        type = "hailo";
        text = "onnx";
      }
    else
      { type = "onnx"; };
  evaluated = h.eval {
    hailoModule = isHailo;
    config = {
      services.hailo-clip = {
        enable = true;
        settings.backend = backend;
      };
    }
    // lib.optionalAttrs isHailo { hardware.hailo.enable = true; };
  };
  failed = h.failedAssertions evaluated;
in
if failed != [ ] then
  throw "module assertions failed:\n${lib.concatStringsSep "\n" failed}"
else
  h.unitText "# modules/hailo-clip.nix, flavor ${flavor}" evaluated
