# The one place that pins the Hailo platform. libhailort refuses a driver whose
# major.minor.revision differs from its own, and the driver refuses an on-chip
# endpoint (firmware) of another version, so library, driver and firmware move together.
#
# 5.1.1, not 5.2.0: it is what Raspberry Pi ships for the AI HAT+ 2 (`h10-hailort`
# 5.1.1), what hailo-apps uses for Hailo-10H (model zoo v5.1.1), and a third-party NixOS
# packaging reports driver + firmware 5.1.1 working on a Pi 5 + AI HAT+ 2 while a 5.3.0
# attempt failed with "Mismatch Driver version ... pci_ep driver 5:1:1". The InferModel /
# VDevice headers the service's shim uses are byte-identical in 5.1.1 and 5.2.0.
#
# Bumping: change `version` and EVERY rev/hash below in the same commit. A
# fixed-output derivation is keyed by its hash, so a new rev with an old hash
# silently builds the old source.
#
# How the hashes were obtained (see docs/deploy-pi5.md, "Pinned sources"):
#   computed = `git archive <rev>` of a GitHub snapshot, then `nix hash path`; the
#              same method reproduced four hashes independently published elsewhere.
#   borrowed = copied from other Nix packaging of the same rev/URL; not recomputed here.
rec {
  version = "5.1.1";

  hailort = {
    owner = "hailo-ai";
    repo = "hailort";
    # tag v5.1.1
    rev = "1adb3306b57f0bc44166a5ecb1b87c4c116ae0e7";
    hash = "sha256-RZfYkgnXf9dJ2FKfvgAJb8VfdrpplRN5XhsZ0g8Vqn4="; # computed
  };

  driver = {
    owner = "hailo-ai";
    repo = "hailort-drivers";
    # tag v5.1.1
    rev = "0f7b9cac89e6b559ce825e04b5b017c820a7b080";
    # computed; also matches an independent NixOS packaging of v5.1.1
    hash = "sha256-fPLyDTuOxFDOj6Sj1jVAQ+GpQyXSmMma05Rw1PwzmIc=";
  };

  firmware = {
    # The URL hailort-drivers' download_firmware_hailo10h.sh fetches; Hailo's own bucket.
    url = "https://hailo-hailort.s3.eu-west-2.amazonaws.com/Hailo10H/${version}/FW/hailo10h_fw.tar.gz";
    # borrowed from a third-party NixOS packaging of this exact URL (not downloadable
    # here). If it is wrong, the build stops with the right hash: paste it here.
    hash = "sha256-S+rbzR9coXt/RgFojkLH/5MKwXcEDNaHuDpFZ7W+Ufw=";
  };

  # HailoRT's CMake FetchContent dependencies (hailort/cmake/external/*.cmake at the
  # tag above). Only those the default libhailort + hailortcli build includes.
  hailortDeps = {
    protobuf = {
      owner = "protocolbuffers";
      repo = "protobuf";
      rev = "f0dc78d7e6e331b8c6bb2d5283e06aa26883ca7c"; # v21.12
      hash = "sha256-VZQEFHq17UsTH5CZZOcJBKiScGV2xPJ/e6gkkVliRCU="; # computed
    };
    spdlog = {
      owner = "gabime";
      repo = "spdlog";
      rev = "27cb4c76708608465c413f6d0e6b8d99a4d84302"; # v1.14.1
      # borrowed: nixpkgs spdlog 1.14.1 and nix-hailort (the snapshot here lacks the commit)
      hash = "sha256-F7khXbMilbh5b+eKnzcB0fPPWQqUHqAYPWJb83OnUKQ=";
    };
    readerwriterqueue = {
      owner = "cameron314";
      repo = "readerwriterqueue";
      rev = "435e36540e306cac40fcfeab8cc0a22d48464509"; # v1.0.3
      hash = "sha256-dMHT21htCuMiu2sonYEPigmPFpk7a6OYMYXPCuTLA2o="; # computed
    };
    xxhash = {
      owner = "Cyan4973";
      repo = "xxHash";
      rev = "bbb27a5efb85b92a0486cf361a8635715a53f6ba"; # v0.8.2
      # borrowed: nixpkgs xxHash 0.8.2 and nix-hailort (the snapshot here lacks a >4 MiB file)
      hash = "sha256-kofPs01jb189LUjYHHt+KxDifZQWl0Hm779711mvWtI=";
    };
    eigen = {
      # GitLab, not GitHub: fetched with fetchFromGitLab.
      owner = "libeigen";
      repo = "eigen";
      rev = "3147391d946bb4b6c68edd901f2add6ac1f31f8c"; # 3.4.0
      # borrowed: nixpkgs eigen 3.4.0 and nix-hailort
      hash = "sha256-1/4xMetKMDOgZgzz3WMxfHUEpmdAm52RqZvz6i0mLEw=";
    };
    json = {
      owner = "nlohmann";
      repo = "json";
      rev = "9cca280a4d0ccf0c08f47a99aa71d1b0e52f8d03"; # v3.11.3
      hash = "sha256-7F0Jon+1oWL7uqet5i1IgHX0fUw/+z0QwEcA3zs5xHg="; # computed
    };
    minja = {
      owner = "google";
      repo = "minja";
      rev = "58568621432715b0ed38efd16238b0e7ff36c3ba";
      hash = "sha256-kvFZdjpbRji2zaDo30+cBCPNa4arhFAQhSTfkt9SgRo="; # computed
    };
    cli11 = {
      owner = "hailo-ai";
      repo = "CLI11";
      rev = "ae78ac41cf225706e83f57da45117e3e90d4a5b4"; # 2.2.0 + hailo completion
      hash = "sha256-KGoPg8vIIq3Ue0VLrmz/rxWVkDJ+27XWJki+iJ0o7uw="; # computed
    };
    dotwriter = {
      owner = "hailo-ai";
      repo = "DotWriter";
      rev = "e5fa8f281adca10dd342b1d32e981499b8681daf";
      hash = "sha256-1cJ23AqM+9aYxGVM07nkkY77xClii4znVMCFbf+Sdio="; # computed
    };
  };

  # HEFs must be compiled by a Dataflow Compiler of the runtime's major.minor
  # (hef.cpp validate_hef_version), so the zoo version follows `version`.
  modelZoo = {
    version = "v${version}";
    compiledBaseUrl = "https://hailo-model-zoo.s3.eu-west-2.amazonaws.com/ModelZoo/Compiled/v${version}/hailo10h";
  };
}
