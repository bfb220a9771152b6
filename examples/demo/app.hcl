# The demo's software upgrade: deploy the demo app's binary itself as an
# artifact (docs/artifacts.md), one canary host first, then half of the
# fleet per batch.
#
# This file is a template: demo.sh copies it into the demo directory and
# replaces the @PLACEHOLDERS@:
#   @REPO@         the demo config repo (absolute path)
#   @REVISION@     the full SHA of the tag build-2 in that repo
#   @ARTIFACTS@    the URL of the demo's artifact server on 127.0.0.1
#   @SOCKETS@      "unix:/…/lb1/admin.sock" for every HAProxy of the fleet
#   @RESTART_APP@  the restart-app script (restarts a host's app)
# The build each revision deploys, and its sha256, are pinned in the repo:
# app/inventory.ini and app/group_vars/web.yml (app_build, app_sha256) at
# the tags build-1 and build-2, so a rollback to build-1 is build 1's bytes.
plan "demo-app" {
  inventory    = "@REPO@/app/inventory.ini"
  hosts        = "web"
  repo         = "@REPO@"
  revision     = "@REVISION@"
  batch        = [1, "50%"]
  on_failure   = "rollback"
  state_dir    = "${host.vars.root}/state-app"
  expect_hosts = 4

  drain "haproxy" {
    endpoints = [@SOCKETS@]
    backend   = "web"
    server    = host.name
    timeout   = "30s"
    ramp      = ["50%", "100%"]
  }

  # releases/<id>/ per build under dest, the live one is dest/current;
  # fetched once by rollout, verified against the pinned sha256 and
  # staged on every host before any host is drained.
  artifact "demo-app" {
    source   = "@ARTIFACTS@/demo-app-${host.vars.app_build}.tar.gz"
    sha256   = host.vars.app_sha256
    dest     = "${host.vars.root}/opt/demo-app"
    unpack   = true
    keep     = 3
    validate = "%s/bin/demo-app -version"
  }

  # the app runs from the release current points at
  restart = "DEMO_APP=${host.vars.root}/opt/demo-app/current/bin/demo-app @RESTART_APP@ ${host.vars.root}"

  health "http" {
    url         = "http://127.0.0.1:${host.vars.app_port}/healthz"
    interval    = "200ms"
    healthy_for = "1s"
    deadline    = "30s"
    pid_file    = "${host.vars.root}/run/app.pid"
  }
}
