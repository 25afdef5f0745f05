#!/usr/bin/env bash
# Starts, stops or checks the PC/SC service used by arca's YubiKey PIV tests
# (tests/piv.rs): pcscd with the vsmartcard-vpcd virtual reader driver,
# whose two readers are named "Yubico YubiKey vpcd 00 00" / "… 00 01".
# The virtual PIV card itself (tests/support/vpiv.rs) runs inside the test
# process and plugs into vpcd's TCP ports 35963/35964.
#
#   tests/support/pcscd-vpcd.sh start    # install if needed, start (idempotent)
#   tests/support/pcscd-vpcd.sh stop
#   tests/support/pcscd-vpcd.sh status
#
# Only one pcscd can run per machine (its socket is /run/pcscd/pcscd.comm),
# so the PIV tests run one after another. Works without systemd or udev.
set -euo pipefail

STATE_DIR="${PCSCD_VPCD_DIR:-${TMPDIR:-/tmp}/arca-pcscd-vpcd}"
CONF_DIR="$STATE_DIR/reader.conf.d"
PID_FILE="$STATE_DIR/pcscd.pid"
LOG_FILE="$STATE_DIR/pcscd.log"
SOCKET=/run/pcscd/pcscd.comm
# vpcd's first reader listens on this TCP port, the second on the next one;
# the virtual card (tests/support/vpiv.rs) reads the same variable.
PORT="${ARCA_VPCD_PORT:-35963}"
case "$PORT" in ''|*[!0-9]*) echo "pcscd-vpcd: ARCA_VPCD_PORT must be a port number, not '$PORT'" >&2; exit 2 ;; esac
PORT_HEX=$(printf '%04X' "$PORT")
VPCD_LIB=/usr/lib/pcsc/drivers/serial/libifdvpcd.so

log() { echo "pcscd-vpcd: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    local missing=()
    command -v pcscd >/dev/null 2>&1 || missing+=(pcscd)
    [ -e "$VPCD_LIB" ] || missing+=(vsmartcard-vpcd)
    [ -e /usr/include/PCSC/winscard.h ] || missing+=(libpcsclite-dev)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        as_root apt-get update -qq >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
}

running_pid() {
    # The pcscd we started, if it is still alive (not a zombie).
    if [ -f "$PID_FILE" ]; then
        local pid
        pid="$(cat "$PID_FILE")"
        if [ -n "$pid" ] && [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
            echo "$pid"
            return 0
        fi
    fi
    return 1
}

other_pcscd() {
    # A pcscd not started by this script (e.g. the system's).
    local pid
    for pid in $(pgrep -x pcscd 2>/dev/null || true); do
        grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && continue
        # one in another root or PID namespace (a chroot, a container) has
        # a socket of its own, not ours
        [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$(readlink /proc/self/root)" ] || continue
        [ "$(readlink "/proc/$pid/ns/pid" 2>/dev/null)" = "$(readlink /proc/self/ns/pid)" ] || continue
        echo "$pid"
        return 0
    done
    return 1
}

vpcd_listening() {
    # The port (35963 = 0x8C7B by default) in LISTEN state (0A). Connecting
    # to test it would look like a card being inserted, so only look at the
    # socket table.
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$PORT_HEX" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }'
}

start() {
    install_packages
    if pid="$(running_pid)"; then
        log "already running (pid $pid)"
        return 0
    fi
    if pid="$(other_pcscd)"; then
        if vpcd_listening; then
            log "a pcscd with the vpcd reader is already running (pid $pid); using it"
            return 0
        fi
        log "another pcscd (pid $pid) is running without the vpcd reader; stop it first"
        return 1
    fi
    mkdir -p "$CONF_DIR"
    cat >"$CONF_DIR/vpcd" <<EOF
FRIENDLYNAME "Yubico YubiKey vpcd"
DEVICENAME   /dev/null:0x$PORT_HEX
LIBPATH      $VPCD_LIB
CHANNELID    0x$PORT_HEX
EOF
    as_root mkdir -p /run/pcscd
    setsid pcscd -f -c "$CONF_DIR" >"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 100); do
        if [ -S "$SOCKET" ] && vpcd_listening; then
            log "started (pid $(cat "$PID_FILE")), log in $LOG_FILE"
            return 0
        fi
        if ! running_pid >/dev/null; then
            log "pcscd exited; see $LOG_FILE"
            cat "$LOG_FILE" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    log "pcscd did not create $SOCKET and the vpcd port within 10 s; see $LOG_FILE"
    return 1
}

stop() {
    if pid="$(running_pid)"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            running_pid >/dev/null || break
            sleep 0.1
        done
        if running_pid >/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        log "stopped (pid $pid)"
    else
        log "not running (no pcscd started by this script)"
    fi
    rm -f "$PID_FILE"
}

status() {
    if pid="$(running_pid)"; then
        echo "running (pid $pid, readers from $CONF_DIR)"
    elif pid="$(other_pcscd)"; then
        echo "a pcscd not started by this script is running (pid $pid)"
    else
        echo "not running"
        return 1
    fi
    if vpcd_listening; then echo "vpcd reader: listening on 127.0.0.1:$PORT"; else echo "vpcd reader: not listening"; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
