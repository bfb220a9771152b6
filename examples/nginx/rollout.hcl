# Roll an nginx configuration across web servers behind HAProxy.
#
# The repository holding this file holds the nginx config too (nginx/);
# `revision` pins a tag of it. Per-host values come from the inventory:
#   nginx_port      the port nginx listens on (HAProxy's server address)
#   haproxy_socket  the HAProxy admin socket (`stats socket ... level admin`)
#   root            "" on real hosts; a per-host directory when several
#                   "hosts" share one filesystem (the e2e test's fleet)
# See README.md.
plan "nginx" {
  inventory    = "inventory.ini"
  hosts        = "web"
  revision     = "v2"
  batch        = [1, "50%"]       # one canary, then half the pool per batch
  on_failure   = "rollback"       # a host that fails after its reload goes back to its previous revision
  state_dir    = "${host.vars.root}/var/lib/rollout"

  drain "haproxy" {
    endpoints = ["unix:${host.vars.haproxy_socket}"]
    backend   = "web"
    server    = host.name
    timeout   = "30s"
    ramp      = ["50%", "100%"]
  }

  # The main config. Its validator runs on every targeted host against the
  # staged copy (beside the live file, so relative includes such as
  # conf.d/*.conf resolve to the live tree), before any host is drained.
  file "nginx.conf" {
    source   = "nginx/nginx.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/etc/nginx/nginx.conf"
    validate = "nginx -t -q -c %s"
  }

  # An include: it cannot be checked on its own, so `check` below tests the
  # whole installed tree before the reload.
  file "site.conf" {
    source   = "nginx/conf.d/site.conf.tmpl"
    template = true
    dest     = "${host.vars.root}/etc/nginx/conf.d/site.conf"
  }

  check   = "nginx -t -q -c ${host.vars.root}/etc/nginx/nginx.conf"
  # A graceful reload: the master re-reads the config, starts new workers and
  # lets the old ones finish their requests. The master pid does not change.
  restart = "nginx -c ${host.vars.root}/etc/nginx/nginx.conf -s reload"
  diagnostics = ["tail -n 20 ${host.vars.root}/var/log/nginx/error.log"]

  health "http" {
    url          = "http://${host.address}:${host.vars.nginx_port}/"
    # `nginx -s reload` exits 0 even when the master keeps the old config
    # (say, the new one cannot bind its port): the page names the revision,
    # so the gate only passes once the new config is really serving.
    body_matches = "revision ${revision}"
    interval     = "200ms"
    healthy_for  = "2s"
    deadline     = "30s"
    # Flap guard on the master: a reload keeps its pid; a crash or a full
    # restart during the window changes it, and fails the host.
    pid_file     = "${host.vars.root}/run/nginx.pid"
  }
}
