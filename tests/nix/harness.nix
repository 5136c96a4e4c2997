# Evaluates modules/hailo-clip.nix with lib.evalModules against the stubs in ./stubs.nix.
# `lib` is nixpkgs' lib (check.sh finds it via $NIXPKGS_LIB or a fetched nixpkgs.lib snapshot).
{ lib }:
let
  stubs = import ./stubs.nix { inherit lib; };
  renderUnit = import ./unit-text.nix { inherit lib; };
in
rec {
  inherit stubs;

  # config: the test's own module; hailoModule: also declare hardware.hailo.enable, as
  # importing the flake's nixosModules.hailo would.
  # modules: what is under test (the plain module file, or the flake's wrapped nixosModules).
  eval =
    {
      config,
      hailoModule ? false,
      modules ? [ ../../modules/hailo-clip.nix ],
    }:
    lib.evalModules {
      specialArgs.pkgs = stubs.pkgs // {
        hailo-clip = stubs.placeholderPackage;
      };
      modules = [
        stubs.nixosOptions
        config
      ]
      ++ modules
      ++ lib.optional hailoModule stubs.hailoHardware;
    };

  failedAssertions = evaluated: map (a: a.message) (lib.filter (a: !a.assertion) evaluated.config.assertions);

  service = evaluated: evaluated.config.systemd.services.hailo-clip;
  serviceConfig = evaluated: (service evaluated).serviceConfig;

  # The JSON as rendered into the store by the module's settings generator.
  configJson = evaluated: builtins.readFile evaluated.config.environment.etc."xdg/hailo-clip/hailo-clip.json".source;
  configValue = evaluated: builtins.fromJSON (configJson evaluated);

  unitText =
    header: evaluated:
    renderUnit {
      inherit header;
      service = service evaluated;
    };

  # True when evaluating the value throws (module type errors are thrown, not asserted).
  throws = value: !(builtins.tryEval (builtins.deepSeq value value)).success;
}
