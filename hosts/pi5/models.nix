# hailo-clip-models.service: downloads the configured model files into the service's state
# directory before hailo-clip.service starts, by running the service's own
# `hailo-clip models fetch` (it reads backend.hailo.downloads from the same config).
#
# Why not a Nix fetch: a fixed-output derivation needs each HEF's hash up front, and they
# were not downloadable when this was written. The fetch runs once (files already present
# are kept) and leaves the image free of model files.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.hailo-clip;
  downloads = cfg.settings.backend.hailo.downloads or [ ];

  # A first boot can race the network; retry for about ten minutes before giving up.
  fetchWithRetry = pkgs.writeShellScript "hailo-clip-models-fetch" ''
    for attempt in $(seq 1 20); do
      ${lib.getExe' cfg.package "hailo-clip"} models fetch && exit 0
      echo "models fetch failed (attempt $attempt/20); retrying in 30 s" >&2
      sleep 30
    done
    exit 1
  '';
in
{
  config = lib.mkIf (cfg.enable && downloads != [ ]) {
    systemd.services.hailo-clip-models = {
      description = "Download hailo-clip model files";
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      before = [ "hailo-clip.service" ];
      requiredBy = [ "hailo-clip.service" ];

      # Same lookups as hailo-clip.service: config from /etc/xdg, models under /var/lib.
      environment = {
        XDG_CONFIG_HOME = "/etc/xdg";
        XDG_DATA_HOME = "/var/lib";
      };

      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = fetchWithRetry;
        TimeoutStartSec = "15min";
        User = "hailo-clip";
        Group = "hailo-clip";
        StateDirectory = "hailo-clip";
        StateDirectoryMode = "0700";
        UMask = "0077";

        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        CapabilityBoundingSet = "";
        SystemCallArchitectures = "native";
      };
    };
  };
}
