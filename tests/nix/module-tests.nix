# Cases for modules/hailo-clip.nix, evaluated by run-module-tests.nix: each is { expr; expected; }.
{ lib }:
let
  h = import ./harness.nix { inherit lib; };

  enabled = settings: extra: {
    config = lib.recursiveUpdate {
      services.hailo-clip = {
        enable = true;
        inherit settings;
      };
    } extra;
  };

  mock = h.eval (enabled { backend.type = "mock"; } { });
  hailo = h.eval {
    hailoModule = true;
    config = {
      hardware.hailo.enable = true;
      services.hailo-clip.enable = true;
    };
  };
  onnx = h.eval (enabled { backend.type = "onnx"; } { });

  mockWith = extra: h.eval (enabled { backend.type = "mock"; } { services.hailo-clip = extra; });

  sc = h.serviceConfig;
  anyContains = prefix: lib.any (lib.hasInfix prefix);
in
{
  defaultBackendIsHailo = {
    expr = hailo.config.services.hailo-clip.settings.backend.type;
    expected = "hailo";
  };

  validConfigsHaveNoFailedAssertions = {
    expr = map h.failedAssertions [
      mock
      hailo
      onnx
    ];
    expected = [
      [ ]
      [ ]
      [ ]
    ];
  };

  unitCore = {
    expr = lib.getAttrs [
      "Type"
      "NotifyAccess"
      "ExecStart"
      "User"
      "Group"
      "StateDirectory"
      "TimeoutStartSec"
      "TimeoutStopSec"
      "Restart"
      "MemoryMax"
      "CPUQuota"
    ] (sc mock);
    expected = {
      Type = "notify";
      NotifyAccess = "main";
      ExecStart = "/nix/store/00000000000000000000000000000000-hailo-clip/bin/hailo-clip serve";
      User = "hailo-clip";
      Group = "hailo-clip";
      StateDirectory = "hailo-clip";
      TimeoutStartSec = 120;
      TimeoutStopSec = 45;
      Restart = "always";
      MemoryMax = "3G";
      CPUQuota = "80%";
    };
  };

  unitOrderingAndInstall = {
    expr = {
      inherit (h.service mock) wantedBy after;
    };
    expected = {
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
    };
  };

  environmentPointsAtEtcAndState = {
    expr = (h.service mock).environment;
    expected = {
      XDG_CONFIG_HOME = "/etc/xdg";
      XDG_DATA_HOME = "/var/lib";
    };
  };

  hardening = {
    expr = lib.getAttrs [
      "CapabilityBoundingSet"
      "AmbientCapabilities"
      "NoNewPrivileges"
      "ProtectSystem"
      "ProtectHome"
      "PrivateTmp"
      "PrivateMounts"
      "ProtectKernelTunables"
      "ProtectKernelModules"
      "ProtectKernelLogs"
      "ProtectControlGroups"
      "ProtectClock"
      "ProtectHostname"
      "ProtectProc"
      "ProcSubset"
      "LockPersonality"
      "MemoryDenyWriteExecute"
      "RestrictNamespaces"
      "RestrictRealtime"
      "RestrictSUIDSGID"
      "RemoveIPC"
      "RestrictAddressFamilies"
      "SystemCallArchitectures"
      "SystemCallFilter"
      "UMask"
      "DevicePolicy"
    ] (sc mock);
    expected = {
      CapabilityBoundingSet = "";
      AmbientCapabilities = "";
      NoNewPrivileges = true;
      ProtectSystem = "strict";
      ProtectHome = true;
      PrivateTmp = true;
      PrivateMounts = true;
      ProtectKernelTunables = true;
      ProtectKernelModules = true;
      ProtectKernelLogs = true;
      ProtectControlGroups = true;
      ProtectClock = true;
      ProtectHostname = true;
      ProtectProc = "invisible";
      ProcSubset = "pid";
      LockPersonality = true;
      MemoryDenyWriteExecute = true;
      RestrictNamespaces = true;
      RestrictRealtime = true;
      RestrictSUIDSGID = true;
      RemoveIPC = true;
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
      UMask = "0077";
      DevicePolicy = "closed";
    };
  };

  mockHasNoDeviceAccess = {
    expr = {
      inherit (sc mock) PrivateDevices PrivateUsers SupplementaryGroups;
      hasDeviceAllow = (sc mock) ? DeviceAllow;
    };
    expected = {
      PrivateDevices = true;
      PrivateUsers = true;
      SupplementaryGroups = [ ];
      hasDeviceAllow = false;
    };
  };

  hailoGetsOnlyTheNpu = {
    expr = {
      inherit (sc hailo)
        PrivateDevices
        PrivateUsers
        SupplementaryGroups
        DeviceAllow
        DevicePolicy
        ;
    };
    expected = {
      PrivateDevices = false;
      PrivateUsers = false;
      SupplementaryGroups = [ "hailo" ];
      DeviceAllow = [ "/dev/hailo0 rw" ];
      DevicePolicy = "closed";
    };
  };

  # DeviceAllow and the group follow hardware.hailo, e.g. the node driver 5.3 renames.
  deviceAccessFollowsHardwareHailo = {
    expr =
      let
        c = sc (
          h.eval {
            hailoModule = true;
            config = {
              hardware.hailo = {
                enable = true;
                deviceNode = "/dev/h1x-0";
                group = "npu";
              };
              services.hailo-clip.enable = true;
            };
          }
        );
      in
      {
        inherit (c) DeviceAllow SupplementaryGroups;
      };
    expected = {
      DeviceAllow = [ "/dev/h1x-0 rw" ];
      SupplementaryGroups = [ "npu" ];
    };
  };

  # Under systemd the caches survive restarts by default.
  cachePersistsUnderSystemd = {
    expr = (h.configValue mock).cache.persist;
    expected = true;
  };

  # The module restates none of the binary's defaults: they come from config/defaults.json.
  defaultsComeFromTheBinary = {
    expr = {
      inherit (mock.config.services.hailo-clip.settings.server) host port;
      stop = (sc mock).TimeoutStopSec;
    };
    expected = {
      host = "127.0.0.1";
      port = 5000;
      stop = 45;
    };
  };

  onnxSeesProcCpuinfo = {
    expr = [
      (sc onnx).ProcSubset
      (sc (
        h.eval {
          hailoModule = true;
          config = {
            hardware.hailo.enable = true;
            services.hailo-clip = {
              enable = true;
              settings.backend.text = "onnx";
            };
          };
        }
      )).ProcSubset
    ];
    expected = [
      "all"
      "all"
    ];
  };

  renderedJsonIsTheSettings = {
    expr = h.configValue mock;
    expected = {
      server = {
        host = "127.0.0.1";
        port = 5000;
      };
      backend.type = "mock";
      cache.persist = true;
    };
  };

  freeformKeysPassThrough =
    let
      e = mockWith {
        settings = {
          batching.max_batch_size = 4;
          backend.mock.latency.image_fixed_ms = 2.5;
          server.shutdown_grace_secs = 60;
        };
      };
    in
    {
      expr = {
        json = h.configValue e;
        jsonEqualsOption = h.configValue e == e.config.services.hailo-clip.settings;
        stop = (sc e).TimeoutStopSec;
      };
      expected = {
        json = {
          server = {
            host = "127.0.0.1";
            port = 5000;
            shutdown_grace_secs = 60;
          };
          backend = {
            type = "mock";
            mock.latency.image_fixed_ms = 2.5;
          };
          batching.max_batch_size = 4;
          cache.persist = true;
        };
        jsonEqualsOption = true;
        # grace + 15 s so systemd never kills a drain that is still within its grace period
        stop = 75;
      };
    };

  configChangeRestartsService = {
    expr = (h.service mock).restartTriggers == [
      mock.config.environment.etc."xdg/hailo-clip/hailo-clip.json".source
    ];
    expected = true;
  };

  staticSystemUser = {
    expr = {
      user = {
        inherit (mock.config.users.users.hailo-clip) isSystemUser group home;
      };
      group = mock.config.users.groups ? hailo-clip;
    };
    expected = {
      user = {
        isSystemUser = true;
        group = "hailo-clip";
        home = "/var/lib/hailo-clip";
      };
      group = true;
    };
  };

  firewallClosedByDefault = {
    expr = mock.config.networking.firewall.allowedTCPPorts;
    expected = [ ];
  };

  openFirewallOpensThePort =
    let
      e = mockWith {
        openFirewall = true;
        allowUnauthenticated = true;
        settings.server = {
          host = "0.0.0.0";
          port = 8080;
        };
      };
    in
    {
      expr = {
        ports = e.config.networking.firewall.allowedTCPPorts;
        failed = h.failedAssertions e;
        ipDeny = (sc e) ? IPAddressDeny;
      };
      expected = {
        ports = [ 8080 ];
        failed = [ ];
        ipDeny = false;
      };
    };

  loopbackHostDeniesOtherPeers = {
    expr = {
      inherit (sc mock) IPAddressAllow IPAddressDeny;
    };
    expected = {
      IPAddressAllow = "localhost";
      IPAddressDeny = "any";
    };
  };

  hailoWithoutHailoModuleFails = {
    expr = anyContains "hardware.hailo.enable" (
      h.failedAssertions (h.eval {
        config.services.hailo-clip.enable = true;
      })
    );
    expected = true;
  };

  hailoWithHardwareDisabledFails = {
    expr = anyContains "hardware.hailo.enable" (
      h.failedAssertions (h.eval {
        hailoModule = true;
        config.services.hailo-clip.enable = true;
      })
    );
    expected = true;
  };

  privilegedPortFails = {
    expr = anyContains "CAP_NET_BIND_SERVICE" (h.failedAssertions (mockWith { settings.server.port = 80; }));
    expected = true;
  };

  portOutOfRangeIsATypeError = {
    expr = h.throws (mockWith { settings.server.port = 70000; }).config.services.hailo-clip.settings;
    expected = true;
  };

  unknownBackendIsATypeError = {
    expr = h.throws (h.eval (enabled { backend.type = "cuda"; } { })).config.services.hailo-clip.settings;
    expected = true;
  };

  lanWithoutKeyFails = {
    expr = anyContains "without an API" (
      h.failedAssertions (mockWith { settings.server.host = "0.0.0.0"; })
    );
    expected = true;
  };

  lanWithKeyOrOptIn = {
    expr = map h.failedAssertions [
      (mockWith {
        apiKeyFile = "/run/secrets/k";
        settings.server.host = "0.0.0.0";
      })
      (mockWith {
        allowUnauthenticated = true;
        settings.server.host = "0.0.0.0";
      })
    ];
    expected = [
      [ ]
      [ ]
    ];
  };

  tlsFilesBecomeCredentials =
    let
      e = mockWith {
        tls = {
          certFile = "/var/lib/acme/x/fullchain.pem";
          keyFile = "/var/lib/acme/x/key.pem";
        };
      };
    in
    {
      expr = {
        credential = (sc e).LoadCredential;
        tls = e.config.services.hailo-clip.settings.server.tls;
        files = (sc e).LimitNOFILE;
      };
      expected = {
        credential = [
          "tls-cert:/var/lib/acme/x/fullchain.pem"
          "tls-key:/var/lib/acme/x/key.pem"
        ];
        tls = {
          cert_file = "/run/credentials/hailo-clip.service/tls-cert";
          key_file = "/run/credentials/hailo-clip.service/tls-key";
        };
        files = 65536;
      };
    };

  tlsNeedsBothFiles = {
    expr = anyContains "tls.certFile and tls.keyFile" (
      h.failedAssertions (mockWith { tls.certFile = "/x/cert.pem"; })
    );
    expected = true;
  };

  openFirewallOnLoopbackFails = {
    expr = anyContains "only listens on loopback" (h.failedAssertions (mockWith { openFirewall = true; }));
    expected = true;
  };

  apiKeyFileBecomesACredential =
    let
      e = mockWith { apiKeyFile = "/run/secrets/hailo-clip-key"; };
    in
    {
      expr = {
        credential = (sc e).LoadCredential;
        keyPath = (h.configValue e).server.api_key_file;
        failed = h.failedAssertions e;
      };
      expected = {
        credential = [ "api-key:/run/secrets/hailo-clip-key" ];
        keyPath = "/run/credentials/hailo-clip.service/api-key";
        failed = [ ];
      };
    };

  noApiKeyNoCredential = {
    expr = {
      credential = (sc mock) ? LoadCredential;
      key = (h.configValue mock).server ? api_key_file;
    };
    expected = {
      credential = false;
      key = false;
    };
  };

  apiKeyFileInStoreFails = {
    expr = anyContains "world-readable" (
      h.failedAssertions (mockWith { apiKeyFile = "${builtins.storeDir}/aaaa-key"; })
    );
    expected = true;
  };

  apiKeyFileMustBeAnAbsoluteString = {
    expr = map (k: h.throws (mockWith { apiKeyFile = k; }).config.services.hailo-clip.apiKeyFile) [
      "relative/key"
      ./stubs.nix
    ];
    expected = [
      true
      true
    ];
  };

  limitsCanBeLifted =
    let
      e = mockWith {
        memoryMax = null;
        cpuQuota = null;
      };
    in
    {
      expr = [
        ((sc e) ? MemoryMax)
        ((sc e) ? CPUQuota)
      ];
      expected = [
        false
        false
      ];
    };

  disabledDefinesNothing =
    let
      e = h.eval { config = { }; };
    in
    {
      expr = {
        services = e.config.systemd.services;
        users = e.config.users.users;
        etc = e.config.environment.etc;
      };
      expected = {
        services = { };
        users = { };
        etc = { };
      };
    };
}
