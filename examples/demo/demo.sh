#!/bin/sh
# demo.sh [stop] — the rollout demo (what `make demo` runs).
#
# Starts a local fleet of 4 hosts (OpenSSH sshd each, the demo app on each,
# one HAProxy in front), creates the demo config repo, writes plan.hcl and
# inventory.ini, and rolls config v2 out with `rollout apply`. Then the
# software upgrade: two builds of the demo app, packed as .tar.gz, their
# sha256 pinned in the repo (tags build-1, build-2) and served by a local
# artifact server on 127.0.0.1; app.hcl deploys build 1, upgrades to build 2,
# and `rollout rollback` switches back to build 1 with no download.
#
#   ROLLOUT_DEMO_DIR   where everything lives (default /tmp/rollout-demo)
#   ROLLOUT_BIN_DIR    where the binaries are built (default bin/ of the checkout)
#   demo.sh stop       stops the fleet (what `make demo-stop` runs)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
demo=${ROLLOUT_DEMO_DIR:-/tmp/rollout-demo}
case $demo in /*) ;; *) demo=$(pwd)/$demo ;; esac
bin=${ROLLOUT_BIN_DIR:-$top/bin}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac

say() { printf '\n==> %s\n' "$*"; }

# stop_artifact_server: stop the demo's artifact server by its PID.
stop_artifact_server() {
	pidf=$demo/artifacts/server.pid
	[ -f "$pidf" ] || return 0
	pid=$(tr -cd '0-9' <"$pidf")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$demo/artifacts"; then
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		echo "stopped the artifact server (pid $pid)"
	fi
	rm -f "$pidf"
}

if [ "${1:-}" = stop ]; then
	stop_artifact_server
	if [ -f "$demo/fleet/fleet.json" ] && [ -x "$bin/fleet" ]; then
		"$bin/fleet" down "$demo/fleet"
	else
		echo "no demo fleet in $demo"
	fi
	exit 0
fi
[ $# -eq 0 ] || { echo "usage: demo.sh [stop]" >&2; exit 2; }

# 1. What the demo runs: OpenSSH's sshd, HAProxy, git.
missing=
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
[ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
command -v git >/dev/null 2>&1 || missing="$missing git"
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "installing$missing"
		# shellcheck disable=SC2086 # word splitting is wanted
		apt-get install -y $missing || { apt-get update && apt-get install -y $missing; }
	else
		echo "demo.sh: please install:$missing (e.g. sudo apt-get install -y$missing)" >&2
		exit 1
	fi
fi
if [ "$(id -u)" != 0 ]; then
	echo "demo.sh: the demo fleet logs in as root over SSH on 127.0.0.1 and runs sshd; run it as root (e.g. in a container)" >&2
	exit 1
fi

# 2. Binaries.
say "building rollout, demo-app, fleet and artifact-server into $bin"
mkdir -p "$bin"
# rollout is stamped with the checkout's version and commit, as make build does
version=$(git -C "$top" describe --tags --always --dirty 2>/dev/null || echo dev)
commit=$(git -C "$top" rev-parse HEAD 2>/dev/null || echo unknown)
(cd "$top" && go build -ldflags "-X main.Version=$version -X main.Commit=$commit" -o "$bin/rollout" ./cmd/rollout &&
	go build -o "$bin/demo-app" ./examples/demo/app &&
	go build -o "$bin/fleet" ./internal/fleet/cmd/fleet &&
	go build -o "$bin/artifact-server" ./examples/demo/artifact-server)
cp "$here/bin/restart-app" "$here/bin/stop-app" "$bin/"

# 3. A fresh fleet (stop the one already running there, if any).
if [ -f "$demo/fleet/fleet.json" ]; then
	say "stopping the previous demo fleet in $demo/fleet"
	"$bin/fleet" down "$demo/fleet" || true
fi
stop_artifact_server
# the demo directory is the demo's own: it is wiped and made anew each run
say "wiping $demo (the demo's directory: fleet, repo, plan and journal are made anew)"
rm -rf "$demo"
mkdir -p "$demo"
say "starting the fleet in $demo/fleet"
"$bin/fleet" up "$demo/fleet" -hosts 4 -haproxy 1 -app "$bin/demo-app" -restart "$bin/restart-app"
eval "$("$bin/fleet" env "$demo/fleet")"

# 4. The config repo, the plan, the inventory.
say "creating the demo config repo in $demo/repo"
"$here/make-repo.sh" "$demo/repo"
v2=$(git -C "$demo/repo" rev-parse 'v2^{commit}')
sockets=
for s in $FLEET_SOCKETS; do sockets="${sockets:+$sockets, }\"unix:$s\""; done
sed -e "s|@REPO@|$demo/repo|g" -e "s|@REVISION@|$v2|g" -e "s|@SOCKETS@|$sockets|g" \
	-e "s|@DEMO_APP@|$bin/demo-app|g" -e "s|@RESTART_APP@|$bin/restart-app|g" \
	"$here/plan.hcl" >"$demo/plan.hcl"
cp "$FLEET_INVENTORY" "$demo/inventory.ini"
echo "wrote $demo/plan.hcl (revision v2 = $v2) and $demo/inventory.ini"

# 5. Roll it out.
cd "$demo"
rollout="$bin/rollout"
kh="--known-hosts $FLEET_KNOWN_HOSTS"
say "rollout validate plan.hcl"
"$rollout" validate plan.hcl
say "rollout apply plan.hcl --yes $kh"
status=0
# shellcheck disable=SC2086 # $kh is two words
"$rollout" apply plan.hcl --yes $kh || status=$?

# 6. The software upgrade: the demo app itself, deployed as an artifact.
art=$demo/artifacts
say "building demo-app builds 1 and 2 and packing them into $art"
mkdir -p "$art/stage"
for b in 1 2; do
	rm -rf "$art/stage/$b"
	mkdir -p "$art/stage/$b/bin"
	(cd "$top" && go build -ldflags "-X main.build=$b" -o "$art/stage/$b/bin/demo-app" ./examples/demo/app)
	echo "$b" >"$art/stage/$b/VERSION"
	tar -C "$art/stage/$b" -czf "$art/demo-app-$b.tar.gz" bin VERSION
	sha=$(sha256sum "$art/demo-app-$b.tar.gz" | cut -d' ' -f1)
	eval "sha$b=\$sha"
	echo "demo-app-$b.tar.gz sha256 $sha"
done
rm -rf "$art/stage"

say "pinning each build's sha256 in the repo: tags build-1 and build-2 (app/group_vars/web.yml)"
(
	export GIT_AUTHOR_NAME="Rollout Demo" GIT_AUTHOR_EMAIL="demo@rollout.invalid"
	export GIT_COMMITTER_NAME="Rollout Demo" GIT_COMMITTER_EMAIL="demo@rollout.invalid"
	export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
	mkdir -p "$demo/repo/app/group_vars"
	cp "$FLEET_INVENTORY" "$demo/repo/app/inventory.ini"
	for b in 1 2; do
		eval "sha=\$sha$b"
		printf '# the demo app build this revision deploys (app.hcl)\napp_build: "%s"\napp_sha256: "%s"\n' "$b" "$sha" >"$demo/repo/app/group_vars/web.yml"
		git -C "$demo/repo" add -A app
		git -C "$demo/repo" commit -q -m "app: deploy demo-app build $b"
		git -C "$demo/repo" tag -a "build-$b" -m "build-$b"
	done
)
build1=$(git -C "$demo/repo" rev-parse 'build-1^{commit}')
build2=$(git -C "$demo/repo" rev-parse 'build-2^{commit}')

say "starting the artifact server on 127.0.0.1 (serving $art, log $art/requests.log)"
: >"$art/requests.log"
setsid "$bin/artifact-server" -dir "$art" -log "$art/requests.log" -addr-file "$art/url" \
	</dev/null >"$art/server.log" 2>&1 &
echo $! >"$art/server.pid"
i=0
while [ ! -s "$art/url" ]; do
	[ $i -lt 100 ] || { echo "demo.sh: the artifact server did not start; see $art/server.log" >&2; exit 1; }
	sleep 0.1
	i=$((i + 1))
done
url=$(cat "$art/url")
echo "artifact server $url (pid $(cat "$art/server.pid"))"

# app_plan REVISION: write app.hcl pinned to REVISION.
app_plan() {
	sed -e "s|@REPO@|$demo/repo|g" -e "s|@REVISION@|$1|g" -e "s|@SOCKETS@|$sockets|g" \
		-e "s|@ARTIFACTS@|$url|g" -e "s|@RESTART_APP@|$bin/restart-app|g" \
		"$here/app.hcl" >"$demo/app.hcl"
}
requests() { wc -l <"$art/requests.log" | tr -d ' '; }
# builds: the build each host's running app was started from.
builds() {
	for h in $FLEET_HOSTS; do
		pid=$(tr -cd '0-9' <"$FLEET_DIR/hosts/$h/run/app.pid" 2>/dev/null || true)
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || echo '?')
		echo "  $h: $("$exe" -version 2>/dev/null || echo 'no build') (pid $pid, $exe)"
	done
}
# run_step WHAT COMMAND...: run a rollout command, note its failure.
run_step() {
	what=$1
	shift
	say "$*"
	before=$(requests)
	st=0
	"$@" || st=$?
	[ "$st" = 0 ] || status=$st
	echo "$what: rollout exited $st; the artifact server got $(($(requests) - before)) request(s)"
	builds
}

app_plan "$build1"
echo "wrote $demo/app.hcl (revision build-1 = $build1)"
# shellcheck disable=SC2086 # $kh is two words
run_step "install build 1" "$rollout" apply app.hcl --yes $kh
app_plan "$build2"
echo "wrote $demo/app.hcl (revision build-2 = $build2)"
# shellcheck disable=SC2086
run_step "upgrade 1 -> 2" "$rollout" apply app.hcl --yes $kh
# shellcheck disable=SC2086
run_step "rollback 2 -> 1" "$rollout" rollback app.hcl --yes --reason demo-rollback $kh

front=${FLEET_FRONTENDS%% *}
cat <<MSG

==> the demo fleet is up (every rollout exited $status: config v2, then demo-app
    build 1 -> 2 and the rollback to build 1, which downloaded nothing)

  cd $demo
  curl -s $front/                        # served by web1..web4 through HAProxy, round robin
  curl -sI $front/ | grep X-Demo-Build   # the build that answered
  $rollout status plan.hcl $kh
  $rollout status app.hcl $kh   # each host's demo-app release
  $rollout history app.hcl      # build-1, build-2, the rollback
  cat $art/requests.log         # what the artifact server served
  $rollout history plan.hcl
  $bin/fleet status $demo/fleet        # processes, apps, HAProxy's view
  echo 'show stat' | socat - UNIX-CONNECT:${FLEET_SOCKETS%% *}

Try a bad change: set revision in plan.hcl to one of
$(git -C "$demo/repo" for-each-ref --format='    %(refname:short) %(*objectname)' refs/tags | grep -v '^    build-')
  broken-config fails demo-app -check in preflight: no host is drained.
  crashloop passes the validator; the canary's app restarts every second,
  the pid_file flap guard fails its health gate and it is rolled back.
  Then: $rollout apply plan.hcl --yes $kh

Stop everything: make demo-stop   (or $here/demo.sh stop)
MSG
exit "$status"
