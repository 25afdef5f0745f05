#!/usr/bin/env bash
# fresh-machine-check.sh — runs the README's two set-up commands, exactly as
# written, on a fresh Debian 12 with nothing but the Rust toolchain, in a
# clone of this repository without ../shared beside it (a user's clone).
#
# Usage (as root; needs debootstrap, which it installs with apt-get if missing):
#   scripts/fresh-machine-check.sh [--dir DIR] [--keep] [--no-cache] [--reverse]
#
#   --dir DIR    build the chroot in DIR (default: a new folder in /var/tmp)
#   --keep       leave the chroot in place afterwards (for a look inside)
#   --no-cache   debootstrap afresh instead of unpacking the cached base system
#   --reverse    run the second command first (the two work in either order)
#
# What it does:
#   1. a minimal Debian 12 (debootstrap --variant=minbase bookworm, with the
#      bookworm-updates and security suites a new machine has), cached as a
#      tarball in ${XDG_CACHE_HOME:-~/.cache}/arca-fresh-machine so that the
#      next run starts from the same fresh system in seconds;
#   2. copies in only rustup's folders (~/.rustup and ~/.cargo/bin, not the
#      cargo registry: crates are downloaded afresh) and the machine's CA
#      certificates, through which the package registries are reached;
#   3. clones the committed HEAD of this repository into /root/arca (no
#      ../shared beside it);
#   4. takes the two commands from the README's set-up block and runs each,
#      in order, in /root/arca, with a clean environment, in a PID and mount
#      namespace of their own (pcscd and anything else they start are killed
#      when the run ends, and the host's pcscd is not seen);
#   5. reports each command's exit code and time, and exits non-zero unless
#      both succeeded.
#
# The chroot shares the host's network. The one port a run opens, vpcd's
# virtual reader, is moved off the host's with ARCA_VPCD_PORT (set in the
# chroot's environment, not in the commands), so a pcscd on the host is left
# alone.
set -euo pipefail

say() { printf 'fresh-machine-check: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

dir=""
keep=0
use_cache=1
reverse=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a folder"; dir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-cache) use_cache=0; shift ;;
    --reverse) reverse=1; shift ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and mounts need it)"
top="$(cd "$(dirname "$0")/.." && pwd)"
git -C "$top" rev-parse --verify -q HEAD >/dev/null || die "$top is not a git repository with a commit"
readme="$top/README.md"
[ -f "$readme" ] || die "$readme is missing"

# The set-up block: the first ```sh fence after the "## Set-up" heading.
mapfile -t commands < <(awk '
  /^## Set-up/ { inside = 1; next }
  inside && /^## / { exit }
  inside && /^```sh/ { fence = 1; next }
  fence && /^```/ { exit }
  fence && NF { print }
' "$readme")
[ "${#commands[@]}" = 2 ] || die "README.md's set-up block has ${#commands[@]} commands, not 2"

rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
[ -d "$rustup_home/toolchains" ] || die "no Rust toolchain at $rustup_home"
[ -x "$cargo_home/bin/cargo" ] || die "no cargo at $cargo_home/bin"

if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap (to build the fresh Debian 12)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; } \
    || die "could not install debootstrap"
fi

if [ -z "$dir" ]; then
  dir="$(mktemp -d /var/tmp/arca-fresh.XXXXXX)"
