package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// credentials are the keys offered to one host, in order: the agent's keys
// first, then the identity files'.
type credentials struct {
	agentConn net.Conn // nil without an agent
	agentKeys int
	files     []string // identity files that loaded
	skipped   []string // identity files that could not be used, with why
	signers   []ssh.Signer
	firstErr  error // the first reason a file was unusable
}

func (c *credentials) close() {
	if c.agentConn != nil {
		c.agentConn.Close()
	}
}

// tried describes what was offered, for error messages. It never includes
// key material.
func (c *credentials) tried() string {
	var parts []string
	if c.agentConn != nil {
		parts = append(parts, fmt.Sprintf("ssh-agent (%d keys)", c.agentKeys))
	}
	parts = append(parts, c.files...)
	for _, s := range c.skipped {
		parts = append(parts, "skipped "+s)
	}
	if len(parts) == 0 {
		return "no keys"
	}
	return strings.Join(parts, ", ")
}

func defaultIdentityFiles() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	var files []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(home, ".ssh", n)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	return files
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// loadCredentials gathers the agent's keys (via SSH_AUTH_SOCK) and the
// identity files. It never prompts: a passphrase-protected file is skipped
// (the agent may hold it); when nothing usable remains the error names the
// files and why.
func loadCredentials(t Target, userHost string) (*credentials, error) {
	c := &credentials{}
	var agentPubs [][]byte
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			signers, err := agent.NewClient(conn).Signers()
			if err != nil {
				conn.Close()
			} else {
				c.agentConn = conn
				c.agentKeys = len(signers)
				c.signers = append(c.signers, signers...)
				for _, s := range signers {
					agentPubs = append(agentPubs, s.PublicKey().Marshal())
				}
			}
		}
	}

	files := t.IdentityFiles
	explicit := len(files) > 0
	if !explicit {
		files = defaultIdentityFiles()
	}
	for _, f := range files {
		f = expandHome(f)
		s, err := loadIdentity(f)
		if err != nil {
			var pm *ssh.PassphraseMissingError
			why := err.Error()
			ferr := fmt.Errorf("identity file %s: %w", f, err)
			if errors.As(err, &pm) {
				if pm.PublicKey != nil && containsKey(agentPubs, pm.PublicKey.Marshal()) {
					continue // the agent holds it: nothing lost
				}
				why = "passphrase protected"
				ferr = fmt.Errorf("identity file %s is passphrase protected and no ssh-agent holds it (load it with: ssh-add %s): %w", f, f, err)
			}
			c.skipped = append(c.skipped, fmt.Sprintf("%s (%s)", f, why))
			if c.firstErr == nil {
				c.firstErr = ferr
			}
			continue
		}
		c.files = append(c.files, f)
		if !containsKey(agentPubs, s.PublicKey().Marshal()) {
			c.signers = append(c.signers, s)
		}
	}
	if len(c.signers) == 0 {
		c.close()
		if c.firstErr != nil {
			return nil, fmt.Errorf("%w: %s: no usable key: %w (tried: %s)", ErrAuth, userHost, c.firstErr, c.tried())
		}
		return nil, fmt.Errorf("%w: %s: no keys to offer: no ssh-agent (SSH_AUTH_SOCK) and no identity file (set ansible_ssh_private_key_file or create ~/.ssh/id_ed25519)", ErrAuth, userHost)
	}
	return c, nil
}

func loadIdentity(file string) (ssh.Signer, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(pem)
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}
