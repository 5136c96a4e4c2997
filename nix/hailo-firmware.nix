# Hailo-10H device firmware (SCU firmware, u-boot, kernel fitImage and root image of the
# chip's own CPU), which hailo1x_pci pushes to the device at probe with
# request_firmware_direct() from /lib/firmware/hailo/hailo10h/. Fetched from Hailo's own
# bucket at build time, never re-hosted: the EULA allows binary redistribution only in
# conjunction with Hailo products.
{
  lib,
  stdenvNoCC,
  fetchurl,
}:
let
  pins = import ./hailo-versions.nix;
in
stdenvNoCC.mkDerivation {
  pname = "hailo10h-firmware";
  inherit (pins) version;

  src = fetchurl {
    inherit (pins.firmware) url hash;
  };

  # The tarball has no top-level directory.
  sourceRoot = ".";

  # Install every file rather than a list: which u-boot-<sku>.dtb.signed the driver asks
  # for depends on the SKU it reads from the board, and the set of SKUs grows per release.
  installPhase = ''
    runHook preInstall
    dir=$out/lib/firmware/hailo/hailo10h
    mkdir -p $dir
    find . -type f ! -name env-vars -exec install -m444 -t $dir {} +
    # The files the driver cannot boot the chip without (common/pcie_common.c).
    for f in customer_certificate.bin scu_fw.bin u-boot-spl.bin fitImage image-fs; do
      test -f $dir/$f || { echo "firmware tarball lacks $f" >&2; exit 1; }
    done
    ls $dir/u-boot-*.dtb.signed >/dev/null
    runHook postInstall
  '';

  dontFixup = true;

  passthru.hailoVersion = pins.version;

  meta = {
    description = "Firmware for the Hailo-10H AI accelerator (loaded by hailo1x_pci)";
    homepage = "https://github.com/hailo-ai/hailort-drivers";
    # Needs nixpkgs.config.allowUnfreePredicate in the host (hosts/pi5 allows it by name).
    license = [
      lib.licenses.unfree
      {
        shortName = "hailo-fw-eula";
        fullName = "Hailo-10H firmware licence (binary-only redistribution with Hailo products)";
        url = "https://github.com/hailo-ai/hailort-drivers/blob/master/Hailo10H%20FW%20License";
        free = false;
        redistributable = false;
      }
    ];
    sourceProvenance = [ lib.sourceTypes.binaryFirmware ];
    platforms = lib.platforms.linux;
  };
}
