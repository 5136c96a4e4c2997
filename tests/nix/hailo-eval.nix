# modules/hailo.nix (and hosts/pi5's models.nix + configuration.nix) under lib.evalModules,
# with stubbed NixOS options and a fake `pkgs` whose callPackage evaluates the real
# nix/hailort.nix, nix/hailo-driver.nix and nix/hailo-firmware.nix (mkDerivation and the
# fetchers only record their arguments). Returns a list of { name; ok; detail; }.
# With `rpiSrc` (a nvmd/nixos-raspberrypi `main` tree) it also checks hosts/pi5 against that
# flake's real API: its lib.nixosSystem argument assertion, the board module names, and the
# config.txt its configtxt module renders from our dtparams.
{
  lib,
  repo ? ../..,
  rpiSrc ? null,
}:
let
  inherit (lib) mkOption types;

  storePath = name: "/nix/store/00000000000000000000000000000000-${name}";

  fakeDrv =
    attrsOrFn:
    let
      attrs = if builtins.isFunction attrsOrFn then attrsOrFn final else attrsOrFn;
      name = attrs.name or "${attrs.pname}-${attrs.version}";
      final =
        attrs
        // (attrs.passthru or { })
        // {
          type = "derivation";
          inherit name;
          outPath = storePath name;
        };
    in
    final;
  fetcher =
    kind: args:
    args
    // {
      fetcher = kind;
      outPath = storePath (args.name or args.repo or (baseNameOf args.url));
    };
  stdenv = {
    mkDerivation = fakeDrv;
    buildPlatform.canExecute = _: true;
    hostPlatform = { };
  };
  fakePkgs = {
    inherit lib stdenv;
    stdenvNoCC = stdenv;
    fetchFromGitHub = fetcher "github";
    fetchFromGitLab = fetcher "gitlab";
    fetchurl = fetcher "url";
    cmake = fakeDrv { name = "cmake"; };
    writeShellScript = name: text: fakeDrv { inherit name text; };
    callPackage = lib.callPackageWith fakePkgs;
  };

  kernel = {
    version = "6.12.47";
    modDirVersion = "6.12.47-v8-16k";
    dev = storePath "linux-rpi-6.12.47-dev";
    moduleBuildDependencies = [ ];
    commonMakeFlags = [ "ARCH=arm64" ];
  };
  kernelPackages = {
    inherit kernel;
    callPackage = lib.callPackageWith (
      fakePkgs
      // {
        inherit kernel;
        kernelModuleMakeFlags = kernel.commonMakeFlags ++ [ "KBUILD_OUTPUT=${kernel.dev}/build" ];
      }
    );
  };

  fakeVersioned =
    pname: version:
    fakeDrv {
      inherit pname version;
      passthru.hailoVersion = version;
    };

  listOfAnything = mkOption {
    type = types.listOf types.unspecified;
    default = [ ];
  };

  # Only the NixOS options modules/hailo.nix and models.nix touch; everything else the host
  # sets lands in the freeform catch-all, so a misspelt hailo option still fails loudly.
  stubs =
    { ... }:
    {
      config._module.freeformType = types.attrsOf types.anything;
      options = {
        assertions = listOfAnything;
        warnings = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        boot = {
          kernelPackages = mkOption {
            type = types.raw;
            default = kernelPackages;
          };
          extraModulePackages = mkOption {
            type = types.listOf types.package;
            default = [ ];
          };
          kernelModules = mkOption {
            type = types.listOf types.str;
            default = [ ];
          };
          extraModprobeConfig = mkOption {
            type = types.lines;
            default = "";
          };
        };
        hardware.firmware = mkOption {
          type = types.listOf types.package;
          default = [ ];
        };
        services.udev.extraRules = mkOption {
          type = types.lines;
          default = "";
        };
        users.groups = mkOption {
          type = types.attrsOf (types.submodule { });
          default = { };
        };
        environment.systemPackages = mkOption {
          type = types.listOf types.package;
          default = [ ];
        };
        systemd.services = mkOption {
          type = types.attrsOf (types.attrsOf types.anything);
          default = { };
        };
        services.hailo-clip = {
          enable = mkOption {
            type = types.bool;
            default = false;
          };
          package = mkOption {
            type = types.package;
            default = fakeDrv {
              pname = "hailo-clip";
              version = "0.1.0";
            };
          };
          openFirewall = mkOption {
            type = types.bool;
            default = false;
          };
          settings = mkOption {
            type = types.attrsOf types.anything;
            default = { };
          };
        };
      };
    };

  eval =
    modules:
    (lib.evalModules {
      modules = [
        stubs
        { _module.args.pkgs = fakePkgs; }
        (repo + "/modules/hailo.nix")
      ]
      ++ modules;
    }).config;

  failedAssertions = cfg: map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);

  check = name: ok: detail: { inherit name ok detail; };
  expectEq =
    name: actual: expected:
    check name (actual == expected) "expected ${builtins.toJSON expected}, got ${builtins.toJSON actual}";
  has = needle: hay: lib.hasInfix needle hay;

  on = eval [ { hardware.hailo.enable = true; } ];
  off = eval [ ];
  hailort = builtins.head on.environment.systemPackages;
  driver = builtins.head on.boot.extraModulePackages;
  firmware = builtins.head on.hardware.firmware;
  pins = import (repo + "/nix/hailo-versions.nix");
  rule = on.services.udev.extraRules;

  firmwareMismatch = eval [
    {
      hardware.hailo.enable = true;
      hardware.hailo.firmware = fakeVersioned "hailo10h-firmware" "5.2.0";
    }
  ];
  driverMismatch = eval [
    {
      hardware.hailo.enable = true;
      hardware.hailo.driver = fakeDrv {
        pname = "hailo1x-pci";
        version = "5.3.0-6.12.47";
      };
    }
  ];
  renamed = eval [
    {
      hardware.hailo = {
        enable = true;
        package = fakeVersioned "hailort" "5.3.0";
        driver = fakeVersioned "hailo1x-pci" "5.3.0";
        firmware = fakeVersioned "hailo10h-firmware" "5.3.0";
      };
    }
  ];
  withOptions = eval [
    {
      hardware.hailo.enable = true;
      hardware.hailo.modprobeOptions = {
        force_desc_page_size = 4096;
        no_power_mode = true;
      };
    }
  ];

  # hosts/pi5 minus the board modules (those need nixos-raspberrypi itself).
  host = eval [
    (repo + "/hosts/pi5/models.nix")
    (repo + "/hosts/pi5/configuration.nix")
  ];
  modelsUnit = host.systemd.services.hailo-clip-models or null;
  modelsOff = eval [
    (repo + "/hosts/pi5/models.nix")
    { services.hailo-clip.enable = true; }
  ];
  hostBackend = host.services.hailo-clip.settings.backend;

  rpiChecks =
    let
      # nixosSystem stand-in: returns its arguments so the host's can be inspected.
      fakeNixpkgs.lib = lib // {
        nixosSystem = args: args;
      };
      # The flake's outputs with stand-in inputs: nixosModules and lib only need nixpkgs' lib.
      rpiFlake =
        (import (rpiSrc + "/flake.nix")).outputs {
          self = rpiFlake;
          nixpkgs = fakeNixpkgs;
          argononed = null;
          nixos-images = null;
        }
        // {
          inputs.nixpkgs = fakeNixpkgs;
        };
      # The real lib.nixosSystem (lib/internal.nix nixosSystemRPi, with its specialArgs
      # assertion), ending in the stand-in nixpkgs.lib.nixosSystem above.
      system = import (repo + "/hosts/pi5") {
        inputs.nixos-raspberrypi = rpiFlake;
        self.nixosModules = {
          hailo = repo + "/modules/hailo.nix";
          default = "hailo-clip-module";
        };
      };
      # Ours are the last five; nixos-raspberrypi prepends its own.
      boardModule = builtins.elemAt system.modules (builtins.length system.modules - 5);
      boardImports = (boardModule { nixos-raspberrypi = rpiFlake; }).imports;
      configTxt =
        (eval [
          (rpiSrc + "/modules/configtxt-config.nix")
          (repo + "/hosts/pi5/models.nix")
          (repo + "/hosts/pi5/configuration.nix")
        ]).hardware.raspberry-pi.config-generated;
    in
    [
      (check "pi5: nixos-raspberrypi lib.nixosSystem accepts the host (specialArgs.nixos-raspberrypi)" (
        system.specialArgs ? nixos-raspberrypi
        && lib.elem (repo + "/hosts/pi5/configuration.nix") system.modules
        && lib.elem "hailo-clip-module" system.modules
      ) "")
      (check "pi5: board modules raspberry-pi-5.base, page-size-16k and sd-image exist upstream" (
        builtins.length boardImports == 3 && lib.all builtins.isFunction boardImports
      ) "")
      (check "pi5: config.txt gets dtparam=pciex1 and dtparam=pciex1_gen=3" (
        has "\ndtparam=pciex1\n" configTxt && has "\ndtparam=pciex1_gen=3\n" configTxt
      ) configTxt)
    ];
