# Two datacenters in one run, with a database migration before the first
# host changes and a smoke test after each batch: one plan, one lock, one
# journal. dc1 goes first, one host at a time; dc2 waits for a person to
# approve, then goes half at a time. If a host fails, every host this run
# changed goes back to the revision it had.
plan "app" {
  inventory  = "inventory.ini"
  hosts      = "web"
  revision   = "v1"
  batch      = 1
  on_failure = "rollback_all"

  hook "migrate" {
    at      = "before_run"              # after preflight, before the first drain
    on      = "db1"                      # over SSH; default: this machine
    command = "/usr/local/bin/app-migrate --to ${revision}"
    timeout = "15m"
  }
  hook "smoke" {
    at      = "after_batch"              # a failure halts like a failed host
    command = "./smoke-test.sh"          # on this machine, in the plan's directory
  }

  wave "dc1" { hosts = "dc1" }
  wave "dc2" {
    hosts   = "dc2"
    batch   = "50%"
    pause   = "10m"                      # after dc1, before dc2
    approve = true
  }

  drain "haproxy" {
    endpoints = ["unix:/run/haproxy/admin.sock"]
    backend   = "app"
    server    = host.name
  }

  file "app.conf" {
    source   = "conf/app.conf.tmpl"
    template = true
    dest     = "/etc/app/app.conf"
    validate = "/usr/local/bin/app -check -config %s"
  }

  restart = "systemctl restart app"

  health "http" {
    url         = "http://${host.address}:8080/healthz"
    healthy_for = "10s"
  }
}
