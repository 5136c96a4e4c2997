# The service built with crane. Called twice by flake.nix: plain (mock + onnx backends), and
# with `hailort` to enable the `hailo` cargo feature. `passthru` carries the shared crane
# arguments and dependency artifacts so the flake's checks reuse one buildDepsOnly.
{
  lib,
  craneLib,
  onnxruntime,
  makeWrapper,
  nasm,
  hailort ? null,
  # Pass the plain build's artifacts here to avoid compiling the dependency graph twice.
  cargoArtifacts ? null,
}:
let
  root = ../.;
  withHailo = hailort != null;

  # Cargo sources plus what build.rs and the tests read: the HailoRT C++ shim and test fixtures.
  # Nix, docs and VM-test files stay out so editing them does not rebuild the crate.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions (
      [
        (craneLib.fileset.commonCargoSources root)
        (lib.fileset.fileFilter (
          file:
          lib.any file.hasExt [
            "c"
            "cc"
            "cpp"
            "h"
            "hpp"
          ]
        ) root)
      ]
      ++ map lib.fileset.maybeMissing [
        (root + "/tests/fixtures")
        (root + "/config")
        (root + "/assets")
      ]
    );
  };

  commonArgs = {
    inherit src;
    strictDeps = true;
    pname = "hailo-clip";
    # nextest/clippy see the same feature set as the package they check.
    cargoExtraArgs = "--locked" + lib.optionalString withHailo " --features hailo";
    # mozjpeg-sys compiles libjpeg-turbo's decoder from its vendored C source (the C compiler is
    # in stdenv); nasm assembles its x86_64 SIMD (aarch64 uses the C compiler's assembler).
    nativeBuildInputs = [ nasm ];
  }
  // lib.optionalAttrs withHailo {
    buildInputs = [ hailort ];
    # Read by build.rs to compile and link the HailoRT shim.
    HAILORT_INCLUDE_DIR = "${lib.getDev hailort}/include";
    HAILORT_LIB_DIR = "${lib.getLib hailort}/lib";
  };

  depsArtifacts = if cargoArtifacts != null then cargoArtifacts else craneLib.buildDepsOnly commonArgs;
in
craneLib.buildPackage (
  commonArgs
  // {
    pname = if withHailo then "hailo-clip-hailo" else "hailo-clip";
    cargoArtifacts = depsArtifacts;
    # Tests run once, in the flake's nextest check.
    doCheck = false;
    nativeBuildInputs = commonArgs.nativeBuildInputs ++ [ makeWrapper ];
    # ONNX Runtime is loaded with dlopen at run time, so the store path must be handed over
    # explicitly; --set-default keeps an operator's own ORT_DYLIB_PATH working.
    postInstall = ''
      wrapProgram $out/bin/hailo-clip \
        --set-default ORT_DYLIB_PATH ${lib.getLib onnxruntime}/lib/libonnxruntime.so
    '';
    passthru = {
      inherit commonArgs;
      cargoArtifacts = depsArtifacts;
    };
    meta = {
      description = "CLIP zero-shot image classification service for Raspberry Pi 5 + Hailo-10H";
      mainProgram = "hailo-clip";
      license = lib.licenses.mit;
      platforms = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    };
  }
)
