#!/usr/bin/env bash
# verify.sh checks the systemd units in this directory without a running
# systemd:
#   1. systemd-analyze verify on ftpgate.socket and ftpgate.service, with
#      ExecStart pointing at a freshly built ftpgate (verify insists that
#      the binary exists). Any message fails the run: verify reports
#      unknown keys and bad values as warnings and still exits 0.
#   2. the same for the service with the port-21 drop-in its header
#      documents (AmbientCapabilities=CAP_NET_BIND_SERVICE).
#   3. systemd-analyze security --offline=true: prints the exposure score
#      and fails above EXPOSURE_MAX (default 2.0).
#   4. socket activation for real: systemd-socket-activate binds a port
#      and starts "ftpgate serve" as ftpgate.socket would; ftpgate must
#      answer 220 on that socket (its own FTPGATE_LISTEN is made unusable)
#      and exit 0 on SIGTERM. Skipped with VERIFY_ACTIVATION=0.
#
# Needs systemd (252 or later, for --offline) and Go; Debian 12:
#   apt-get install -y --no-install-recommends systemd
# Usage: deploy/systemd/verify.sh
set -euo pipefail

die() { echo "verify: $*" >&2; exit 1; }
say() { printf '== %s\n' "$*" >&2; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
for t in systemd-analyze go; do
	command -v "$t" >/dev/null 2>&1 || die "missing $t (apt-get install -y systemd; Go from go.mod)"
done
max=${EXPOSURE_MAX:-2.0}
# --threshold takes systemd's internal scale, ten times the printed level.
threshold=$(awk -v m="$max" 'BEGIN { printf "%d", m * 10 + 0.5 }')

work=$(mktemp -d "${TMPDIR:-/tmp}/ftpgate-systemd.XXXXXX")
srvpid=
cleanup() {
	[ -z "$srvpid" ] || kill -KILL "$srvpid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

say "build ftpgate"
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/bin/ftpgate" ./cmd/ftpgate)

# The units as shipped, but with the binary where this machine has it.
mkdir -p "$work/units"
for u in ftpgate.service ftpgate.socket; do
	sed "s|/usr/local/bin/ftpgate|$work/bin/ftpgate|g" "$here/$u" >"$work/units/$u"
done

analyze_verify() { # files...
	local out rc=0
	out=$(systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
	if [ "$rc" != 0 ] || [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		die "systemd-analyze verify $(basename -a "$@" | paste -sd' '): exit $rc, messages above"
	fi
}

say "systemd-analyze verify ftpgate.socket ftpgate.service"
analyze_verify "$work/units/ftpgate.socket" "$work/units/ftpgate.service"

# The drop-in documented in the unit's header (the first "[Service]" block
# of the comments), appended as systemd would merge it.
say "systemd-analyze verify with the port-21 drop-in"
mkdir -p "$work/port21"
dropin=$(awk '/^#   \[Service\]$/ {on = 1} on && /^#$/ {exit} on {sub(/^#   /, ""); print}' "$here/ftpgate.service")
grep -q '^AmbientCapabilities=CAP_NET_BIND_SERVICE$' <<<"$dropin" || die "no port-21 drop-in found in ftpgate.service's header"
{ cat "$work/units/ftpgate.service"; printf '\n%s\n' "$dropin"; } >"$work/port21/ftpgate.service"
cp "$work/units/ftpgate.socket" "$work/port21/"
analyze_verify "$work/port21/ftpgate.service"

security() { # unit-file label
	local out rc=0
	out=$(systemd-analyze security --offline=true --threshold="$threshold" "$1" 2>&1) || rc=$?
	grep '✗' <<<"$out" | sed 's/^/   /' >&2 || true
	local score
	score=$(grep -o 'Overall exposure level for [^:]*: [0-9.]* [A-Z]*' <<<"$out" | sed 's/.*: //' || true)
	[ -n "$score" ] || { printf '%s\n' "$out" >&2; die "systemd-analyze security printed no exposure level"; }
	say "exposure ($2): $score (threshold $max)"
	[ "$rc" = 0 ] || die "$2: exposure $score is over $max"
}
say "systemd-analyze security --offline=true"
security "$work/units/ftpgate.service" "socket-activated, as shipped"
security "$work/port21/ftpgate.service" "port-21 drop-in"

if [ "${VERIFY_ACTIVATION:-1}" = 0 ]; then
	say "socket activation check skipped (VERIFY_ACTIVATION=0)"
	exit 0
fi
command -v systemd-socket-activate >/dev/null 2>&1 || die "missing systemd-socket-activate (package systemd), or set VERIFY_ACTIVATION=0"

say "socket activation: systemd-socket-activate + ftpgate serve"
mkdir -p "$work/etc" "$work/log"
printf 'version: 1\n' >"$work/etc/policy.yaml"
# A free port: ask the kernel for one through a throwaway listener.
port=
for _ in $(seq 20); do
	p=$((20000 + RANDOM % 20000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || die "found no free port"
# FTPGATE_LISTEN names an address that cannot be bound: the FTP listener
# must be the one passed in.
systemd-socket-activate -l "127.0.0.1:$port" \
	-E FTPGATE_POLICY="$work/etc/policy.yaml" \
	-E FTPGATE_LISTEN=unusable.invalid:1 \
	-E FTPGATE_ADMIN_LISTEN=127.0.0.1:0 \
	-E FTPGATE_AUDIT_FILE="$work/log/audit.jsonl" \
	-E FTPGATE_DRAIN_TIMEOUT=5s \
	"$work/bin/ftpgate" serve >"$work/serve.out" 2>"$work/serve.err" &
srvpid=$!
# ftp_hello PORT: connect, print the greeting line, say QUIT. Runs in a
# subshell, so a refused connection only fails the call.
ftp_hello() (
	exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
	IFS= read -r -t 10 line <&3 || line=
	printf 'QUIT\r\n' >&3
	printf '%s' "$line"
)
greeting=
for _ in $(seq 50); do
	greeting=$(ftp_hello "$port" 2>/dev/null) && break
	sleep 0.1
done
[[ $greeting == 220* ]] || die "no 220 greeting on the activated socket 127.0.0.1:$port: got '${greeting%$'\r'}'; stderr: $(tail -5 "$work/serve.err")"
say "activated socket 127.0.0.1:$port: ${greeting%$'\r'}"
grep -q '"record":"session_start"' "$work/log/audit.jsonl" || die "no session_start record in the audit file"
kill -TERM "$srvpid"
rc=0
wait "$srvpid" || rc=$?
srvpid=
[ "$rc" = 0 ] || die "ftpgate exited $rc after SIGTERM; stderr: $(tail -5 "$work/serve.err")"
say "ok"
