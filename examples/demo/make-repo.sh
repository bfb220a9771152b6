#!/bin/sh
# make-repo.sh DIR — create the demo config repository in DIR.
#
# One file, conf/app.conf.tmpl (an HCL template rendered per host by
# rollout), through four tagged commits:
#   v1             the initial version
#   v2             a good next version
#   broken-config  renders a config that fails `demo-app -check` (unknown key)
#   crashloop      passes the validator, but the app exits after 1s (exit_after)
#   flaky          healthy, but 5% of "/" requests fail with 500 (error_rate):
#                  only canary analysis of real traffic catches it
# Author, committer and dates are fixed, so the SHAs are the same on every
# machine and no git identity is needed. Prints the tags and their SHAs.
set -eu

[ $# -eq 1 ] || { echo "usage: make-repo.sh DIR" >&2; exit 2; }
dir=$1
if [ -e "$dir/.git" ]; then
	echo "make-repo.sh: $dir is already a git repository; remove it first" >&2
	exit 1
fi
command -v git >/dev/null || { echo "make-repo.sh: git is not installed (apt-get install -y git)" >&2; exit 1; }

export GIT_AUTHOR_NAME="Rollout Demo" GIT_AUTHOR_EMAIL="demo@rollout.invalid"
export GIT_COMMITTER_NAME="Rollout Demo" GIT_COMMITTER_EMAIL="demo@rollout.invalid"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

mkdir -p "$dir/conf"
git -C "$dir" init -q -b main

n=0
# commit TAG MESSAGE: commit everything with a fixed date and tag it.
commit() {
	n=$((n + 1))
	export GIT_AUTHOR_DATE="2026-01-0${n}T12:00:00Z" GIT_COMMITTER_DATE="2026-01-0${n}T12:00:00Z"
	git -C "$dir" add -A
	git -C "$dir" commit -q -m "$2"
	git -C "$dir" tag -a "$1" -m "$1"
}

cat >"$dir/README.md" <<'MD'
# rollout demo config repository

`conf/app.conf.tmpl` is rendered per host by rollout (HCL template syntax:
`${host.name}`, `${host.vars.app_port}`) into the demo app's config, which
`demo-app -check -config FILE` validates.

Tags: `v1`, `v2` (good), `broken-config` (fails the validator),
`crashloop` (passes the validator, the app then exits every second),
`flaky` (healthy, but 5% of requests fail: for canary analysis).
MD

cat >"$dir/conf/app.conf.tmpl" <<'TMPL'
# demo-app config for ${host.name}, rendered by rollout
version = 1
message = "hello from ${host.name}"
listen = 127.0.0.1:${host.vars.app_port}
TMPL
commit v1 "app.conf: first version"

cat >"$dir/conf/app.conf.tmpl" <<'TMPL'
# demo-app config for ${host.name}, rendered by rollout
version = 2
message = "hello again from ${host.name}, now on v2"
listen = 127.0.0.1:${host.vars.app_port}
TMPL
commit v2 "app.conf: v2 with a new message"

cat >"$dir/conf/app.conf.tmpl" <<'TMPL'
# demo-app config for ${host.name}, rendered by rollout
version = 3
message = "v3 on ${host.name}"
listen = 127.0.0.1:${host.vars.app_port}
# demo-app has no such setting: `demo-app -check` rejects this file
colour = blue
TMPL
commit broken-config "app.conf: v3 with a colour (broken: demo-app has no such key)"

cat >"$dir/conf/app.conf.tmpl" <<'TMPL'
# demo-app config for ${host.name}, rendered by rollout
version = 4
message = "v4 on ${host.name}"
listen = 127.0.0.1:${host.vars.app_port}
# valid, but the app exits with status 1 after a second: a crash loop
exit_after = 1s
TMPL
commit crashloop "app.conf: v4 (crash loop: exit_after = 1s)"

cat >"$dir/conf/app.conf.tmpl" <<'TMPL'
# demo-app config for ${host.name}, rendered by rollout
version = 5
message = "v5 on ${host.name}"
listen = 127.0.0.1:${host.vars.app_port}
# healthy, /healthz answers ok, but one request in twenty to / fails with 500
error_rate = 0.05
TMPL
commit flaky "app.conf: v5 (5% of requests fail: error_rate = 0.05)"

for t in v1 v2 broken-config crashloop flaky; do
	printf '%-14s %s\n' "$t" "$(git -C "$dir" rev-parse "$t^{commit}")"
done
