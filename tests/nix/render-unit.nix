# Used by render-unit.sh: the unit file and JSON config that modules/hailo-clip.nix produces for
# the given backend, each as a store file.
{
  libDir,
  backend,
  host ? null,
}:
let
  lib = import libDir;
  h = import ./harness.nix { inherit lib; };
  isHailo = backend == "hailo";
  evaluated = h.eval {
    hailoModule = isHailo;
    config = {
      services.hailo-clip = {
        enable = true;
        settings = {
          backend.type = backend;
        }
        // lib.optionalAttrs (host != null) { server.host = host; };
      };
    }
    // lib.optionalAttrs isHailo { hardware.hailo.enable = true; };
  };
  failed = h.failedAssertions evaluated;
  header = "# Rendered from modules/hailo-clip.nix (backend ${backend}) by tests/nix/render-unit.sh; do not edit.";
in
if failed != [ ] then
  throw "module assertions failed:\n${lib.concatStringsSep "\n" failed}"
else
  {
    unit = builtins.toFile "hailo-clip.service" (h.unitText header evaluated);
    json = evaluated.config.environment.etc."xdg/hailo-clip/hailo-clip.json".source;
  }
