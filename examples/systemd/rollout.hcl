# Roll the config of a systemd service: systemctl restarts it, and the
# health gate's flap guard watches the unit (NRestarts and MainPID).
plan "app" {
  inventory  = "inventory.ini"
  hosts      = "web"
  revision   = "v1"
  batch      = [1, "50%"]
  on_failure = "halt"    # a flapping unit stays drained for inspection

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

  restart     = "systemctl restart ${host.vars.unit}"
  diagnostics = ["systemctl status --no-pager ${host.vars.unit}", "journalctl -u ${host.vars.unit} -n 30 --no-pager"]

  health "http" {
    url         = "http://${host.address}:${host.vars.app_port}/healthz"
    healthy_for = "10s"
    # flap guard: a restart by systemd (NRestarts grows) or any new MainPID
    # during the window fails the host
    unit        = host.vars.unit
  }
}
