# The demo plan: roll the demo app's config over the local fleet, one canary
# host first, then half of the fleet per batch.
#
# This file is a template: demo.sh copies it into the demo directory and
# replaces the @PLACEHOLDERS@:
#   @REPO@         the demo config repo made by make-repo.sh (absolute path)
#   @REVISION@     the full SHA of the tag v2 in that repo
#   @SOCKETS@      "unix:/…/lb1/admin.sock" for every HAProxy of the fleet
#   @DEMO_APP@     the demo-app binary (the file validator)
#   @RESTART_APP@  the restart-app script (restarts a host's app)
# Everything per host comes from inventory.ini, which `fleet up` writes:
# host.vars.root is the host's root directory, host.vars.app_port its port.
plan "demo" {
  inventory = "inventory.ini"
  hosts     = "web"
  repo      = "@REPO@"
  revision  = "@REVISION@" # v2; try the tags' SHAs of broken-config and crashloop
  batch     = [1, "50%"]
  on_failure = "rollback"
  # The hosts share this machine's filesystem, so each keeps its state in
  # its own root.
  state_dir = "${host.vars.root}/state"
  expect_hosts = 4

  drain "haproxy" {
    endpoints = [@SOCKETS@]
    backend   = "web"
    server    = host.name
    timeout   = "30s"
    ramp      = ["50%", "100%"]
  }

  # Canary analysis (docs/analysis.md): compare the host just changed with
  # the others from HAProxy's own counters at every ramp step. It needs
  # traffic through HAProxy; without it the step holds and then fails with
  # "not enough traffic" at the deadline. Uncomment to catch the flaky tag.
  # analysis "haproxy" {
  #   max_error_rate          = "1%"
  #   max_error_rate_increase = "0.5%"
  #   min_requests            = 100
  #   interval                = "5s"
  #   deadline                = "1m"
  # }

  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/etc/app.conf"
    validate = "@DEMO_APP@ -check -config %s"
  }

  restart = "@RESTART_APP@ ${host.vars.root}"

  health "http" {
    url         = "http://127.0.0.1:${host.vars.app_port}/healthz"
    interval    = "200ms"
    healthy_for = "2s"
    deadline    = "30s"
    # restart-app's supervisor rewrites this on every start of the app: a
    # crash-looping config changes it within the window.
    pid_file    = "${host.vars.root}/run/app.pid"
  }
}
