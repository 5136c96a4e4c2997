#!/usr/bin/env bash
# Usage: sudo packaging/install.sh [PATH/TO/hailo-clip_VERSION_ARCH.deb]
#
# Installs or upgrades hailo-clip on Debian / Raspberry Pi OS from its .deb and checks that it
# serves. Default package: the newest hailo-clip_*_<arch>.deb next to this script, in the current
# directory or in target/deb/ (packaging/build-deb.sh writes it there).
#
# Before changing anything it checks: root, OS, architecture, the Hailo packages (hailo build),
# the config (/etc/hailo/hailo-clip.yaml, kept if present, else the package's default) renders,
# `hailo-clip doctor` finds the driver, library and firmware in place and of one version, and
# the configured port is free (or held by hailo-clip itself). Any failure ends with what to do
# and a non-zero exit, and leaves an existing install running as it was.
# Then: installs the .deb (apt, keeping an edited config), applies the config, fetches the model
# files (`hailo-clip models fetch`, when backend.hailo.downloads lists some), starts the service
# and waits for /health 200. Safe to run again: a second run changes nothing and says so.
#
# Environment (for tests): HAILO_CLIP_OS_RELEASE (default /etc/os-release),
# HAILO_CLIP_HEALTH_TIMEOUT (seconds, default 120).
set -euo pipefail
yaml=/etc/hailo/hailo-clip.yaml
json=/etc/xdg/hailo-clip/hailo-clip.json
svc=hailo-clip.service
changes=()

say() { echo "install.sh: $*"; }
die() { # die PROBLEM FIX
  echo "install.sh: FAILED: $1" >&2
  echo "install.sh: fix: $2" >&2
  [ "${touched:-0}" = 1 ] || echo "install.sh: nothing was changed" >&2
  exit 1
}

# --- who and where
[ "$(id -u)" = 0 ] || die "must run as root (it installs a package and a system service)" "sudo $0 $*"
os_release=${HAILO_CLIP_OS_RELEASE:-/etc/os-release}
os_id=$(. "$os_release" 2>/dev/null && echo "${ID:-} ${ID_LIKE:-}")
os_name=$(. "$os_release" 2>/dev/null && echo "${PRETTY_NAME:-unknown}")
case " $os_id " in
*" debian "* | *" raspbian "*) ;;
*) die "this installer is for Debian and Raspberry Pi OS; this system is $os_name" \
  "on NixOS use the flake's module (docs/nixos.md); elsewhere run the binary by hand (README)" ;;
esac
command -v dpkg >/dev/null && command -v apt-get >/dev/null ||
  die "dpkg/apt-get not found on $os_name" "install hailo-clip on a Debian-based system with apt"
arch=$(dpkg --print-architecture)
case $arch in
amd64 | arm64) ;;
armhf | armel | i386) die "this system is $arch (32-bit); hailo-clip is built for arm64 and amd64" \
  "install the 64-bit Raspberry Pi OS (the Hailo-10H packages are arm64 only)" ;;
*) die "architecture $arch is not supported (arm64 and amd64 are)" "use an arm64 or amd64 system" ;;
esac

