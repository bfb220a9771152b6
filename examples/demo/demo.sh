#!/bin/sh
# demo.sh [stop] — the rollout demo (what `make demo` runs).
#
# Starts a local fleet of 4 hosts (OpenSSH sshd each, the demo app on each,
# one HAProxy in front), creates the demo config repo, writes plan.hcl and
# inventory.ini, and rolls v2 out with `rollout apply`.
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

if [ "${1:-}" = stop ]; then
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
say "building rollout, demo-app and fleet into $bin"
mkdir -p "$bin"
# rollout is stamped with the checkout's version and commit, as make build does
version=$(git -C "$top" describe --tags --always --dirty 2>/dev/null || echo dev)
commit=$(git -C "$top" rev-parse HEAD 2>/dev/null || echo unknown)
(cd "$top" && go build -ldflags "-X main.Version=$version -X main.Commit=$commit" -o "$bin/rollout" ./cmd/rollout &&
	go build -o "$bin/demo-app" ./examples/demo/app &&
	go build -o "$bin/fleet" ./internal/fleet/cmd/fleet)
cp "$here/bin/restart-app" "$here/bin/stop-app" "$bin/"

# 3. A fresh fleet (stop the one already running there, if any).
if [ -f "$demo/fleet/fleet.json" ]; then
	say "stopping the previous demo fleet in $demo/fleet"
	"$bin/fleet" down "$demo/fleet" || true
fi
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

front=${FLEET_FRONTENDS%% *}
cat <<MSG

==> the demo fleet is up (rollout apply exited $status)

  cd $demo
  curl -s $front/                        # served by web1..web4 through HAProxy, round robin
  $rollout status plan.hcl $kh
  $rollout history plan.hcl
  $bin/fleet status $demo/fleet        # processes, apps, HAProxy's view
  echo 'show stat' | socat - UNIX-CONNECT:${FLEET_SOCKETS%% *}

Try a bad change: set revision in plan.hcl to one of
$(git -C "$demo/repo" for-each-ref --format='    %(refname:short) %(*objectname)' refs/tags)
  broken-config fails demo-app -check in preflight: no host is drained.
  crashloop passes the validator; the canary's app restarts every second,
  the pid_file flap guard fails its health gate and it is rolled back.
  Then: $rollout apply plan.hcl --yes $kh

Stop everything: make demo-stop   (or $here/demo.sh stop)
MSG
exit "$status"
