# Upgrade a Debian package fleet-wide, the version pinned by the revision:
# group_vars/web.yml holds app_version, so `rollout rollback --to v1`
# installs v1's version again (apt-get --allow-downgrades).
plan "app" {
  inventory  = "inventory.ini"
  hosts      = "web"
  revision   = "v1"
  batch      = [1, "50%"]
  on_failure = "rollback"  # a failing health gate goes back: v1's install, restart, health
  become     = true        # apt-get and systemctl through sudo -n

  drain "haproxy" {
    endpoints = ["unix:/run/haproxy/admin.sock"]
    backend   = "app"
    server    = host.name
  }

  # every host downloads the .deb in preflight, before any host is drained:
  # a version the mirror lacks stops the run with nothing drained
  prefetch = "apt-get install -y --download-only app=${host.vars.app_version}"
  # drained: install the pinned version, then restart
  install  = "DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades app=${host.vars.app_version}"
  check    = "dpkg-query -W -f '$${Version}' app | grep -qx ${host.vars.app_version}"
  restart  = "systemctl restart app"

  health "http" {
    url         = "http://${host.address}:8080/healthz"
    healthy_for = "10s"
    unit        = "app"
  }
}