# --- the package
deb=${1:-}
if [ -z "$deb" ]; then
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  deb=$(ls -1 "$here"/hailo-clip_*_"$arch".deb ./hailo-clip_*_"$arch".deb "$here"/../target/deb/hailo-clip_*_"$arch".deb 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$deb" ] || die "no hailo-clip_*_$arch.deb next to $0, in $(pwd) or in target/deb/" \
    "build it with packaging/build-deb.sh --arch $arch, or pass its path: sudo $0 PATH.deb"
fi
[ -f "$deb" ] || die "$deb does not exist" "pass the path of a hailo-clip .deb"
deb=$(realpath "$deb")
pkg=$(dpkg-deb -f "$deb" Package 2>/dev/null) || die "$deb is not a Debian package" "pass the path of a hailo-clip .deb"
[ "$pkg" = hailo-clip ] || die "$deb is package $pkg, not hailo-clip" "pass the path of a hailo-clip .deb"
deb_arch=$(dpkg-deb -f "$deb" Architecture)
version=$(dpkg-deb -f "$deb" Version)
[ "$deb_arch" = "$arch" ] || die "$(basename "$deb") is built for $deb_arch, this system is $arch" \
  "use hailo-clip_${version}_$arch.deb (packaging/build-deb.sh --arch $arch)"

# --- the Hailo packages, for the build linked against libhailort
depends=$(dpkg-deb -f "$deb" Depends)
if grep -q 'h10-hailort' <<<"$depends"; then
  want=$(grep -o 'h10-hailort (>= [^)]*)' <<<"$depends" | sed 's/.*>= \(.*\))/\1/')
  status=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' h10-hailort 2>/dev/null || true)
  case $status in
  ii*) ;;
  *) die "the Hailo packages are not installed (h10-hailort, libhailort $want, is missing)" \
    "sudo apt install dkms hailo-h10-all, then reboot, then run $0 again" ;;
  esac
  have=${status#*|}
  dpkg --compare-versions "$have" ge "$want" && dpkg --compare-versions "$have" lt "$(awk -F. '{print $1"."$2"."$3+1}' <<<"$want")~" ||
    die "h10-hailort is $have but this hailo-clip was built against libhailort $want (library, driver, firmware and HEFs must be one version)" \
      "sudo apt install h10-hailort=$want h10-hailort-pcie-driver=$want (the exact version strings: apt policy h10-hailort), then reboot; or build hailo-clip against $have (HAILORT_VERSION=${have%%-*} packaging/build-deb.sh --flavor hailo)"
fi

# --- the new binary and the config it will run with, checked before anything changes
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/pkg"
newbin=$tmp/pkg/usr/bin/hailo-clip
config=$yaml
[ -f "$yaml" ] || config=$tmp/pkg$yaml
if ! err=$("$newbin" render-config --input "$config" --output "$tmp/new.json" 2>&1); then
  die "$config is invalid: $err" \
    "correct $config (every key and its default: /usr/share/doc/hailo-clip/defaults.json), then run $0 again"
fi
port=$(sed -n 's/^ *"port": *\([0-9]*\).*/\1/p' "$tmp/new.json" | head -n 1)
host=$(sed -n 's/^ *"host": *"\([^"]*\)".*/\1/p' "$tmp/new.json" | head -n 1)

# Checks of the platform (driver, library, firmware versions; ONNX Runtime); missing model files
# are not fatal yet: they are fetched below.
doctor_out=$(XDG_DATA_HOME=/var/lib "$newbin" doctor --config "$tmp/new.json" 2>&1 || true)
fatal=$(grep -E '^FAIL (device node|kernel module|device|libhailort|firmware|onnxruntime):' <<<"$doctor_out" || true)
if [ -n "$fatal" ]; then
  echo "$doctor_out" >&2
  first=$(head -n 1 <<<"$fatal")
  fix=$(grep -o ' -> fix: .*' <<<"$first" | sed 's/ -> fix: //')
  # Raspberry Pi OS's packages for doctor's generic advice.
  case $first in
  "FAIL libhailort:"*) fix="sudo apt install --reinstall h10-hailort h10-hailort-pcie-driver (library and driver of one release), then reboot${fix:+ (doctor: $fix)}" ;;
  "FAIL firmware:"*) fix="sudo apt install --reinstall h10-hailort-pcie-driver (driver and firmware of libhailort's release), then power the Pi off and on${fix:+ (doctor: $fix)}" ;;
  "FAIL kernel module:"* | "FAIL device node:"*) fix="sudo apt install dkms hailo-h10-all, then reboot${fix:+ (doctor: $fix)}" ;;
  esac
  die "hailo-clip doctor: ${first%% -> fix:*}" "${fix:-see the doctor report above}"
fi

