{
  description = "hailo-clip: CLIP zero-shot image classification service for Raspberry Pi 5 + Hailo-10H";

  nixConfig = {
    # The Pi 5 vendor kernel takes many hours to build under emulation; this cache has it.
    extra-substituters = [ "https://nixos-raspberrypi.cachix.org" ];
    extra-trusted-public-keys = [
      "nixos-raspberrypi.cachix.org-1:4iMO9LXa8BqhU+Rpg6LQKiGa2lsNh/j2oiYLNOQ5sPI="
    ];
  };

  inputs = {
    # `main` is the branch upstream calls stable; `develop` has broken before (nvmd/nixos-raspberrypi#66).
    nixos-raspberrypi.url = "github:nvmd/nixos-raspberrypi/main";
    # Same nixpkgs as nixos-raspberrypi so the kernel/firmware in its binary cache match ours.
    nixpkgs.follows = "nixos-raspberrypi/nixpkgs";
    crane.url = "github:ipetkov/crane";
    advisory-db = {
      url = "github:rustsec/advisory-db";
      flake = false;
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
      advisory-db,
      ...
    }@inputs:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      mkPackages =
        pkgs:
        let
          craneLib = crane.mkLib pkgs;
          hailort = pkgs.callPackage ./nix/hailort.nix { };
          # hailort = null spelled out: callPackage would inject a `pkgs.hailort` if nixpkgs grew one.
          hailo-clip = pkgs.callPackage ./nix/package.nix {
            inherit craneLib;
            hailort = null;
          };
        in
        {
          inherit hailort hailo-clip;
          # Reuses the plain build's dependency artifacts: the `hailo` feature adds no crates.
          hailo-clip-hailo = pkgs.callPackage ./nix/package.nix {
            inherit craneLib hailort;
            inherit (hailo-clip.passthru) cargoArtifacts;
          };
          default = hailo-clip;
        };

      mkCargoChecks =
        pkgs:
        let
          craneLib = crane.mkLib pkgs;
          pkg = self.packages.${pkgs.stdenv.hostPlatform.system}.hailo-clip;
          inherit (pkg.passthru) commonArgs cargoArtifacts;
        in
        {
          hailo-clip = pkg;
          hailo-clip-clippy = craneLib.cargoClippy (
            commonArgs
            // {
              inherit cargoArtifacts;
              cargoClippyExtraArgs = "--all-targets -- --deny warnings";
            }
          );
          hailo-clip-fmt = craneLib.cargoFmt { inherit (commonArgs) src; };
          hailo-clip-nextest = craneLib.cargoNextest (
            commonArgs
            // {
              inherit cargoArtifacts;
              partitions = 1;
              partitionType = "count";
              cargoNextestPartitionsExtraArgs = "--no-tests=pass";
              # Tests of the onnx backend load the runtime the same way the service does.
              ORT_DYLIB_PATH = "${lib.getLib pkgs.onnxruntime}/lib/libonnxruntime.so";
            }
          );
          hailo-clip-audit = craneLib.cargoAudit {
            inherit (commonArgs) src;
            inherit advisory-db;
          };
        };

      mkVmTests =
        pkgs:
        let
          args = {
            inherit pkgs self;
            package = self.packages.${pkgs.stdenv.hostPlatform.system}.hailo-clip;
          };
        in
        {
          vm-service = import ./tests/nixos/service.nix args;
          vm-api-key-firewall = import ./tests/nixos/api-key-firewall.nix args;
        };

      # Wraps the plain module so `package` defaults to this flake's build, picking the
      # HailoRT-linked binary only when the hailo backend is selected.
      hailoClipModule =
        {
          config,
          lib,
          pkgs,
          ...
        }:
        {
          key = "hailo-clip#nixosModules.hailo-clip";
          imports = [ ./modules/hailo-clip.nix ];
          config.services.hailo-clip.package =
            let
              flakePkgs = self.packages.${pkgs.stdenv.hostPlatform.system};
            in
            lib.mkDefault (
              if config.services.hailo-clip.settings.backend.type == "hailo" then
                flakePkgs.hailo-clip-hailo
              else
                flakePkgs.hailo-clip
            );
        };
    in
    {
      packages = forAllSystems mkPackages;

      checks = forAllSystems (pkgs: mkCargoChecks pkgs // mkVmTests pkgs);

      devShells = forAllSystems (
        pkgs:
        let
          craneLib = crane.mkLib pkgs;
        in
        {
          # Only the cargo checks: inheriting the VM tests' inputs would pull QEMU into the shell.
          default = craneLib.devShell {
            checks = mkCargoChecks pkgs;
            packages = with pkgs; [
              cargo-nextest
              cargo-audit
              rust-analyzer
            ];
            ORT_DYLIB_PATH = "${lib.getLib pkgs.onnxruntime}/lib/libonnxruntime.so";
          };
        }
      );

      nixosModules = {
        default = hailoClipModule;
        hailo-clip = hailoClipModule;
        hailo = ./modules/hailo.nix;
      };

      nixosConfigurations.pi5 = import ./hosts/pi5 { inherit inputs self; };
    };
}
