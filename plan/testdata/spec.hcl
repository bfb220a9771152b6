plan "web" {
  inventory = "inventory.ini"     # an Ansible INI or YAML inventory, read as it is
  hosts     = "web"               # pattern (below)
  repo      = "."                 # git repo holding the deployable files; default: the repo containing this file
  revision  = "9fceb02d0ae598e95dc970b74767f19372d61af8"  # full commit SHA or a tag; a branch name is refused
  batch     = [1, "25%"]          # like Ansible serial: first batch 1 host (canary), then 25% per batch; the last entry repeats
  max_failures = 0                # hosts that may fail before the run halts (count or "N%")
  on_failure   = "rollback"       # "rollback": failed hosts go back to their previous revision; "halt": leave them drained for inspection
  pause        = "0s"             # bake time between batches; health of finished hosts is re-checked during it
  min_in_service = "75%"          # the pool never drops below this many serving backends
  state_dir      = "/var/lib/rollout"   # default; evaluated per host (a local test fleet sharing one filesystem uses "${host.vars.root}/state")
  expect_hosts   = 12             # optional: the pattern must select exactly this many (or "10..14"); a typo that selects 120 hosts is refused

  drain "haproxy" {
    endpoints = ["unix:/run/haproxy/admin.sock"]  # every LB of the pair; "tcp:HOST:PORT" also accepted
    via       = "lb1"             # optional: reach the socket through this inventory host over SSH
    backend   = "web"
    server    = host.name
    timeout   = "2m"              # waiting for current sessions to reach zero
    ramp      = ["10%", "50%", "100%"]  # weights when the host comes back, each step health-checked
  }

  file "app.conf" {
    source   = "conf/app.conf.tmpl"       # path inside the repo at the pinned revision
    template = true                       # HCL template syntax: ${host.vars.port}, %{ if ... }
    dest     = "/etc/app/app.conf"
    mode     = "0644"
    validate = "appd -check -config %s"   # run on the host against the staged copy, before it goes live
  }

  check   = "appd -check -config /etc/app/app.conf"  # optional: whole-config validator after files are in place, before restart
  restart = "systemctl restart appd"

  health "http" {
    url          = "http://${host.address}:8080/healthz"
    status       = 200
    body_matches = "ok"
    interval     = "1s"
    healthy_for  = "10s"          # must pass continuously this long; any failure restarts the window
    deadline     = "2m"           # not stable by then = failed
    unit         = "appd"         # optional flap guard: a systemd restart (NRestarts / main PID change) during the window = failed
    # pid_file   = "/run/appd.pid"  # the same flap guard for hosts without systemd: the pid must not change or die during the window
  }
}