# The port: free, or held by the running hailo-clip.service.
port_holder() { # prints "PID COMM" of the process listening on TCP port $1, if any
  local hex inodes pid fd link main i
  hex=$(printf '%04X' "$1")
  inodes=$(awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" {print $10}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  [ -n "$inodes" ] || return 0
  # The running service's own process first: the usual holder on a re-run.
  main=$(systemctl show -p MainPID --value "$svc" 2>/dev/null || true)
  for fd in /proc/"${main:-0}"/fd/* /proc/[0-9]*/fd/*; do
    link=$(readlink "$fd" 2>/dev/null) || continue
    case $link in socket:\[*) ;; *) continue ;; esac
    for i in $inodes; do
      if [ "$link" = "socket:[$i]" ]; then
        pid=${fd#/proc/}
        pid=${pid%%/*}
        echo "$pid $(cat "/proc/$pid/comm" 2>/dev/null)"
        return 0
      fi
    done
  done
  echo "? unknown"
}
holder=$(port_holder "$port")
if [ -n "$holder" ]; then
  hpid=${holder%% *}
  if ! grep -qs "/$svc\$" "/proc/$hpid/cgroup"; then
    die "port $port (server.port) is in use by PID $holder" \
      "stop that program, or set server.port in $yaml to a free port, then run $0 again"
  fi
fi
say "checks passed: $os_name, $arch, $(basename "$deb"), config $config, port $port"

# --- install or upgrade
touched=1
installed=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' hailo-clip 2>/dev/null || true)
if [ "$installed" = "ii |$version" ]; then
  say "package: hailo-clip $version is already installed"
else
  say "package: installing hailo-clip $version${installed:+ (was ${installed#*|})}"
  # confold: a config the user edited (or wrote before the first install) is kept.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$deb" >"$tmp/apt.log" 2>&1 || {
    cat "$tmp/apt.log" >&2
    die "apt-get install $deb failed (output above)" "fix what apt reports, then run $0 again"
  }
  grep -E '^hailo-clip:' "$tmp/apt.log" || true
  changes+=("installed hailo-clip $version")
fi
systemctl daemon-reload

# --- config (the package's postinst renders it too; this covers an edit since)
apply=$(hailo-clip-apply-config --no-restart) || die "hailo-clip-apply-config failed" "see the message above"
restart=0
if [ "$apply" != "config unchanged ($json)" ]; then
  echo "$apply"
  changes+=("applied $yaml")
  restart=1
fi

# --- model files
if ! grep -q '"downloads": \[\]' "$json"; then
  install -d -o hailo-clip -g hailo-clip -m 0700 /var/lib/hailo-clip
  fetch=$(runuser -u hailo-clip -- env XDG_CONFIG_HOME=/etc/xdg XDG_DATA_HOME=/var/lib hailo-clip models fetch 2>&1) ||
    die "hailo-clip models fetch failed: $fetch" "check the network and backend.hailo.downloads in $yaml, then run $0 again"
  echo "$fetch"
  if grep -q '^downloaded ' <<<"$fetch"; then
    changes+=("fetched model files")
    restart=1
  fi
fi

# --- service
if ! systemctl is-enabled --quiet "$svc"; then
  systemctl enable "$svc"
  changes+=("enabled $svc")
fi
# The package's postinst already (re)started it after an install; restart for what came since.
if [ "$restart" = 1 ] || ! systemctl is-active --quiet "$svc"; then
  systemctl restart "$svc" || true
  changes+=("restarted $svc")
fi
case $host in 0.0.0.0 | :: | "") probe=127.0.0.1 ;; *) probe=$host ;; esac
health() { # prints the HTTP status of GET /health, or nothing
  timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && head -n 1 <&3' \
    "$probe" "$port" 2>/dev/null | awk '{print $2}'
}
deadline=$((SECONDS + ${HAILO_CLIP_HEALTH_TIMEOUT:-120}))
until [ "$(health)" = 200 ]; do
  if [ $SECONDS -ge $deadline ]; then
    XDG_CONFIG_HOME=/etc/xdg XDG_DATA_HOME=/var/lib hailo-clip doctor >&2 || true
    journalctl -u "$svc" -n 20 --no-pager >&2 || true
    die "hailo-clip.service is not healthy after ${HAILO_CLIP_HEALTH_TIMEOUT:-120} s (doctor and journal above)" \
      "fix what doctor reports (-> fix:), then: sudo systemctl restart hailo-clip"
  fi
  sleep 1
done

if [ ${#changes[@]} -eq 0 ]; then
  say "no change: hailo-clip $version is installed and running, config unchanged, /health 200 on $probe:$port"
else
  say "done: $(IFS=';' && echo "${changes[*]}" | sed 's/;/; /g'); /health 200 on $probe:$port"
fi
