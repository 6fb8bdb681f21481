#!/usr/bin/env bash
# build-image.sh builds the ftpgate OCI image without a Docker daemon and
# without pulling any base image: it compiles the static binary with the
# local Go toolchain, assembles a FROM-scratch image with buildah, writes it
# as an OCI archive, reads the image config back and compares it with what
# is declared below, and then runs the image with an OCI runtime: "ftpgate
# version", "ftpgate check" against a mounted policy, and "ftpgate serve"
# on a read-only root file system as 65532:65532 (FTP greeting, audit file
# written, clean drain on SIGTERM). Any mismatch exits non-zero.
#
# The image is the same as deploy/container/Dockerfile's (same user,
# entrypoint, ports, environment, stop signal, labels, file system);
# deploy/k8s_test.go fails when the two drift apart.
#
# Needs (Debian 12; run as root, network not needed):
#   apt-get install -y --no-install-recommends \
#     buildah skopeo umoci runc jq curl ca-certificates
#   buildah          assembles and commits the image (vfs storage in a temp dir)
#   skopeo           reads the config back, converts the archive for umoci
#   umoci            unpacks the image into an OCI runtime bundle
#   runc (or crun)   runs the bundle; crun 1.8 refuses hosts with a hybrid
#                    cgroup v1/v2 layout, so runc is tried first
#   jq, curl         compare JSON, probe the admin endpoint
#   ca-certificates  the CA bundle copied into the image (for FTPS partners)
# plus Go (the version go.mod names) to build the binary.
#
# Usage: deploy/build-image.sh [OUTPUT.oci.tar]
#   default output: deploy/container/out/ftpgate-VERSION.oci.tar
# Environment:
#   FTPGATE_IMAGE_NAME   image name in the archive (default localhost/ftpgate)
#   FTPGATE_IMAGE_TAG    tag (default: git describe --tags --always --dirty)
#   GOARCH               target architecture (default: the host's)
#   SOURCE_DATE_EPOCH    image and file times (default: the last commit's time)
#   FTPGATE_IMAGE_RUN=0  skip the runtime checks (config checks still run)
#   FTPGATE_IMAGE_LIVEZ=0  skip the admin endpoint check; by default GET
#                        /livez, /readyz and /metrics on FTPGATE_ADMIN_LISTEN
#                        must answer 200 in the running image, as the
#                        Kubernetes probes will ask them
#
# Load or push the result:
#   podman load -i OUT.oci.tar
#   skopeo copy oci-archive:OUT.oci.tar docker://registry.example.com/ftpgate:TAG
#   skopeo copy oci-archive:OUT.oci.tar docker-daemon:ftpgate:TAG   (with Docker)
set -euo pipefail

# --- What the image must be. Keep in step with deploy/container/Dockerfile
# --- (deploy/k8s_test.go compares them).
IMAGE_USER='65532:65532'
IMAGE_ENTRYPOINT='["/ftpgate","serve"]'
IMAGE_PORTS='2121 9180 50000-50100'
IMAGE_ENV=(FTPGATE_ADMIN_LISTEN=0.0.0.0:9180 FTPGATE_LISTEN=:2121 FTPGATE_PASV_PORTS=50000-50100)
IMAGE_STOPSIGNAL='SIGTERM'
IMAGE_SOURCE='https://github.com/ftpgate/ftpgate'

