# NixOS module for the hailo-clip service. Works on its own (set `package`), or through the
# flake's nixosModules.default, which also defaults `package` to the flake's build.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    optional
    optionals
    optionalAttrs
    types
    ;

  cfg = config.services.hailo-clip;
  # The binary's own defaults (`hailo-clip render-config` of an empty file; a Rust test keeps
  # the file equal to them), so the module restates none of them.
  defaults = lib.importJSON ../config/defaults.json;
  # hardware.hailo (modules/hailo.nix) knows the device node and its group when it is imported.
  hailoHardware = lib.attrByPath [ "hardware" "hailo" ] { } config;
  format = pkgs.formats.json { };
  configFile = format.generate "hailo-clip.json" cfg.settings;

  # Stable, readable path (the CLI and `doctor` can be pointed at it); the service finds it
  # through XDG_CONFIG_HOME=/etc/xdg. restartTriggers restarts the unit when it changes.
  configEtcPath = "xdg/hailo-clip/hailo-clip.json";

  # systemd does not expand %d inside the JSON, so the credential's final path is spelled out.
  credentialDir = "/run/credentials/hailo-clip.service";
  credentials =
    optional (cfg.apiKeyFile != null) "api-key:${cfg.apiKeyFile}"
    ++ optionals (cfg.tls.certFile != null) [
      "tls-cert:${cfg.tls.certFile}"
      "tls-key:${cfg.tls.keyFile}"
    ];
  apiKeyCredentialPath = "${credentialDir}/api-key";

  backendType = cfg.settings.backend.type;
  usesHailo = backendType == "hailo";
  # ONNX Runtime's cpuinfo reads /proc/cpuinfo, which ProcSubset=pid hides.
  usesOnnx = backendType == "onnx" || (cfg.settings.backend.text or null) == "onnx";

  host = cfg.settings.server.host;
  port = cfg.settings.server.port;
  loopbackOnly = lib.hasPrefix "127." host || host == "::1" || host == "localhost";

  # A stop waits up to shutdown_grace_secs for in-flight requests; systemd must wait longer.
  shutdownGraceSecs = cfg.settings.server.shutdown_grace_secs or defaults.server.shutdown_grace_secs;

  # A freeform JSON section with some declared, documented keys.
  section =
    options:
    mkOption {
      type = types.submodule {
        freeformType = format.type;
        inherit options;
      };
      default = { };
      description = "See the service's config schema; undeclared keys are passed through.";
    };
