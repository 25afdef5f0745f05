#!/usr/bin/env bash
# softhsm-setup.sh — throw-away SoftHSM tokens for arca rehearsals and tests.
#
# Usage:
#   eval "$(./softhsm-setup.sh --token root-1 --token root-2)"
#   eval "$(./softhsm-setup.sh --tokens 3)"          # tokens root-1 … root-3
#   ./softhsm-setup.sh --clean                        # remove the folder
#
# Options:
#   --dir DIR          folder for the tokens and softhsm2.conf
#                      (default: ${ARCA_SOFTHSM_DIR:-$HOME/.local/share/arca/softhsm})
#   --token LABEL      create a token with this label (repeatable)
#   --tokens N         create tokens root-1 … root-N
#   --pin-file FILE    user PIN for new tokens, read from FILE (first line)
#   --reset            delete existing tokens in DIR first
#   --clean            delete DIR and exit
#   -h, --help         this text
#
# On Debian it first installs, with apt-get, what building and running arca
# need and is missing (SoftHSM, OpenSC, the PC/SC library and pkg-config, a C
# compiler), saying in one line what and why.
#
# Only the `export …` lines go to stdout, so `eval "$(…)"` works; everything
# else goes to stderr. Re-running keeps existing tokens (a label that exists
# already is left alone) unless --reset is given.
#
# PINs: without --pin-file the user PIN is the REHEARSAL PIN 123456. It is
# public, it protects nothing, and it must never be used on a real token. The
# user PIN is stored in DIR/user-pin (mode 0600) so that arca can read it
# through `pin-source=file:DIR/user-pin`. The SO PIN is random and stored in
# DIR/so-pin (mode 0600). PINs are never passed on a command line or in an
# environment variable: softhsm2-util reads them from a pseudo-terminal.
#
# This is for SoftHSM only. SoftHSM keeps keys in plain files under DIR and
# never locks a PIN; see docs/hardware.md for real devices.
set -euo pipefail

REHEARSAL_PIN=123456
MODULE_CANDIDATES=(
  /usr/lib/softhsm/libsofthsm2.so
  /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so
  /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so
  /usr/local/lib/softhsm/libsofthsm2.so
)

say() { printf 'softhsm-setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; }

dir="${ARCA_SOFTHSM_DIR:-${HOME:-/root}/.local/share/arca/softhsm}"
labels=()
pin_file=""
reset=0
clean=0

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a folder"; dir="$2"; shift 2 ;;
    --dir=*) dir="${1#--dir=}"; shift ;;
    --token) [ $# -ge 2 ] || die "--token needs a label"; labels+=("$2"); shift 2 ;;
    --token=*) labels+=("${1#--token=}"); shift ;;
    --tokens|--tokens=*)
      if [ "$1" = --tokens ]; then [ $# -ge 2 ] || die "--tokens needs a number"; n="$2"; shift 2
      else n="${1#--tokens=}"; shift; fi
      case "$n" in ''|*[!0-9]*) die "--tokens needs a number, not '$n'" ;; esac
      for i in $(seq 1 "$n"); do labels+=("root-$i"); done ;;
    --pin-file) [ $# -ge 2 ] || die "--pin-file needs a file"; pin_file="$2"; shift 2 ;;
    --pin-file=*) pin_file="${1#--pin-file=}"; shift ;;
    --reset) reset=1; shift ;;
    --clean) clean=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown option '$1'" ;;
  esac
done