die() { echo "build-image: $*" >&2; exit 1; }
say() { printf '== %s\n' "$*" >&2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

# --- Tools.
need=(go buildah skopeo umoci jq tar)
[ "${FTPGATE_IMAGE_LIVEZ:-1}" = 1 ] && need+=(curl)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
runtime=
if [ "${FTPGATE_IMAGE_RUN:-1}" != 0 ]; then
	for r in runc crun; do
		if command -v "$r" >/dev/null 2>&1; then runtime=$r; break; fi
	done
	[ -n "$runtime" ] || missing+=("runc-or-crun")
fi
if [ ${#missing[@]} -gt 0 ]; then
	die "missing: ${missing[*]}
install with: apt-get install -y --no-install-recommends buildah skopeo umoci runc jq curl ca-certificates
(or set FTPGATE_IMAGE_RUN=0 to skip the runtime checks)"
fi
[ "$(id -u)" = 0 ] || die "run as root (buildah with vfs storage, runc)"
cacert=/etc/ssl/certs/ca-certificates.crt
[ -s "$cacert" ] || die "$cacert is missing: apt-get install -y ca-certificates"

# --- Version and times, from git when there is a repository.
version=dev revision=unknown epoch=${SOURCE_DATE_EPOCH:-}
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
	version=$(git -C "$repo" describe --tags --always --dirty)
	revision=$(git -C "$repo" rev-parse HEAD)
	[ -n "$epoch" ] || epoch=$(git -C "$repo" log -1 --format=%ct)
fi
[ -n "$epoch" ] || epoch=$(date +%s)
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
name=${FTPGATE_IMAGE_NAME:-localhost/ftpgate}
tag=${FTPGATE_IMAGE_TAG:-$version}
tag=${tag//[^A-Za-z0-9_.-]/-}
goarch=${GOARCH:-$(go env GOARCH)}
out=${1:-$repo/deploy/container/out/ftpgate-$tag.oci.tar}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
ref="$name:$tag"

work=$(mktemp -d "${TMPDIR:-/tmp}/ftpgate-image.XXXXXX")
ctr=
cleanup() {
	if [ -n "$ctr" ] && [ -n "$runtime" ]; then
		"$runtime" kill "$ctr" KILL >/dev/null 2>&1 || true
		"$runtime" delete -f "$ctr" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
bah() { buildah --storage-driver vfs --root "$work/storage" --runroot "$work/run" "$@"; }

# --- 1. The static binary.
say "go build ($goarch, version $version)"
# -buildvcs=auto overrides a GOFLAGS=-buildvcs=false in the environment, so
# "ftpgate version" names the commit.
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch \
	go build -trimpath -buildvcs=auto -ldflags '-s -w' -o "$work/ftpgate" ./cmd/ftpgate
go version -m "$work/ftpgate" | grep -q 'CGO_ENABLED=0' || die "the binary is not static (CGO_ENABLED=0 missing)"

# --- 2. The root file system, as one tar with exact owners and modes.
root=$work/rootfs
mkdir -p "$root/etc/ssl/certs" "$root/etc/ftpgate" "$root/var/log/ftpgate" "$root/tmp"
install -m 0555 "$work/ftpgate" "$root/ftpgate"
install -m 0644 "$cacert" "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chmod 0755 "$root/etc" "$root/etc/ssl" "$root/etc/ssl/certs" "$root/etc/ftpgate" "$root/var" "$root/var/log"
chmod 1777 "$root/tmp"
chmod 0700 "$root/var/log/ftpgate"
tarflags=(--sort=name --mtime="@$epoch" --numeric-owner --format=pax '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime')
tar "${tarflags[@]}" --owner=0 --group=0 --exclude=./var/log/ftpgate -C "$root" -cf "$work/rootfs.tar" .
tar "${tarflags[@]}" --owner=65532 --group=65532 --no-recursion -C "$root" -rf "$work/rootfs.tar" ./var/log/ftpgate

# --- 3. The image.
say "buildah: assemble $ref from scratch"
c=$(bah from scratch)
bah add "$c" "$work/rootfs.tar" / >/dev/null
cfg=(--user "$IMAGE_USER" --entrypoint "$IMAGE_ENTRYPOINT" --cmd ''
	--stop-signal "$IMAGE_STOPSIGNAL" --os linux --arch "$goarch"
	--created-by 'deploy/build-image.sh: static ftpgate on scratch')
# Ranges are expanded to one port each, as Docker does for EXPOSE A-B.
for p in $IMAGE_PORTS; do
	if [[ $p == *-* ]]; then
		for ((i = ${p%-*}; i <= ${p#*-}; i++)); do cfg+=(--port "$i/tcp"); done
	else
		cfg+=(--port "$p/tcp")
	fi
done
for e in "${IMAGE_ENV[@]}"; do cfg+=(--env "$e"); done
labels=(
	"org.opencontainers.image.title=ftpgate"
	"org.opencontainers.image.description=Transparent FTP-to-SFTP upgrading proxy for legacy batch jobs"
	"org.opencontainers.image.source=$IMAGE_SOURCE"
	"org.opencontainers.image.url=$IMAGE_SOURCE"
	"org.opencontainers.image.documentation=$IMAGE_SOURCE#readme"
	"org.opencontainers.image.version=$version"
	"org.opencontainers.image.revision=$revision"
	"org.opencontainers.image.created=$created"
)
for l in "${labels[@]}"; do cfg+=(--label "$l"); done
bah config "${cfg[@]}" "$c"
bah commit --quiet --format oci --timestamp "$epoch" --identity-label=false --rm "$c" "$ref" >/dev/null
rm -f "$out"
bah push --quiet "$ref" "oci-archive:$out:$ref"

# --- 4. The config, read back from the archive.
say "check the image config in $out"
got=$(skopeo inspect --config "oci-archive:$out:$ref")
fail=0
check() { # check DESCRIPTION JQ-EXPRESSION (must yield true on the config)
	if [ "$(jq -r "$2" <<<"$got")" != true ]; then
		echo "build-image: image config: $1: got $(jq -c "${3:-.config}" <<<"$got")" >&2
		fail=1
	fi
}
check "user is $IMAGE_USER" ".config.User == \"$IMAGE_USER\"" .config.User
check "entrypoint is $IMAGE_ENTRYPOINT" ".config.Entrypoint == $IMAGE_ENTRYPOINT" .config.Entrypoint
check "no default command" '(.config.Cmd // []) == []' .config.Cmd
check "stop signal $IMAGE_STOPSIGNAL" ".config.StopSignal == \"$IMAGE_STOPSIGNAL\"" .config.StopSignal
check "os linux, arch $goarch" ".os == \"linux\" and .architecture == \"$goarch\"" '{os,architecture}'
check "one layer" '(.rootfs.diff_ids | length) == 1' .rootfs
want_ports=$(for p in $IMAGE_PORTS; do
	if [[ $p == *-* ]]; then seq "${p%-*}" "${p#*-}"; else echo "$p"; fi
done | sed 's|$|/tcp|' | jq -R . | jq -sc 'sort')
check "exposed ports $IMAGE_PORTS" "(.config.ExposedPorts | keys | sort) == $want_ports" '.config.ExposedPorts|keys'
for e in "${IMAGE_ENV[@]}"; do
	check "env $e" "(.config.Env // []) | index([\"$e\"]) != null" .config.Env
done
for l in "${labels[@]}"; do
	k=${l%%=*} v=${l#*=}
	check "label $k" ".config.Labels[$(jq -Rn --arg k "$k" '$k')] == $(jq -Rn --arg v "$v" '$v')" .config.Labels
done
check "no other labels" "(.config.Labels | length) == ${#labels[@]}" .config.Labels
[ "$fail" = 0 ] || die "the image config does not match"

# The file system, unpacked from the archive.
skopeo copy --quiet "oci-archive:$out:$ref" "oci:$work/layout:$tag"
umoci unpack --image "$work/layout:$tag" "$work/bundle" >/dev/null
rf=$work/bundle/rootfs
fs() { # fs PATH OWNER MODE
	local got
	got=$(stat -c '%u:%g %a' "$rf$1" 2>/dev/null) || { echo "build-image: $1 is missing from the image" >&2; fail=1; return; }
	[ "$got" = "$2 $3" ] || { echo "build-image: $1: got $got; want $2 $3" >&2; fail=1; }
}
fs /ftpgate 0:0 555
fs /etc/ssl/certs/ca-certificates.crt 0:0 644
fs /etc/ftpgate 0:0 755
fs /var/log/ftpgate 65532:65532 700
fs /tmp 0:0 1777
fs /etc/passwd 0:0 644
[ "$(find "$rf" -mindepth 1 | wc -l)" -le 20 ] || { echo "build-image: unexpected files in the image: $(find "$rf" | head)" >&2; fail=1; }
[ "$fail" = 0 ] || die "the image file system does not match"

# --- 5. Run it.
if [ -z "$runtime" ]; then
	say "runtime checks skipped (FTPGATE_IMAGE_RUN=0)"
else
	say "run the image with $runtime"
	b=$work/bundle
	# A policy directory as a Kubernetes ConfigMap would hold it, a secret
	# mount with the audit key and a partner key, and an audit directory.
	mkdir -p "$work/etc" "$work/secrets" "$work/audit"
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secrets/audit.key"
	printf 'not a real key: "ftpgate check" only needs the file to be readable\n' >"$work/secrets/partner_ed25519"
	chown 65532:65532 "$work/audit" "$work/secrets/audit.key" "$work/secrets/partner_ed25519"
	chmod 0700 "$work/audit"
	chmod 0400 "$work/secrets/audit.key" "$work/secrets/partner_ed25519"
	printf 'partner.invalid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJYmI/dWfOFeucyG0mMsr8rDROaFxMlDoeJ23uRQK94C\n' >"$work/etc/known_hosts"
	# The password hash is of a random password nobody knows.
	cat >"$work/etc/policy.yaml" <<-'EOF'
		version: 1
		known_hosts: /etc/ftpgate/known_hosts
		routes:
		  - name: image-check
		    user: IMGCHECK
		    auth: local
		    password_bcrypt: "$2a$10$HVrpYyKiK9MoU2zhIO9.O.duQdlEL33B.tgv5nVfdVLq35pGJ2/Gu"
		    upstream: sftp://partner@partner.invalid:22/in
		    upstream_key: /run/secrets/ftpgate/partner_ed25519
	EOF
	chmod 0644 "$work/etc/policy.yaml" "$work/etc/known_hosts"

	# runc/crun settings from the image config (umoci wrote them), with:
	# no terminal; the root file system read-only, as in the Kubernetes
	# manifests; the host's network namespace, so the host can connect to
	# 127.0.0.1; bind mounts for the policy, secrets and audit directory.
	jq '.process.terminal = false
	  | .root.readonly = true
	  | .linux.namespaces |= map(select(.type != "network"))
	  | .mounts += [
	      {destination: "/etc/ftpgate", type: "bind", source: $etc, options: ["rbind", "ro"]},
	      {destination: "/run/secrets/ftpgate", type: "bind", source: $sec, options: ["rbind", "ro"]},
	      {destination: "/var/log/ftpgate", type: "bind", source: $aud, options: ["rbind", "rw"]}]' \
		--arg etc "$work/etc" --arg sec "$work/secrets" --arg aud "$work/audit" \
		"$b/config.json" >"$b/config.base.json"
	[ "$(jq -r '.process.user | "\(.uid):\(.gid)"' "$b/config.base.json")" = "$IMAGE_USER" ] ||
		die "umoci's runtime config does not run as $IMAGE_USER"

	# run NAME JQ-FILTER: run the bundle in the foreground with the
	# config changed by the filter; stdout to $work/NAME.out.
	run() {
		jq "$2" "$b/config.base.json" >"$b/config.json"
		ctr=ftpgate-image-$$-$1
		local rc=0
		"$runtime" run --bundle "$b" "$ctr" </dev/null >"$work/$1.out" 2>"$work/$1.err" || rc=$?
		"$runtime" delete -f "$ctr" >/dev/null 2>&1 || true
		ctr=
		return $rc
	}
	env_add() { # JSON array of KEY=VALUE strings to append to process.env
		printf '.process.env += %s' "$(printf '%s\n' "$@" | jq -R . | jq -sc .)"
	}

	run version '.process.args = ["/ftpgate", "version"]' ||
		die "ftpgate version failed in the image: $(cat "$work/version.err")"
	grep -q '^ftpgate ' "$work/version.out" || die "ftpgate version printed: $(cat "$work/version.out")"
	sed 's/^/   /' "$work/version.out" >&2

	run check '.process.args = ["/ftpgate", "check"]' ||
		die "ftpgate check failed in the image: $(cat "$work/check.out" "$work/check.err")"

	# The serve run listens on port 0 (the kernel picks free ports) and
	# logs the addresses it got on stderr ("serving", "admin endpoint").
	# Its policy has no routes, so readiness does not wait for a partner
	# (there is no SFTP server here).
	printf 'version: 1\n' >"$work/etc/policy.yaml"
	serve_env=(FTPGATE_LISTEN=127.0.0.1:0 FTPGATE_ADMIN_LISTEN=127.0.0.1:0 FTPGATE_DRAIN_TIMEOUT=5s
		FTPGATE_AUDIT_FILE=/var/log/ftpgate/audit.jsonl FTPGATE_AUDIT_KEY_FILE=/run/secrets/ftpgate/audit.key
		FTPGATE_PROBE_INTERVAL=1s)
	run serve "$(env_add "${serve_env[@]}")" &
	runpid=$!
	ctr=ftpgate-image-$$-serve
	listen='' admin=''
	for _ in $(seq 100); do
		listen=$(jq -Rr 'fromjson? | select(.message == "serving") | .listen // empty' "$work/serve.err" 2>/dev/null | head -1 || true)
		admin=$(jq -Rr 'fromjson? | select(.message == "admin endpoint") | .admin_listen // empty' "$work/serve.err" 2>/dev/null | head -1 || true)
		[ -n "$listen" ] && break
		kill -0 "$runpid" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$listen" ] || die "ftpgate serve did not start in the image: $(cat "$work/serve.err")"
	say "serving on $listen (admin ${admin:-none})"

	# The process runs as the image's user.
	pid=$("$runtime" state "$ctr" | jq -r .pid)
	uids=$(awk '/^Uid:/ {print $2":"$3} /^Gid:/ {print $2":"$3}' "/proc/$pid/status" | paste -sd' ')
	[ "$uids" = "65532:65532 65532:65532" ] || die "ftpgate runs as uid:euid gid:egid $uids; want 65532"

	# The FTP greeting, and QUIT (in a subshell: a refused connection
	# must fail this check, not end the script).
	ftp_dialogue() (
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		IFS= read -r -t 10 hello <&3 || hello=
		printf 'QUIT\r\n' >&3
		IFS= read -r -t 10 bye <&3 || bye=
		printf '%s\n%s\n' "${hello%$'\r'}" "${bye%$'\r'}"
	)
	dialogue=$(ftp_dialogue "$listen" 2>&1) || die "cannot connect to $listen: $dialogue"
	greeting=$(sed -n 1p <<<"$dialogue") bye=$(sed -n 2p <<<"$dialogue")
	[[ $greeting == 220* ]] || die "FTP greeting: got '$greeting'; want 220"
	[[ $bye == 221* ]] || die "QUIT: got '$bye'; want 221"
	say "FTP: $greeting / $bye"

	if [ "${FTPGATE_IMAGE_LIVEZ:-1}" = 1 ]; then
		# The admin endpoint (/livez, /readyz, /metrics on
		# FTPGATE_ADMIN_LISTEN), as the Kubernetes probes use it. Its
		# address comes from ftpgate's "admin endpoint" log line.
		[ -n "$admin" ] || die "ftpgate logged no admin endpoint (FTPGATE_IMAGE_LIVEZ=0 skips this check): $(cat "$work/serve.err")"
		for path in /livez /readyz /metrics; do
			code=
			for _ in $(seq 50); do
				code=$(curl -s -o "$work/http.out" -w '%{http_code}' "http://$admin$path" || true)
				[ "$code" = 200 ] && break
				sleep 0.1
			done
			[ "$code" = 200 ] || die "GET $path: got HTTP $code; want 200: $(cat "$work/http.out" 2>/dev/null)"
			say "GET http://$admin$path: 200"
		done
	fi

	# SIGTERM: drain and exit 0.
	"$runtime" kill "$ctr" TERM
	rc=0
	wait "$runpid" || rc=$?
	ctr=
	[ "$rc" = 0 ] || die "ftpgate serve exited $rc after SIGTERM; want 0: $(tail -5 "$work/serve.err")"
	grep -q '"message":"stopped"' "$work/serve.err" || die "ftpgate did not log a clean stop: $(tail -3 "$work/serve.err")"

	# The audit trail written by the non-root user on the mounted volume,
	# with an unbroken chain; the same records on stdout.
	a=$work/audit/audit.jsonl
	[ "$(stat -c '%u %a' "$a" 2>/dev/null)" = "65532 600" ] || die "audit file: got $(stat -c '%u %a' "$a" 2>&1); want 65532 600"
	grep -q '"record":"session_start"' "$a" || die "audit file has no session_start record"
	grep -q '"record":"session_start"' "$work/serve.out" || die "no records on stdout"
	FTPGATE_AUDIT_KEY_FILE=$work/secrets/audit.key "$work/ftpgate" audit verify "$a" >"$work/verify.out" 2>&1 ||
		die "audit verify: $(cat "$work/verify.out")"
	say "audit: $(cat "$work/verify.out")"
fi

# --- 6. Summary.
digest=$(skopeo inspect "oci-archive:$out:$ref" | jq -r .Digest)
size_bin=$(stat -c %s "$work/ftpgate")
size_layer=$(skopeo inspect --raw "oci-archive:$out:$ref" | jq '[.layers[].size] | add')
printf 'image    %s\narchive  %s (%s bytes)\ndigest   %s\nbinary   %s bytes; compressed layer %s bytes\n' \
	"$ref" "$out" "$(stat -c %s "$out")" "$digest" "$size_bin" "$size_layer"
