# Minimal stand-ins for the NixOS options modules/hailo-clip.nix sets, and a fake `pkgs`, so the
# module can be evaluated with nothing but nixpkgs' lib. No freeform types here on purpose: if the
# module starts setting an option these stubs lack, evaluation fails instead of passing silently.
{ lib }:
let
  inherit (lib) mkOption types;

  # As nixos/lib/systemd-unit-options.nix: lists concatenate, scalars must agree.
  atom = types.oneOf [
    types.bool
    types.int
    types.str
    types.path
  ];
  unitOption = types.oneOf [
    atom
    (types.listOf atom)
  ];
  unitList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  service = types.submodule {
    options = {
      description = mkOption {
        type = types.str;
        default = "";
      };
      wantedBy = unitList;
      after = unitList;
      before = unitList;
      wants = unitList;
      requires = unitList;
      environment = mkOption {
        type = types.attrsOf (
          types.nullOr (
            types.oneOf [
              types.str
              types.path
              types.package
            ]
          )
        );
        default = { };
      };
      restartTriggers = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      unitConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
    };
  };

  # Same shape as nixpkgs' pkgs.formats.json type.
  jsonValue =
    let
      valueType =
        types.nullOr (
          types.oneOf [
            types.bool
            types.int
            types.float
            types.str
            types.path
            (types.attrsOf valueType)
            (types.listOf valueType)
          ]
        )
        // {
          description = "JSON value";
        };
    in
    valueType;
in
{
  # Stands in for the store path of the real build; render-unit.sh documents it for consumers.
  placeholderPackage = {
    type = "derivation";
    name = "hailo-clip";
    outPath = "/nix/store/00000000000000000000000000000000-hailo-clip";
    meta.mainProgram = "hailo-clip";
  };

  # Real files in the store (builtins.toFile), compact JSON where nixpkgs would pretty-print with jq.
  pkgs = {
    formats.json =
      { }:
      {
        type = jsonValue;
        generate = name: value: builtins.toFile name (builtins.toJSON value);
      };
  };

  nixosOptions = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      users.users = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options = {
              isSystemUser = mkOption {
                type = types.bool;
                default = false;
              };
              group = mkOption {
                type = types.str;
                default = "";
              };
              home = mkOption {
                type = types.str;
                default = "/var/empty";
              };
              description = mkOption {
                type = types.str;
                default = "";
              };
            };
          }
        );
      };
      users.groups = mkOption {
        default = { };
        type = types.attrsOf (types.submodule { });
      };
      networking.firewall.allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      environment.etc = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options.source = mkOption { type = types.either types.path types.str; };
          }
        );
      };
      systemd.services = mkOption {
        type = types.attrsOf service;
        default = { };
      };
    };
  };

  # Stands in for modules/hailo.nix, of which only hardware.hailo.enable is read.
  # The options of modules/hailo.nix that hailo-clip.nix reads, with the same defaults.
  hailoHardware = {
    options.hardware.hailo = {
      enable = mkOption {
        type = types.bool;
        default = false;
      };
      deviceNode = mkOption {
        type = types.str;
        default = "/dev/hailo0";
      };
      group = mkOption {
        type = types.str;
        default = "hailo";
      };
    };
  };
}
