package fleet

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is the path of the OpenSSH server the fleet runs.
const SSHD = "/usr/sbin/sshd"

// writeKeyPair writes an ed25519 private key (OpenSSH format, 0600) to path
// and its public key to path+".pub", and returns the public key.
func writeKeyPair(path, comment string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + comment + "\n"
	if err := os.WriteFile(path+".pub", []byte(line), 0o644); err != nil {
		return nil, fmt.Errorf("write public key: %w", err)
	}
	return sshPub, nil
}

func sshdConfig(h Host, hostKey, authorizedKeys, pidFile, extra string) string {
	return fmt.Sprintf(`# written by rollout's internal/fleet
Port %d
ListenAddress %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
%s`, h.SSHPort, h.Address(), hostKey, pidFile, authorizedKeys, extra)
}

// startSSHD starts one sshd for h (whose SSHPort may be replaced if the port
// turns out to be taken) and waits until it sends its banner.
func (f *Fleet) startSSHD(ctx context.Context, h *Host, detach bool) (ssh.PublicKey, error) {
	dir := filepath.Join(f.Dir, "hosts", h.Name, "ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sshd %s: %w", h.Name, err)
	}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	pub, err := writeKeyPair(hostKey, "root@"+h.Name)
	if err != nil {
		return nil, fmt.Errorf("sshd %s: host key: %w", h.Name, err)
	}
	cfgPath := filepath.Join(dir, "sshd_config")
	logPath := filepath.Join(f.Dir, "logs", "sshd-"+h.Name+".log")
	const attempts = 3
	for attempt := 1; ; attempt++ {
		extra := ""
		if h.Delayable {
			if extra, err = writeDelayShell(dir); err != nil {
				return nil, fmt.Errorf("sshd %s: %w", h.Name, err)
			}
		}
		cfg := sshdConfig(*h, hostKey, f.authorizedKeys(), filepath.Join(dir, "sshd.pid"), extra)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return nil, fmt.Errorf("sshd %s: %w", h.Name, err)
		}
		p, exited, err := startProcess("sshd "+h.Name, h.inNetns([]string{SSHD, "-D", "-f", cfgPath, "-E", logPath}), logPath, cfgPath, detach)
		if err != nil {
			return nil, err
		}
		f.Processes = append(f.Processes, p)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = poll(wctx, "sshd "+h.Name, exited, 10*time.Millisecond, func() error { return sshBanner(h.Address(), h.SSHPort) })
		cancel()
		if err == nil {
			return pub, nil
		}
		if !errors.Is(err, errExited) || attempt == attempts {
			return nil, fmt.Errorf("%w; see %s", err, logPath)
		}
		// Most likely the port was taken meanwhile: try another.
		ports, perr := freePorts(1)
		if perr != nil {
			return nil, perr
		}
		h.SSHPort = ports[0]
	}
}

// sshBanner dials addr:port and reads the SSH identification line.
func sshBanner(addr string, port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("not an ssh server: %q", line)
	}
	return nil
}

func (f *Fleet) authorizedKeys() string { return filepath.Join(f.Dir, "authorized_keys") }

// knownHostsLine is the known_hosts entry for an sshd on addr:port.
func knownHostsLine(addr string, port int, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(addr, strconv.Itoa(port)))}, key)
}
