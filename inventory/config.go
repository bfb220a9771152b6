package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// AnsibleConfig is what rollout takes from ansible.cfg: the [defaults]
// that say where the inventory is and how hosts are reached. Safety
// settings are never loosened by it: host_key_checking = False is read
// only to warn that rollout still checks host keys.
type AnsibleConfig struct {
	Path      string   // the file read ("" = none found)
	Inventory []string // inventory sources, absolute (relative to the file)
	Defaults  Defaults
	Forks     int // 0 = not set
	// AnsibleManaged is [defaults] ansible_managed ("" = not set:
	// ansible-core's default); templates render it as ansible_managed
	AnsibleManaged string
	Warnings       []string // settings read but not honoured, with file:line
}

// FindConfig finds ansible.cfg as ansible-core does: $ANSIBLE_CONFIG, then
// ansible.cfg in the current directory, then (rollout's addition, the
// playbook's directory) in dir, then ~/.ansible.cfg, then
// /etc/ansible/ansible.cfg. It returns an empty config when there is none.
func FindConfig(dir string) (*AnsibleConfig, error) { return FindConfigIn(nil, dir) }

// FindConfigIn is FindConfig reading from fsys (nil = the local disk).
func FindConfigIn(fsys Files, dir string) (*AnsibleConfig, error) {
	r := reader{fsys}
	var candidates []string
	if env := os.Getenv("ANSIBLE_CONFIG"); env != "" {
		if st, err := r.stat(env); err == nil && st.IsDir() {
			env = filepath.Join(env, "ansible.cfg")
		}
		candidates = append(candidates, env)
	}
	if wd, err := os.Getwd(); err == nil {
		candidates = append(candidates, filepath.Join(wd, "ansible.cfg"))
	}
	if dir != "" {
		candidates = append(candidates, filepath.Join(dir, "ansible.cfg"))
	}
	if home := homeDir(); home != "" {
		candidates = append(candidates, filepath.Join(home, ".ansible.cfg"))
	}
	candidates = append(candidates, "/etc/ansible/ansible.cfg")
	for _, c := range candidates {
		data, err := r.readFile(c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ansible.cfg: %w", err)
		}
		return ParseConfig(c, data)
	}
	return &AnsibleConfig{}, nil
}

// ParseConfig reads an ansible.cfg (INI: [section], key = value or
// key: value, # and ; comments).
func ParseConfig(path string, data []byte) (*AnsibleConfig, error) {
	cfg := &AnsibleConfig{Path: path}
	base := filepath.Dir(path)
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, &parseError{file: path, line: lineNo, msg: fmt.Sprintf("expected a [section] header, got %q", line)}
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return nil, &parseError{file: path, line: lineNo, msg: fmt.Sprintf("expected key = value, got %q", line)}
		}
		key := strings.ToLower(strings.TrimSpace(line[:i]))
		val := strings.TrimSpace(line[i+1:])
		if j := strings.Index(val, " ;"); j >= 0 { // inline comments (Python's configparser: " ;")
			val = strings.TrimSpace(val[:j])
		}
		val = strings.Trim(val, `"'`)
		at := fmt.Sprintf("%s:%d", path, lineNo)
		switch section + "." + key {
		case "defaults.inventory", "defaults.hostfile":
			for _, src := range strings.Split(val, ",") {
				src = strings.TrimSpace(src)
				if src == "" {
					continue
				}
				src = expandTilde(src)
				if !filepath.IsAbs(src) {
					src = filepath.Join(base, src)
				}
				cfg.Inventory = append(cfg.Inventory, src)
			}
		case "defaults.ansible_managed":
			cfg.AnsibleManaged = val
		case "defaults.remote_user":
			cfg.Defaults.RemoteUser = val
		case "defaults.private_key_file":
			p := expandTilde(val)
			if p != "" && !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
			cfg.Defaults.PrivateKeyFile = p
		case "defaults.forks":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return nil, &parseError{file: path, line: lineNo, msg: fmt.Sprintf("forks: expected a positive number, got %q", val)}
			}
			cfg.Forks = n
		case "defaults.host_key_checking":
			if !truthy(val) {
				cfg.Warnings = append(cfg.Warnings, at+": host_key_checking = "+val+" is not honoured: rollout always checks host keys against known_hosts (use --accept-new-host-keys to record keys of new hosts)")
			}
		case "ssh_connection.ssh_args", "ssh_connection.ssh_common_args", "ssh_connection.ssh_extra_args":
			if strings.Contains(val, "StrictHostKeyChecking=no") || strings.Contains(val, "UserKnownHostsFile=/dev/null") {
				cfg.Warnings = append(cfg.Warnings, at+": "+key+" turns host key checking off; that is not honoured: rollout always checks host keys against known_hosts")
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ansible.cfg: %w", err)
	}
	return cfg, nil
}
