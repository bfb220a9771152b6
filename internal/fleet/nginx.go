package fleet

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// NginxBinary is Debian's nginx, which the nginx example rolls.
const NginxBinary = "/usr/sbin/nginx"

// StartNginx runs Debian's nginx on host h with conf as its main config, in
// the foreground (`daemon off`), the way a service manager would run it:
// the master stays this fleet's child, is stopped by Stop like sshd and
// HAProxy, and dies with the calling process. `nginx -s reload` keeps the
// master (and its pid) running. It waits until 127.0.0.1:port accepts
// connections. Directories named in conf must exist.
func (f *Fleet) StartNginx(ctx context.Context, h Host, conf string, port int) error {
	name := "nginx " + h.Name
	if _, err := os.Stat(NginxBinary); err != nil {
		return fmt.Errorf("%s: %w: nginx (%s)", name, ErrMissing, NginxBinary)
	}
	logPath := filepath.Join(h.Root, "log", "nginx.log")
	p, exited, err := startProcess(name, []string{NginxBinary, "-c", conf, "-g", "daemon off;"}, logPath, conf, false)
	if err != nil {
		return err
	}
	f.Processes = append(f.Processes, p)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = poll(wctx, name, exited, 20*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return fmt.Errorf("%w; see %s", err, logPath)
	}
	return nil
}
