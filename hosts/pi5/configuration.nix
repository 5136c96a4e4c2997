# The Pi 5 appliance: board, Hailo platform, hailo-clip on the NPU, SSH.
{
  config,
  lib,
  ...
}:
let
  pins = import ../../nix/hailo-versions.nix;

  # ---- The two values to change before building an image (docs/deploy-pi5.md) ----
  hostName = "hailo-clip-pi5";
  # Not a valid key, so sshd ignores it and nobody can log in until it is replaced.
  rootSshKeys = [
    "ssh-ed25519 REPLACE-WITH-YOUR-PUBLIC-KEY placeholder@hailo-clip"
  ];
  # ----------------------------------------------------------------------------------

  placeholderKey = lib.any (lib.hasInfix "REPLACE-WITH-YOUR-PUBLIC-KEY") rootSshKeys;
in
{
  networking.hostName = hostName;
  system.stateVersion = "25.11";

  # The generational bootloader nixos-raspberrypi recommends for new Pi 5 installs (and
  # the one its SD image uses), so the image and later switches agree.
  boot.loader.raspberry-pi.bootloader = "kernel";

  # The AI HAT+ 2 sits on the external PCIe connector. Its HAT EEPROM normally enables the
  # link and Gen 3 by itself; stating both keeps the image independent of that.
  hardware.raspberry-pi.config.all.base-dt-params = {
    pciex1.enable = true;
    pciex1_gen = {
      enable = true;
      value = 3;
    };
  };

  hardware.hailo.enable = true;
  # The only unfree package in the image; see nix/hailo-firmware.nix for the licence.
  nixpkgs.config.allowUnfreePredicate = pkg: lib.getName pkg == "hailo10h-firmware";

  # The LAN is served with an API key, made on first boot: `sudo cat /var/lib/hailo-clip-key/api-key`
  # over SSH, then send `Authorization: Bearer <key>` (docs/deploy-pi5.md).
  systemd.services.hailo-clip-api-key = {
    description = "Create the hailo-clip API key on first boot";
    wantedBy = [ "hailo-clip.service" ];
    before = [ "hailo-clip.service" ];
    unitConfig.ConditionPathExists = "!/var/lib/hailo-clip-key/api-key";
    serviceConfig = {
      Type = "oneshot";
      UMask = "0077";
      StateDirectory = "hailo-clip-key";
      StateDirectoryMode = "0700";
    };
    script = "head -c 32 /dev/urandom | base64 | tr -d '/+=' > /var/lib/hailo-clip-key/api-key";
  };

  services.hailo-clip = {
    enable = true;
    openFirewall = true;
    apiKeyFile = "/var/lib/hailo-clip-key/api-key";
    settings = {
      server.host = "0.0.0.0";
      backend = {
        type = "hailo";
        # Text prompts on the CPU (ONNX), images on the NPU: the split Hailo's own CLIP app
        # uses at HailoRT 5.1.1. The model zoo publishes no Hailo-10H text-encoder HEF for
        # 5.1 (its 5.1.0 Hailo-10H page links Hailo-15H files), and HEFs must match the
        # runtime's major.minor. Text embeddings are cached, so the CPU cost is per label,
        # not per image. The text model goes to
        # /var/lib/hailo-clip/models/clip-resnet-50x4/text.onnx (docs/deploy-pi5.md).
        text = "onnx";
        hailo.downloads = [
          {
            # The URL hailo-apps uses for Hailo-10H at this version; the default image_hef
            # path is <models dir>/image_encoder.hef.
            url = "${pins.modelZoo.compiledBaseUrl}/clip_resnet_50x4_image_encoder.hef";
            file = "image_encoder.hef";
          }
        ];
      };
    };
  };

  services.openssh = {
    enable = true;
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "prohibit-password";
    };
  };
  users.users.root.openssh.authorizedKeys.keys = rootSshKeys;

  warnings = lib.optional placeholderKey ''
    hosts/pi5: root's SSH key is still the placeholder; set rootSshKeys in
    hosts/pi5/configuration.nix or nobody can log in over SSH.
  '';
}