in
{
  options.services.hailo-clip = {
    enable = mkEnableOption "hailo-clip, a CLIP zero-shot image classification HTTP service";

    package = mkPackageOption pkgs "hailo-clip" { };

    settings = mkOption {
      description = ''
        Service configuration, rendered to JSON at /etc/${configEtcPath}.
        The service rejects unknown keys, so typos fail at start-up rather than being ignored.
        See docs/nixos.md and crates/config/src/schema.rs for the full schema.
      '';
      default = { };
      type = types.submodule {
        freeformType = format.type;
        options = {
          server = section {
            host = mkOption {
              type = types.str;
              default = defaults.server.host;
              defaultText = lib.literalExpression ''"127.0.0.1"'';
              example = "0.0.0.0";
              description = ''
                Address to listen on. Loopback by default: set "0.0.0.0" or "::" (and usually
                `openFirewall`) to serve the LAN.
              '';
            };
            port = mkOption {
              type = types.port;
              default = defaults.server.port;
              defaultText = lib.literalExpression "5000";
              description = "TCP port of the HTTP API (1024-65535: the unit holds no capabilities).";
            };
          };
          cache = section {
            persist = mkOption {
              type = types.bool;
              default = true;
              description = ''
                Keep text embeddings and label sets in the state directory
                (/var/lib/hailo-clip/cache) across restarts, so a restart does not re-encode
                every label. The binary's own default is off (for runs outside a service).
              '';
            };
          };
          backend = section {
            type = mkOption {
              type = types.enum [
                "hailo"
                "onnx"
                "mock"
              ];
              default = defaults.backend.type;
              defaultText = lib.literalExpression ''"hailo"'';
              description = ''
                Inference backend. "hailo" (default) needs the Hailo-10H NPU and
                `hardware.hailo.enable`; "onnx" runs on the CPU; "mock" returns deterministic
                fake embeddings and is meant for tests only.
              '';
            };
          };
        };
      };
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open `settings.server.port` in the firewall.";
    };

    memoryMax = mkOption {
      type = types.nullOr types.str;
      default = "3G";
      description = "systemd MemoryMax= for the service; null for no limit.";
    };

    cpuQuota = mkOption {
      type = types.nullOr types.str;
      default = "80%";
      example = "300%";
      description = ''
        systemd CPUQuota= for the service; null for no limit. Relative to one core: "80%" is
        four fifths of one core (it keeps a Pi 5 cool under sustained load, with inference on the
        NPU); "300%" allows three of the Pi 5's four cores.
      '';
    };

    hailo = {
      deviceNode = mkOption {
        type = types.strMatching "/dev/.+";
        default = hailoHardware.deviceNode or "/dev/hailo0";
        defaultText = lib.literalExpression ''config.hardware.hailo.deviceNode (or "/dev/hailo0" without that module)'';
        description = "The Hailo device node the unit may open (DeviceAllow=) with the hailo backend.";
      };
      group = mkOption {
        type = types.str;
        default = hailoHardware.group or "hailo";
        defaultText = lib.literalExpression ''config.hardware.hailo.group (or "hailo" without that module)'';
        description = "The group that owns the device node; the service joins it with the hailo backend.";
      };
    };

    allowUnauthenticated = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Serve a non-loopback address without an API key. Off by default: anyone on the network
        could then use the NPU.
      '';
    };

    tls = {
      certFile = mkOption {
        type = types.nullOr (types.strMatching "/.+");
        default = null;
        example = "/var/lib/acme/clip.example.org/fullchain.pem";
        description = "PEM certificate chain for HTTPS (passed as a credential; re-read on change after a restart of the credential copy, i.e. `systemctl restart hailo-clip`).";
      };
      keyFile = mkOption {
        type = types.nullOr (types.strMatching "/.+");
        default = null;
        example = "/var/lib/acme/clip.example.org/key.pem";
        description = "PEM private key for HTTPS (passed as a credential, so it may be root-only).";
      };
    };

    apiKeyFile = mkOption {
      type = types.nullOr (types.strMatching "/.+");
      default = null;
      example = "/run/secrets/hailo-clip-api-key";
      description = ''
        Absolute path to a file holding the API key (read by systemd as root and passed as a
        credential, so it may be root-only). A string, not a Nix path, so the secret never lands
        in the world-readable store. When set, every route except /health requires the key.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = loopbackOnly || cfg.apiKeyFile != null || cfg.allowUnauthenticated;
        message = ''
          services.hailo-clip: settings.server.host = "${host}" serves the network without an API
          key. Set apiKeyFile (every route but /health then needs the key), or set
          allowUnauthenticated = true to serve the LAN openly on purpose.
        '';
      }
      {
        assertion = usesHailo -> (config.hardware.hailo.enable or false);
        message = ''
          services.hailo-clip: settings.backend.type = "hailo" needs the Hailo driver and device
          group: import this flake's nixosModules.hailo and set hardware.hailo.enable = true
          (or choose backend "onnx").
        '';
      }
      {
        assertion = port >= 1024;
        message = "services.hailo-clip: settings.server.port = ${toString port}: ports below 1024 need CAP_NET_BIND_SERVICE, which the unit drops.";
      }
      {
        assertion = cfg.openFirewall -> !loopbackOnly;
        message = "services.hailo-clip: openFirewall is set but settings.server.host = \"${host}\" only listens on loopback; set host to \"0.0.0.0\" or \"::\".";
      }
      {
        assertion = (cfg.tls.certFile == null) == (cfg.tls.keyFile == null);
        message = "services.hailo-clip: set both tls.certFile and tls.keyFile, or neither.";
      }
      {
        assertion = cfg.apiKeyFile == null || !(lib.hasPrefix builtins.storeDir cfg.apiKeyFile);
        message = "services.hailo-clip: apiKeyFile points into the Nix store, which is world-readable; use a path outside it (e.g. from sops-nix/agenix).";
      }
    ];

    services.hailo-clip.settings.server.api_key_file = mkIf (
      cfg.apiKeyFile != null
    ) apiKeyCredentialPath;
    services.hailo-clip.settings.server.tls = mkIf (cfg.tls.certFile != null) {
      cert_file = "${credentialDir}/tls-cert";
      key_file = "${credentialDir}/tls-key";
    };

    users.users.hailo-clip = {
      isSystemUser = true;
      group = "hailo-clip";
      home = "/var/lib/hailo-clip";
      description = "hailo-clip service user";
    };
    users.groups.hailo-clip = { };

    environment.etc.${configEtcPath}.source = configFile;

    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall [ port ];

    systemd.services.hailo-clip = {
      description = "hailo-clip CLIP zero-shot image classification";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      restartTriggers = [ configFile ];

      environment = {
        XDG_CONFIG_HOME = "/etc/xdg";
        XDG_DATA_HOME = "/var/lib";
      };

      serviceConfig = {
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${cfg.package}/bin/hailo-clip serve";
        User = "hailo-clip";
        Group = "hailo-clip";
        SupplementaryGroups = optional usesHailo cfg.hailo.group;
        StateDirectory = "hailo-clip";
        StateDirectoryMode = "0700";
        WorkingDirectory = "/var/lib/hailo-clip";

        # Each client connection is a descriptor; the service raises its soft limit to this.
        LimitNOFILE = 65536;

        # Model load and warm-up on the NPU take a while on first start.
        TimeoutStartSec = 120;
        TimeoutStopSec = shutdownGraceSecs + 15;
        Restart = "always";
        # Paces retries when the device node is missing, so the start limit is not hit within seconds.
        RestartSec = 5;

        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateMounts = true;
        # Not with the NPU: device access goes through the supplementary `hailo` group, which a
        # user namespace maps to nobody; that cannot be checked without the hardware.
        PrivateUsers = !usesHailo;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        ProcSubset = if usesOnnx then "all" else "pid";
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        RemoveIPC = true;
        # AF_UNIX for sd_notify.
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        SystemCallErrorNumber = "EPERM";
        UMask = "0077";
        DevicePolicy = "closed";
        # A private /dev would hide the NPU, so it is only used without it.
        PrivateDevices = !usesHailo;
      }
      // optionalAttrs usesHailo { DeviceAllow = [ "${cfg.hailo.deviceNode} rw" ]; }
      # Listening on loopback only: refuse any other peer at the socket level as well.
      // optionalAttrs loopbackOnly {
        IPAddressAllow = "localhost";
        IPAddressDeny = "any";
      }
      // optionalAttrs (credentials != [ ]) { LoadCredential = credentials; }
      // optionalAttrs (cfg.memoryMax != null) { MemoryMax = cfg.memoryMax; }
      // optionalAttrs (cfg.cpuQuota != null) { CPUQuota = cfg.cpuQuota; };
    };
  };
}
