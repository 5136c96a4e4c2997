# HailoRT (libhailort + hailortcli) for the Hailo-10H, built from source at the version
# pinned in ./hailo-versions.nix. Outputs: include/hailo, lib/libhailort.so*,
# lib/cmake/HailoRT (find_package(HailoRT 5) -> HailoRT::libhailort), bin/hailortcli.
# libhailort installs no pkg-config file.
{
  lib,
  stdenv,
  fetchFromGitHub,
  fetchFromGitLab,
  cmake,
}:
let
  pins = import ./hailo-versions.nix;

  # Upstream's CMake pulls these with FetchContent at configure time, which the sandbox
  # forbids. They are fetched here at the same revisions and copied to the SOURCE_DIR each
  # hailort/cmake/external/<name>.cmake declares; HAILO_OFFLINE_COMPILATION then sets
  # FETCHCONTENT_FULLY_DISCONNECTED so CMake uses them as they are.
  fetchDep =
    name: pin:
    (if name == "eigen" then fetchFromGitLab else fetchFromGitHub) {
      name = "hailort-dep-${name}";
      inherit (pin)
        owner
        repo
        rev
        hash
        ;
    };
  deps = lib.mapAttrs fetchDep pins.hailortDeps;
in
stdenv.mkDerivation (finalAttrs: {
  pname = "hailort";
  inherit (pins) version;

  src = fetchFromGitHub {
    inherit (pins.hailort)
      owner
      repo
      rev
      hash
      ;
  };

  nativeBuildInputs = [ cmake ];

  postPatch = ''
    ${lib.concatStrings (
      lib.mapAttrsToList (name: src: ''
        mkdir -p hailort/external/${name}-src
        cp -r ${src}/. hailort/external/${name}-src/
        chmod -R u+w hailort/external/${name}-src
      '') deps
    )}

    # protoc is built by a nested CMake run under `env -i` with a fixed FHS PATH, where
    # neither cmake nor the compiler wrapper exist in the sandbox.
    substituteInPlace hailort/cmake/execute_cmake.cmake \
      --replace-fail 'PATH=/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin bash -l -c' \
                     'PATH=$ENV{PATH} bash -c'

    # The nested protobuf install would pick lib64 on a non-Debian 64-bit host, while
    # protobuf.cmake looks for its config under lib/. CMake >= 4 also rejects the
    # cmake_minimum_required of the older dependencies without a policy floor.
    substituteInPlace hailort/cmake/external/protobuf.cmake \
      --replace-fail '-DCMAKE_INSTALL_PREFIX=''${PROTOBUF_INSTALL_DIR}' \
                     '-DCMAKE_INSTALL_PREFIX=''${PROTOBUF_INSTALL_DIR} -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_POLICY_VERSION_MINIMUM=3.5'

    # `$<BUILD_INTERFACE: dir>` with a space is split into two list elements; what that
    # adds to the include path is an accident. Without it, the one bare "serializer.hpp"
    # include (two files of that name exist) needs the directory every sibling file uses.
    grep -rlZ --include=CMakeLists.txt '\$<BUILD_INTERFACE: ' hailort \
      | xargs -0 -r sed -i 's/\$<BUILD_INTERFACE: /$<BUILD_INTERFACE:/g'
    substituteInPlace hailort/libhailort/src/device/device_hrpc_client.cpp \
      --replace-fail '#include "serializer.hpp"' '#include "hrpc_protocol/serializer.hpp"'
  '';

  cmakeFlags = [
    (lib.cmakeBool "HAILO_OFFLINE_COMPILATION" true)
    (lib.cmakeBool "HAILO_BUILD_EXAMPLES" false)
    (lib.cmakeBool "HAILO_BUILD_GSTREAMER" false)
    (lib.cmakeBool "HAILO_BUILD_UT" false)
    (lib.cmakeBool "HAILO_BUILD_HAILORT_SERVER" false)
    # Needs cargo and a network crate fetch; only GenAI (LLM) models use it.
    (lib.cmakeBool "HAILO_BUILD_CLIENT_TOKENIZER" false)
    (lib.cmakeBool "HAILO_COMPILE_WARNING_AS_ERROR" false)
    (lib.cmakeFeature "CMAKE_POLICY_VERSION_MINIMUM" "3.5")
  ];

  # install(TARGETS libhailort CONFIGURATIONS Release ...) installs nothing otherwise.
  cmakeBuildType = "Release";

  # Runs hailortcli, so only when the build machine can execute the result.
  doInstallCheck = stdenv.buildPlatform.canExecute stdenv.hostPlatform;
  installCheckPhase = ''
    runHook preInstallCheck
    test -f $out/include/hailo/hailort.h
    test -f $out/include/hailo/infer_model.hpp
    test -f $out/lib/cmake/HailoRT/HailoRTConfig.cmake
    test -e $out/lib/libhailort.so
    $out/bin/hailortcli --version | grep -F '${finalAttrs.version}'
    runHook postInstallCheck
  '';

  passthru = {
    inherit deps;
    # Other Hailo packages and modules/hailo.nix compare against this.
    hailoVersion = finalAttrs.version;
  };

  meta = {
    description = "HailoRT runtime library and CLI for Hailo-10H accelerators";
    homepage = "https://github.com/hailo-ai/hailort";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "hailortcli";
  };
})