[ -n "$dir" ] || die "empty --dir"
case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac
case "$dir" in
  /|/var/lib/softhsm|/var/lib/softhsm/*|/etc/softhsm|/etc/softhsm/*)
    die "refusing to use the system folder $dir; pick a private folder" ;;
esac

if [ "$clean" = 1 ]; then
  if [ -e "$dir" ]; then
    [ -f "$dir/softhsm2.conf" ] || die "$dir has no softhsm2.conf; not removing a folder this script did not make"
    rm -rf -- "$dir"
    say "removed $dir"
  else
    say "nothing to remove at $dir"
  fi
  exit 0
fi

find_module() {
  local m
  for m in "${MODULE_CANDIDATES[@]}"; do
    if [ -e "$m" ]; then printf '%s\n' "$m"; return 0; fi
  done
  return 1
}

# What building and running arca need on Debian, each with the reason it is
# installed; only the missing ones are installed, announced in one line.
need_packages() {
  local p why
  while read -r p why; do
    [ -n "$p" ] || continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || printf '%s\t%s\n' "$p" "$why"
  done <<'PKGS'
softhsm2 SoftHSM, the throw-away tokens of rehearsals
opensc pkcs11-tool, to look at tokens
libpcsclite-dev the PC/SC library arca's YubiKey support links against
pkg-config to find that library when building
gcc the C compiler and linker cargo builds with
libc6-dev the C library headers for building
PKGS
}
if command -v dpkg-query >/dev/null 2>&1; then
  missing="$(need_packages)"
  if [ -n "$missing" ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get is not available; install by hand: $(printf '%s\n' "$missing" | cut -f1 | tr '\n' ' ')"
    sudo_cmd=()
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null 2>&1 || die "run as root or install by hand: apt-get install $(printf '%s\n' "$missing" | cut -f1 | tr '\n' ' ')"
      sudo_cmd=(sudo)
    fi
    say "installing $(printf '%s\n' "$missing" | cut -f1 | tr '\n' ' ')($(printf '%s\n' "$missing" | cut -f2 | paste -sd ';' | sed 's/;/; /g'))"
    # apt's own progress goes to a log; its last lines are shown if it fails
    log="$(mktemp "${TMPDIR:-/tmp}/softhsm-setup-apt.XXXXXX")"
    if ! { "${sudo_cmd[@]}" apt-get update -qq \
           && "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                $(printf '%s\n' "$missing" | cut -f1); } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      die "apt-get could not install the packages above (log: $log)"
    fi
    rm -f "$log"
  fi
elif ! command -v softhsm2-util >/dev/null 2>&1 || ! find_module >/dev/null; then
  die "SoftHSM 2 is missing and this is not a Debian system; install SoftHSM 2, OpenSC, the PC/SC library (pcsc-lite) with pkg-config, and a C compiler"
fi
module="$(find_module)" || die "libsofthsm2.so not found after installing softhsm2"
command -v script >/dev/null 2>&1 || die "'script' (util-linux/bsdutils) is needed to hand PINs to softhsm2-util"

umask 077
mkdir -p "$dir/tokens"
conf="$dir/softhsm2.conf"
if [ "$reset" = 1 ]; then
  say "--reset: deleting the tokens in $dir/tokens"
  find "$dir/tokens" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
fi
cat > "$conf" <<EOF
# written by arca's softhsm-setup.sh — throw-away tokens, not for real keys
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF="$conf"

# PINs.
user_pin_file="$dir/user-pin"
so_pin_file="$dir/so-pin"
if [ -n "$pin_file" ]; then
  [ -r "$pin_file" ] || die "cannot read --pin-file $pin_file"
  IFS= read -r pin < "$pin_file" || [ -n "${pin:-}" ] || die "--pin-file $pin_file is empty"
  pin="${pin%$'\r'}"
  [ "${#pin}" -ge 4 ] && [ "${#pin}" -le 255 ] || die "the PIN in $pin_file must have 4 to 255 characters"
  if [ -f "$user_pin_file" ] && [ "$(cat "$user_pin_file")" != "$pin" ] && [ -n "$(ls -A "$dir/tokens")" ]; then
    say "note: tokens made earlier in $dir keep their old PIN; use --reset to remake them"
  fi
  printf '%s\n' "$pin" > "$user_pin_file"
  unset pin
elif [ ! -f "$user_pin_file" ]; then
  say "no --pin-file: using the throw-away rehearsal PIN $REHEARSAL_PIN (never use it on a real token)"
  printf '%s\n' "$REHEARSAL_PIN" > "$user_pin_file"
fi
if [ ! -f "$so_pin_file" ]; then
  # 24 random hex digits.
  od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$so_pin_file"
  printf '\n' >> "$so_pin_file"
fi
chmod 600 "$user_pin_file" "$so_pin_file"

token_exists() {
  softhsm2-util --show-slots 2>/dev/null \
    | sed -n 's/^ *Label: *\(.*\)$/\1/p' | sed 's/ *$//' | grep -Fxq -- "$1"
}

for label in "${labels[@]}"; do
  [ -n "$label" ] || die "empty token label"
  [ "${#label}" -le 32 ] || die "token label '$label' is longer than 32 characters"
  if token_exists "$label"; then
    say "token '$label' exists already; kept"
    continue
  fi
  # softhsm2-util asks for the SO PIN twice and the user PIN twice on its
  # terminal; give it a pseudo-terminal fed from the PIN files.
  so_pin="$(head -n1 "$so_pin_file")"
  user_pin="$(head -n1 "$user_pin_file")"
  if ! printf '%s\n%s\n%s\n%s\n' "$so_pin" "$so_pin" "$user_pin" "$user_pin" \
      | script -qec "softhsm2-util --init-token --free --label $(printf '%q' "$label")" /dev/null >/dev/null 2>&1; then
    unset so_pin user_pin
    die "softhsm2-util could not initialise token '$label'"
  fi
  unset so_pin user_pin
  token_exists "$label" || die "token '$label' did not appear after initialisation"
  say "created token '$label'"
done

say "tokens in $dir:"
softhsm2-util --show-slots 2>/dev/null | sed -n 's/^ *Label: *\(..*\)$/  \1/p' | sed 's/ *$//' | grep -v '^ *$' >&2 || true
say "user PIN file: $user_pin_file (use pin-source=file:$user_pin_file in a pkcs11: URI)"

q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
printf 'export SOFTHSM2_CONF=%s ARCA_PKCS11_MODULE=%s ARCA_SOFTHSM_PIN_FILE=%s\n' \
  "$(q "$conf")" "$(q "$module")" "$(q "$user_pin_file")"
