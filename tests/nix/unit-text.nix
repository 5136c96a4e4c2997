# Turns an evaluated systemd.services.<name> into unit-file text the way
# nixpkgs' nixos/lib/systemd-lib.nix does (same value encoding and Environment= quoting).
# Differences, on purpose: an [Install] WantedBy= section from `wantedBy` (NixOS links units
# instead, but a plain systemd host needs it for `systemctl enable`), and X-Restart-Triggers
# lists the trigger paths themselves (NixOS hashes them into one file).
{ lib }:
let
  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;

  attrsToSection =
    as:
    lib.concatStrings (
      lib.concatLists (
        lib.mapAttrsToList (
          name: value: map (x: "${name}=${toOption x}\n") (if lib.isList value then value else [ value ])
        ) as
      )
    );

  nonEmpty = lib.filterAttrs (_: v: v != [ ] && v != "");
in
{ header, service }:
let
  unit = nonEmpty {
    Description = service.description;
    After = lib.concatStringsSep " " service.after;
    Before = lib.concatStringsSep " " service.before;
    Wants = lib.concatStringsSep " " service.wants;
    Requires = lib.concatStringsSep " " service.requires;
    X-Restart-Triggers = lib.concatStringsSep " " (map toString service.restartTriggers);
  }
  // service.unitConfig;
  env = lib.filterAttrs (_: v: v != null) service.environment;
  environmentLines = lib.concatStrings (
    lib.mapAttrsToList (n: v: "Environment=${builtins.toJSON "${n}=${toString v}"}\n") env
  );
in
''
  ${header}
  [Unit]
  ${attrsToSection unit}
  [Service]
  ${environmentLines}${attrsToSection service.serviceConfig}
  [Install]
  ${attrsToSection (nonEmpty { WantedBy = lib.concatStringsSep " " service.wantedBy; })}''