else
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
fi
root="$(cd "$dir" && pwd)"
case "$root" in /|/usr|/usr/*|/etc|/etc/*|/root|/home) die "refusing to build a chroot in $root" ;; esac
cleanup() {
  # Nothing is mounted outside the run's own mount namespace; only files.
  if [ "$keep" = 1 ]; then say "kept the chroot in $root"; else rm -rf --one-file-system -- "$root"; fi
}
trap cleanup EXIT

mirror=http://deb.debian.org/debian
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/arca-fresh-machine"
cache="$cache_dir/bookworm-minbase.tar"
t0=$(date +%s)
if [ "$use_cache" = 1 ] && [ -f "$cache" ]; then
  say "unpacking the cached fresh Debian 12 ($cache)"
  tar -xpf "$cache" -C "$root"
else
  say "debootstrap: a minimal Debian 12 in $root (a few minutes)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
    || { tail -n 20 "$root.debootstrap.log" >&2; die "debootstrap failed (log: $root.debootstrap.log)"; }
  rm -f "$root.debootstrap.log"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* 2>/dev/null || true
  mkdir -p "$cache_dir"
  tar -cpf "$cache.tmp" -C "$root" . && mv "$cache.tmp" "$cache"
fi
say "base system ready in $(( $(date +%s) - t0 )) s"

# Only the Rust toolchain, the CA certificates and name resolution.
mkdir -p "$root/root/.cargo"
cp -a "$rustup_home" "$root/root/.rustup"
cp -a "$cargo_home/bin" "$root/root/.cargo/bin"
[ -f "$cargo_home/env" ] && cp -a "$cargo_home/env" "$root/root/.cargo/env"
mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
cp -a /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
if [ -d /usr/local/share/ca-certificates ]; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
[ -f /etc/hosts ] && cp -L /etc/hosts "$root/etc/hosts"

# A user's clone: the committed HEAD, nothing beside it.
git clone -q --no-local "$top" "$root/root/arca"
[ ! -e "$root/root/shared" ] || die "a shared folder exists beside the clone"
say "cloned $(git -C "$root/root/arca" log -1 --format='%h %s' | cut -c1-70)"

# The run inside the chroot: each command in a fresh bash, timed.
{
  echo '#!/bin/bash'
  echo 'cd /root/arca || exit 99'
  echo 'mount -t proc proc /proc; mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts 2>/dev/null'
  echo 'mount --bind /dev/pts/ptmx /dev/ptmx 2>/dev/null; mount -t sysfs -o ro sysfs /sys 2>/dev/null'
  echo 'mkdir -p /run /tmp; chmod 1777 /tmp'
  order=(1 2)
  [ "$reverse" = 1 ] && order=(2 1)
  for i in "${order[@]}"; do
    c="${commands[$((i - 1))]}"
    printf 'echo "=== command %d:" %q\n' "$i" "$c"
    echo 't0=$(date +%s)'
    printf 'bash -c %q </dev/null\n' "$c"
    echo 'rc=$?'
    printf 'echo "%d $rc $(( $(date +%%s) - t0 ))" >>/root/fresh-results\n' "$i"
  done
} >"$root/root/fresh-run.sh"
chmod +x "$root/root/fresh-run.sh"
: >"$root/root/fresh-results"

mkdir -p "$root/dev" "$root/proc" "$root/sys"
say "running the README's two commands in $root (output follows)"
set +e
unshare --mount --pid --fork --propagation private bash -c '
  root=$1
  mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
  exec chroot "$root" /usr/bin/env -i \
    HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 TERM=xterm-256color \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    ARCA_VPCD_PORT=36963 \
    /root/fresh-run.sh
' _ "$root"
set -e

echo
echo "fresh-machine-check: Debian 12 (debootstrap minbase), Rust toolchain only, no ../shared$([ "$reverse" = 1 ] && echo ', command 2 first')"
ok=0
i=0
for c in "${commands[@]}"; do
  i=$((i + 1))
  line="$(awk -v n="$i" '$1 == n { print $2, $3 }' "$root/root/fresh-results")"
  if [ -z "$line" ]; then
    printf '  command %d: did not finish: %s\n' "$i" "$c"
    ok=1
    continue
  fi
  read -r rc secs <<<"$line"
  printf '  command %d: exit %s in %s s: %s\n' "$i" "$rc" "$secs" "$c"
  [ "$rc" = 0 ] || ok=1
done
[ "$ok" = 0 ] && echo "both commands succeeded" || echo "FAILED"
exit "$ok"
