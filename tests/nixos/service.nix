# The service under systemd with the mock backend: readiness, a classify round-trip, the rendered
# config, the unit's limits, restart after a crash, draining on stop, and the hardening score.
{
  pkgs,
  self,
  package,
}:
let
  common = import ./common.nix;
  # Exposure (0-10) times 10, as `systemd-analyze security --threshold` takes it.
  exposureThreshold = 20;
  # Each image batch takes this long on the mock "device", so a request is surely in flight
  # when the stop below arrives.
  imageLatencyMs = 3000;
in
pkgs.testers.runNixOSTest {
  name = "hailo-clip-service";

  nodes.machine = {
    imports = [ self.nixosModules.default ];
    virtualisation.memorySize = 1536;
    environment.systemPackages = [ pkgs.curl ];
    environment.etc."hailo-clip-test/classify.json".text = common.classifyBody common.png;
    services.hailo-clip = {
      enable = true;
      inherit package;
      settings = {
        backend = {
          type = "mock";
          mock.latency.image_fixed_ms = imageLatencyMs;
        };
        server.shutdown_grace_secs = 20;
      };
    };
  };

  testScript =
    { nodes, ... }:
    ''
      import json

      url = "http://127.0.0.1:5000"
      classify = f"curl -sf -H 'content-type: application/json' --data @/etc/hailo-clip-test/classify.json {url}/v1/classify"

      def prop(name):
          return machine.succeed(f"systemctl show -P {name} hailo-clip.service").strip()

      machine.wait_for_unit("hailo-clip.service")
      machine.wait_for_open_port(5000)

      with subtest("ready means serving"):
          # Type=notify: wait_for_unit only returns once READY=1 was sent.
          assert prop("Type") == "notify", prop("Type")
          health = json.loads(machine.succeed(f"curl -sf {url}/health"))
          print(health)

      with subtest("classify round-trip"):
          out = json.loads(machine.succeed(classify))
          labels = [r["label"] for r in out["result"]]
          scores = [r["score"] for r in out["result"]]
          assert sorted(labels) == ["car", "cat", "dog"], out
          assert scores == sorted(scores, reverse=True), out
          assert all(0.0 <= s <= 1.0 for s in scores), out
          assert out["backend"] == "mock", out

      with subtest("rendered config is the module's settings"):
          rendered = json.loads(machine.succeed("cat /etc/xdg/hailo-clip/hailo-clip.json"))
          expected = json.loads(r"""${builtins.toJSON nodes.machine.services.hailo-clip.settings}""")
          assert rendered == expected, (rendered, expected)
          assert "XDG_CONFIG_HOME=/etc/xdg" in prop("Environment")
          info = json.loads(machine.succeed(f"curl -sf {url}/info"))
          assert info["backend"] == "mock", info

      with subtest("unit limits, user and state directory"):
          assert prop("MemoryMax") == str(3 * 1024**3), prop("MemoryMax")
          assert prop("CPUQuotaPerSecUSec") == "800ms", prop("CPUQuotaPerSecUSec")
          assert prop("User") == "hailo-clip", prop("User")
          assert prop("StateDirectory") == "hailo-clip", prop("StateDirectory")
          assert prop("DevicePolicy") == "closed", prop("DevicePolicy")
          assert prop("PrivateDevices") == "yes", prop("PrivateDevices")
          pid = prop("MainPID")
          machine.succeed(f"test \"$(stat -c %U /proc/{pid})\" = hailo-clip")
          machine.succeed("test \"$(stat -c %U /var/lib/hailo-clip)\" = hailo-clip")

      with subtest("restarted after kill -9"):
          old = prop("MainPID")
          machine.succeed(f"kill -9 {old}")
          machine.wait_until_succeeds(
              f"test \"$(systemctl show -P MainPID hailo-clip.service)\" != {old}"
              " && systemctl is-active hailo-clip.service",
              timeout=60,
          )
          assert int(prop("NRestarts")) >= 1, prop("NRestarts")
          machine.wait_for_open_port(5000)
          machine.succeed(f"curl -sf {url}/health")

      with subtest("stop drains in-flight requests"):
          machine.succeed(
              f"({classify} -o /tmp/inflight.json -w '%{{http_code}}' > /tmp/inflight.code 2>/dev/null &)"
          )
          # Well inside the ${toString imageLatencyMs} ms the mock device takes for the image.
          machine.sleep(1)
          machine.succeed("systemctl stop hailo-clip.service")
          machine.wait_until_succeeds("test -s /tmp/inflight.code", timeout=30)
          code = machine.succeed("cat /tmp/inflight.code").strip()
          assert code == "200", code
          drained = json.loads(machine.succeed("cat /tmp/inflight.json"))
          assert len(drained["result"]) == 3, drained
          assert prop("Result") == "success", prop("Result")
          assert prop("ExecMainStatus") == "0", prop("ExecMainStatus")
          machine.succeed("systemctl start hailo-clip.service")
          machine.wait_for_unit("hailo-clip.service")

      with subtest("systemd-analyze security exposure at most ${toString exposureThreshold}/100"):
          out = machine.succeed("systemd-analyze security --threshold=${toString exposureThreshold} hailo-clip.service 2>&1")
          print(out.strip().splitlines()[-1])
    '';
}