in
lib.optionals (rpiSrc != null) rpiChecks
++ [
  (expectEq "enabled: no failed assertions (versions agree)" (failedAssertions on) [ ])
  (expectEq "enabled: hailo1x_pci in boot.kernelModules" on.boot.kernelModules [ "hailo1x_pci" ])
  (expectEq "enabled: driver built for the configured kernel" driver.name
    "hailo1x-pci-${pins.version}-${kernel.version}"
  )
  (check "driver: Kbuild run against kernel.dev with the kernel's make flags" (
    lib.elem "${kernel.dev}/lib/modules/${kernel.modDirVersion}/build" driver.makeFlags
    && lib.elem "ARCH=arm64" driver.makeFlags
    && lib.elem "M=$(PWD)/linux/pcie" driver.makeFlags
  ) (builtins.toJSON driver.makeFlags))
  (check "driver: installs to lib/modules/<ver>/extra" (has "lib/modules/${kernel.modDirVersion}/extra/hailo1x_pci.ko" driver.installPhase) driver.installPhase)
  (check "driver: source pinned to hailort-drivers at the pinned rev" (
    driver.src.repo == "hailort-drivers" && driver.src.rev == pins.driver.rev
  ) (builtins.toJSON driver.src))
  (expectEq "enabled: firmware package in hardware.firmware" firmware.name "hailo10h-firmware-${pins.version}")
  (expectEq "firmware: fetched from Hailo's bucket for the pinned version" firmware.src.url
    "https://hailo-hailort.s3.eu-west-2.amazonaws.com/Hailo10H/${pins.version}/FW/hailo10h_fw.tar.gz"
  )
  (check "firmware: licence is unfree and names the Hailo EULA" (
    lib.any (l: l == lib.licenses.unfree) firmware.meta.license
    && lib.any (l: (l.shortName or "") == "hailo-fw-eula" && !l.free) firmware.meta.license
  ) (builtins.toJSON firmware.meta.license))
  (check "firmware: installs into lib/firmware/hailo/hailo10h" (has "lib/firmware/hailo/hailo10h" firmware.installPhase) "")
  (check "udev: device node to group hailo, mode 0660" (
    has ''SUBSYSTEM=="hailo_chardev", GROUP="hailo", MODE="0660"'' rule && !(has ''MODE="0666"'' rule)
  ) rule)
  (check "enabled: hailo group created" (on.users.groups ? hailo) (builtins.toJSON (builtins.attrNames on.users.groups)))
  (check "enabled: hailortcli package in systemPackages" (hailort.pname == "hailort" && hailort.meta.mainProgram == "hailortcli") hailort.name)
  (expectEq "enabled: device node for driver 5.1.1" on.hardware.hailo.deviceNode "/dev/hailo0")
  (check "hailort: every FetchContent dependency copied to hailort/external/<name>-src" (
    lib.all (n: has "hailort/external/${n}-src" hailort.postPatch) (builtins.attrNames pins.hailortDeps)
  ) "")
  (check "hailort: offline CMake (HAILO_OFFLINE_COMPILATION)" (lib.elem "-DHAILO_OFFLINE_COMPILATION:BOOL=TRUE" hailort.cmakeFlags) (builtins.toJSON hailort.cmakeFlags))
  (check "hailort: eigen comes from GitLab, the rest from GitHub" (
    hailort.deps.eigen.fetcher == "gitlab" && hailort.deps.spdlog.fetcher == "github"
  ) "")
  (expectEq "hailort: passthru version" hailort.version pins.version)
  (expectEq "enabled: no modprobe options by default" on.boot.extraModprobeConfig "")
  (check "modprobeOptions rendered for hailo1x_pci" (has "options hailo1x_pci force_desc_page_size=4096 no_power_mode=Y" withOptions.boot.extraModprobeConfig) withOptions.boot.extraModprobeConfig)
  (check "mismatch: firmware 5.2.0 vs 5.1.1 fires the versions assertion" (
    let
      msgs = failedAssertions firmwareMismatch;
    in
    builtins.length msgs == 1 && has "firmware\n5.2.0" (builtins.head msgs)
  ) (builtins.toJSON (failedAssertions firmwareMismatch)))
  (check "mismatch: driver 5.3.0 (version with kernel suffix) fires the versions assertion" (
    builtins.length (failedAssertions driverMismatch) == 1
  ) (builtins.toJSON (failedAssertions driverMismatch)))
  (check "5.3: renamed class hailo1x and node /dev/h1x-0" (
    has ''SUBSYSTEM=="hailo1x", GROUP="hailo", MODE="0660"'' renamed.services.udev.extraRules
    && renamed.hardware.hailo.deviceNode == "/dev/h1x-0"
    && failedAssertions renamed == [ ]
  ) renamed.services.udev.extraRules)
  (check "disabled: nothing installed" (
    off.boot.kernelModules == [ ]
    && off.hardware.firmware == [ ]
    && off.services.udev.extraRules == ""
    && !(off.users.groups ? hailo)
    && off.assertions == [ ]
  ) "")
  (check "pi5: hailo-clip-models.service is a oneshot before/required by hailo-clip.service" (
    modelsUnit != null
    && modelsUnit.serviceConfig.Type == "oneshot"
    && modelsUnit.serviceConfig.User == "hailo-clip"
    && modelsUnit.serviceConfig.StateDirectory == "hailo-clip"
    && lib.elem "hailo-clip.service" modelsUnit.before
    && lib.elem "hailo-clip.service" modelsUnit.requiredBy
    && lib.elem "network-online.target" modelsUnit.after
    && lib.elem "network-online.target" modelsUnit.wants
    && has "hailo-clip models fetch" modelsUnit.serviceConfig.ExecStart.text
  ) (builtins.toJSON (builtins.removeAttrs (if modelsUnit == null then { } else modelsUnit) [ "serviceConfig" ])))
  (check "pi5: no models unit without downloads" (!(modelsOff.systemd.services ? hailo-clip-models)) "")
  (check "pi5: hailo backend, ONNX text, image HEF from the pinned model zoo" (
    hostBackend.type == "hailo"
    && hostBackend.text == "onnx"
    && (builtins.head hostBackend.hailo.downloads).url
      == "https://hailo-model-zoo.s3.eu-west-2.amazonaws.com/ModelZoo/Compiled/v${pins.version}/hailo10h/clip_resnet_50x4_image_encoder.hef"
  ) (builtins.toJSON hostBackend))
  (check "pi5: PCIe Gen 3 dtparams" (
    host.hardware.raspberry-pi.config.all.base-dt-params.pciex1_gen.value == 3
    && host.hardware.raspberry-pi.config.all.base-dt-params.pciex1.enable
  ) "")
  (check "pi5: unfree predicate admits only the Hailo firmware" (
    host.nixpkgs.config.allowUnfreePredicate firmware
    && !(host.nixpkgs.config.allowUnfreePredicate hailort)
  ) "")
  (check "pi5: placeholder SSH key produces a warning, host assertions pass" (
    lib.any (has "placeholder") host.warnings && failedAssertions host == [ ]
  ) (builtins.toJSON host.warnings))
]
