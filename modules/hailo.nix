# hardware.hailo: the Hailo-10H NPU platform on NixOS. The hailo1x_pci kernel module,
# the device firmware it uploads at probe, the HailoRT runtime + hailortcli, and a
# `hailo` group that owns the device node (MODE 0660 instead of upstream's 0666).
#
# The firmware is unfree: the host must allow it, e.g.
#   nixpkgs.config.allowUnfreePredicate = pkg: lib.getName pkg == "hailo10h-firmware";
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    types
    ;

  cfg = config.hardware.hailo;

  # The driver's own version carries the kernel version ("5.1.1-6.12.47"), so each
  # package reports its bare Hailo version through passthru.hailoVersion.
  hailoVersionOf =
    p: p.hailoVersion or (builtins.head (lib.splitString "-" (lib.getVersion p)));
  versions = {
    hailort = hailoVersionOf cfg.package;
    driver = hailoVersionOf cfg.driver;
    firmware = hailoVersionOf cfg.firmware;
  };

  # 5.3.0 renamed the device class hailo_chardev -> hailo1x and the node hailo0 -> h1x-0.
  renamedNode = lib.versionAtLeast versions.driver "5.3.0";
  deviceSubsystem = if renamedNode then "hailo1x" else "hailo_chardev";

  renderOption =
    name: value:
    "${name}=${
      if builtins.isBool value then
        (if value then "Y" else "N")
      else
        toString value
    }";
in
{
  options.hardware.hailo = {
    enable = mkEnableOption "the Hailo-10H NPU (hailo1x_pci driver, firmware, HailoRT)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../nix/hailort.nix { };
      defaultText = literalExpression "pkgs.callPackage ./nix/hailort.nix { }";
      description = "HailoRT (libhailort and hailortcli); hailortcli is added to the system path.";
    };

    driver = mkOption {
      type = types.package;
      default = config.boot.kernelPackages.callPackage ../nix/hailo-driver.nix { };
      defaultText = literalExpression "config.boot.kernelPackages.callPackage ./nix/hailo-driver.nix { }";
      description = "The hailo1x_pci kernel module, built for the configured kernel.";
    };

    firmware = mkOption {
      type = types.package;
      default = pkgs.callPackage ../nix/hailo-firmware.nix { };
      defaultText = literalExpression "pkgs.callPackage ./nix/hailo-firmware.nix { }";
      description = "Hailo-10H firmware, installed under /lib/firmware/hailo/hailo10h.";
    };

    group = mkOption {
      type = types.str;
      default = "hailo";
      description = ''
        Group given read/write access to the device node. Services that use the NPU
        join it through SupplementaryGroups.
      '';
    };

    modprobeOptions = mkOption {
      type = types.attrsOf (
        types.oneOf [
          types.bool
          types.int
          types.str
        ]
      );
      default = { };
      example = {
        force_desc_page_size = 4096;
        no_power_mode = true;
      };
      description = ''
        hailo1x_pci module parameters (see linux/pcie/hailo1x_pci.conf upstream). Leave
        empty unless the platform needs one: for example force_desc_page_size for hosts
        whose PCIe controller cannot do large transactions.
      '';
    };

    deviceNode = mkOption {
      type = types.str;
      readOnly = true;
      default = if renamedNode then "/dev/h1x-0" else "/dev/hailo0";
      defaultText = literalExpression ''"/dev/hailo0" (driver < 5.3) or "/dev/h1x-0"'';
      description = ''
        The first device's node for the selected driver version, for DeviceAllow= in
        services that use the NPU.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = versions.hailort == versions.driver && versions.driver == versions.firmware;
        message = ''
          hardware.hailo: HailoRT ${versions.hailort}, driver ${versions.driver} and firmware
          ${versions.firmware} must be the same version. libhailort refuses any other driver
          version (HAILO_INVALID_DRIVER_VERSION) and the driver refuses a chip running other
          firmware ("Mismatch Driver version"). Pin all three in nix/hailo-versions.nix.
        '';
      }
    ];

    boot.extraModulePackages = [ cfg.driver ];
    # The PCI ID table would autoload it too; listing it makes a build or load failure
    # visible in systemd-modules-load instead of a silently missing /dev node.
    boot.kernelModules = [ "hailo1x_pci" ];
    boot.extraModprobeConfig = mkIf (cfg.modprobeOptions != { }) ''
      options hailo1x_pci ${lib.concatStringsSep " " (lib.mapAttrsToList renderOption cfg.modprobeOptions)}
    '';

    hardware.firmware = [ cfg.firmware ];

    services.udev.extraRules = ''
      # Hailo NPU: group access instead of upstream's world-writable 0666.
      SUBSYSTEM=="${deviceSubsystem}", GROUP="${cfg.group}", MODE="0660"
    '';

    users.groups.${cfg.group} = { };

    environment.systemPackages = [ cfg.package ];
  };
}
