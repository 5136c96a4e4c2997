# The Hailo-10H PCIe kernel driver `hailo1x_pci` (hailo-ai/hailort-drivers, linux/pcie),
# built out of tree against `kernel`. Use through the kernel's package set so it is rebuilt
# with every kernel change:  config.boot.kernelPackages.callPackage ./hailo-driver.nix { }
#
# The version must equal libhailort's exactly (hailort_driver.cpp refuses any other
# major.minor.revision with HAILO_INVALID_DRIVER_VERSION), and the on-chip endpoint
# driver loaded with the firmware must equal it too (soc.c "Mismatch Driver version").
{
  stdenv,
  lib,
  kernel,
  fetchFromGitHub,
  # Provided by the kernel's package set (ARCH, CROSS_COMPILE, compiler choice).
  kernelModuleMakeFlags ? kernel.commonMakeFlags or [ ],
}:
let
  pins = import ./hailo-versions.nix;
in
stdenv.mkDerivation (finalAttrs: {
  pname = "hailo1x-pci";
  version = "${pins.version}-${kernel.version}";

  src = fetchFromGitHub {
    inherit (pins.driver)
      owner
      repo
      rev
      hash
      ;
  };

  nativeBuildInputs = kernel.moduleBuildDependencies;
  hardeningDisable = [
    "pic"
    "format"
  ];

  # A warning from a newer compiler or kernel must not take the whole system build down.
  postPatch = ''
    substituteInPlace linux/pcie/Kbuild --replace-fail 'ccflags-y      += -Werror' ""
  '';

  # Kbuild reaches into ../../common, ../vdma and ../utils, so M= points into the full tree.
  # Calling Kbuild directly (not the Makefile's `all`) skips its `uname -r` and
  # /lib/modules lookups, which describe the build machine, not the target kernel.
  makeFlags = kernelModuleMakeFlags ++ [
    "-C"
    "${kernel.dev}/lib/modules/${kernel.modDirVersion}/build"
    "M=$(PWD)/linux/pcie"
  ];
  buildFlags = [ "modules" ];
  enableParallelBuilding = true;

  installPhase = ''
    runHook preInstall
    install -D -m444 linux/pcie/hailo1x_pci.ko \
      $out/lib/modules/${kernel.modDirVersion}/extra/hailo1x_pci.ko
    runHook postInstall
  '';

  passthru = {
    moduleName = "hailo1x_pci";
    # The bare Hailo version (without the kernel suffix) for the version assertion.
    hailoVersion = pins.version;
  };

  meta = {
    description = "Hailo-10H PCIe driver (hailo1x_pci) for kernel ${kernel.version}";
    homepage = "https://github.com/hailo-ai/hailort-drivers";
    license = lib.licenses.gpl2Only;
    platforms = lib.platforms.linux;
  };
})
