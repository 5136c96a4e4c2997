# A LAN-facing instance: openFirewall lets a second machine in, and apiKeyFile (a root-only file
# outside the store) gates everything but /health through LoadCredential.
{
  pkgs,
  self,
  package,
}:
let
  common = import ./common.nix;
  key = "vm-test-key-7f3a";
  keyPath = "/var/lib/hailo-clip-secrets/api-key";
in
pkgs.testers.runNixOSTest {
  name = "hailo-clip-api-key-firewall";

  nodes.server = {
    imports = [ self.nixosModules.default ];
    # Created at boot, root-only, never part of the service's configuration in the store.
    systemd.tmpfiles.rules = [
      "d /var/lib/hailo-clip-secrets 0700 root root -"
      "f+ ${keyPath} 0400 root root - ${key}"
    ];
    services.hailo-clip = {
      enable = true;
      inherit package;
      openFirewall = true;
      apiKeyFile = keyPath;
      settings = {
        server.host = "0.0.0.0";
        backend.type = "mock";
      };
    };
  };

  nodes.client = {
    environment.systemPackages = [ pkgs.curl ];
    environment.etc."hailo-clip-test/classify.json".text = common.classifyBody common.png;
  };

  testScript = ''
    start_all()
    server.wait_for_unit("hailo-clip.service")
    server.wait_for_open_port(5000)
    client.wait_for_unit("multi-user.target")

    url = "http://server:5000"
    post = f"curl -s -o /dev/null -w '%{{http_code}}' -H 'content-type: application/json' --data @/etc/hailo-clip-test/classify.json {url}/v1/classify"

    with subtest("firewall is open and /health needs no key"):
        client.succeed(f"curl -sf {url}/health")

    with subtest("other routes need the key"):
        assert client.succeed(post).strip() == "401"
        assert client.succeed(post + " -H 'Authorization: Bearer wrong'").strip() == "401"
        assert client.succeed(post + " -H 'Authorization: Bearer ${key}'").strip() == "200"

    with subtest("the key stays out of the store and the config"):
        server.succeed("test \"$(stat -c %a ${keyPath})\" = 400")
        rendered = server.succeed("cat /etc/xdg/hailo-clip/hailo-clip.json")
        assert "/run/credentials/hailo-clip.service/api-key" in rendered, rendered
        # grep follows the /etc symlink only when it is named on the command line.
        server.fail("grep -qF ${key} \"$(readlink -f /etc/xdg/hailo-clip/hailo-clip.json)\"")
        server.succeed("systemctl cat hailo-clip.service | grep -qx 'LoadCredential=api-key:${keyPath}'")
  '';
}
