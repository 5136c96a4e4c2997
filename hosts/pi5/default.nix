# nixosConfigurations.pi5: a Raspberry Pi 5 with the Hailo-10H AI HAT+ 2 running hailo-clip.
#   image:   nix build .#nixosConfigurations.pi5.config.system.build.sdImage
#   deploy:  nixos-rebuild switch --flake .#pi5 --target-host root@<host>
# See docs/deploy-pi5.md. The values a user must change live in ./configuration.nix.
{ inputs, self }:
inputs.nixos-raspberrypi.lib.nixosSystem {
  # nixos-raspberrypi's board modules take the flake as a module argument, and its
  # nixosSystem asserts that specialArgs provides it.
  specialArgs = {
    inherit (inputs) nixos-raspberrypi;
  };
  modules = [
    (
      { nixos-raspberrypi, ... }:
      {
        imports = with nixos-raspberrypi.nixosModules; [
          raspberry-pi-5.base
          # The bcm2712 kernel runs 16K pages; this fixes jemalloc users for that.
          raspberry-pi-5.page-size-16k
          # Provides config.system.build.sdImage. Kept in the deployed configuration too,
          # so `nixos-rebuild switch` keeps the image's filesystem layout.
          sd-image
        ];
      }
    )
    self.nixosModules.hailo
    self.nixosModules.default
    ./models.nix
    ./configuration.nix
  ];
}
