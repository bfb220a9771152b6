package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// systemSSHConfig is read after the user's file when LoadSSHConfig is
// given no path, as ssh(1) does.
const systemSSHConfig = "/etc/ssh/ssh_config"

// SSHConfig is a parsed OpenSSH client configuration (the user's file,
// and the system-wide one when loaded by default).
type SSHConfig struct {
	files []*ssh_config.Config
	// localUser and home are the values used for defaults and % tokens;
	// tests may set them.
	localUser string
	home      string
}

// Endpoint is where and how to connect to a host once the inventory and
// ssh_config are applied.
type Endpoint struct {
	// Alias is the name ssh_config Host patterns were matched against:
	// ansible_host, else the inventory name.
	Alias string
	// Address is ssh_config HostName (with %h expanded), else Alias.
	Address string
	// Port is ansible_port, else ssh_config Port, else 22.
	Port int
	// User is ansible_user, else ssh_config User, else the local user.
	User string
	// IdentityFiles: the inventory key first, then every ssh_config
	// IdentityFile, ~ and % tokens expanded. OpenSSH's default keys are not
	// included.
	IdentityFiles []string
	// ProxyJump is the ssh_config ProxyJump as written ("" when unset or
	// "none"); resolve it with ResolveJump.
	ProxyJump string
}

// LoadSSHConfig reads an ssh_config file. A missing file gives an empty
// configuration. path "" means ~/.ssh/config followed by
// /etc/ssh/ssh_config, as ssh(1) reads them (first value wins).
func LoadSSHConfig(path string) (*SSHConfig, error) {
	c := &SSHConfig{home: homeDir(), localUser: localUserName()}
	paths := []string{path}
	if path == "" {
		paths = []string{filepath.Join(c.home, ".ssh", "config"), systemSSHConfig}
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read ssh config: %w", err)
		}
		cfg, err := ssh_config.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("parse ssh config %s: %w", p, err)
		}
		c.files = append(c.files, cfg)
	}
	return c, nil
}

func localUserName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// get returns the first value for key among the files, as OpenSSH keeps
// the first value it obtains.
func (c *SSHConfig) get(alias, key string) string {
	if c == nil {
		return ""
	}
	for _, f := range c.files {
		if v, err := f.Get(alias, key); err == nil && v != "" {
			return v
		}
	}
	return ""
}

func (c *SSHConfig) getAll(alias, key string) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, f := range c.files {
		if v, err := f.GetAll(alias, key); err == nil {
			out = append(out, v...)
		}
	}
	return out
}

// Endpoint applies ssh_config to an inventory host the way
// `ssh -p PORT -l USER -i KEY ADDRESS` would: the inventory's port, user
// and key are command-line options and win over ssh_config; ssh_config
// Host patterns match the address Ansible passes (ansible_host, else the
// inventory name).
func (c *SSHConfig) Endpoint(h *Host) Endpoint {
	alias := h.Address
	if alias == "" {
		alias = h.Name
	}
	var keys []string
	if h.KeyFile != "" {
		keys = append(keys, expandTilde(h.KeyFile))
	}
	return c.resolve(alias, h.Port, h.User, keys)
}

// resolve applies ssh_config to one destination given as on the command
// line: alias, and the -p, -l and -i values (0, "" and nil when absent).
func (c *SSHConfig) resolve(alias string, port int, userName string, keys []string) Endpoint {
	lookup := strings.ToLower(alias) // ssh(1) lowercases the host before matching
	ep := Endpoint{Alias: alias, Address: alias, Port: port, User: userName}
	if hn := c.get(lookup, "HostName"); hn != "" {
		ep.Address = expandTokens(hn, map[byte]string{'h': alias})
	}
	if ep.Port == 0 {
		if p, err := strconv.Atoi(c.get(lookup, "Port")); err == nil && p > 0 && p < 65536 {
			ep.Port = p
		}
	}
	if ep.Port == 0 {
		ep.Port = 22
	}
	if ep.User == "" {
		ep.User = c.get(lookup, "User")
	}
	if ep.User == "" {
		ep.User = c.local().localUser
	}
	ep.IdentityFiles = append(ep.IdentityFiles, keys...)
	tokens := map[byte]string{
		'd': c.local().home,
		'u': c.local().localUser,
		'h': ep.Address,
		'n': alias,
		'r': ep.User,
		'p': strconv.Itoa(ep.Port),
	}
	for _, f := range c.getAll(lookup, "IdentityFile") {
		if strings.EqualFold(f, "none") {
			continue
		}
		f = c.expandHome(expandTokens(f, tokens))
		if !contains(ep.IdentityFiles, f) {
			ep.IdentityFiles = append(ep.IdentityFiles, f)
		}
	}
	if j := c.get(lookup, "ProxyJump"); !strings.EqualFold(j, "none") {
		ep.ProxyJump = j
	}
	return ep
}

// local returns c, or defaults when c is nil.
func (c *SSHConfig) local() *SSHConfig {
	if c == nil {
		return &SSHConfig{home: homeDir(), localUser: localUserName()}
	}
	return c
}

func (c *SSHConfig) expandHome(p string) string {
	if p == "~" {
		return c.local().home
	}
	if strings.HasPrefix(p, "~/") {
		return c.local().home + p[1:]
	}
	return expandTilde(p)
}

// expandTokens expands %% and the given %x tokens. An unknown token leaves
// the string as it is.
func expandTokens(s string, tokens map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return s
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := tokens[s[i]]
		if !ok {
			return s
		}
		b.WriteString(v)
	}
	return b.String()
}

// ResolveJump parses a ProxyJump value ("user@host:port,host2", also
// ssh://user@host:port) into hops, first hop first, each resolved through
// ssh_config as ssh(1) resolves a jump host: the user and port written in
// the spec beat ssh_config. Only the first hop keeps its own ssh_config
// ProxyJump (ssh(1) passes the earlier hops to later ones with -J, which
// overrides theirs). "" and "none" give no hops.
func (c *SSHConfig) ResolveJump(spec string) ([]Endpoint, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "none") {
		return nil, nil
	}
	var hops []Endpoint
	for i, part := range strings.Split(spec, ",") {
		userName, host, port, err := parseJumpHop(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("proxy jump %q: %w", spec, err)
		}
		ep := c.resolve(host, port, userName, nil)
		if i > 0 {
			ep.ProxyJump = ""
		}
		hops = append(hops, ep)
	}
	return hops, nil
}

// parseJumpHop parses [ssh://][user@]host[:port], host possibly a
// [bracketed] IPv6 address.
func parseJumpHop(s string) (userName, host string, port int, err error) {
	s = strings.TrimPrefix(s, "ssh://")
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return "", "", 0, fmt.Errorf("expected [user@]host[:port], got an empty hop")
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		userName, s = s[:i], s[i+1:]
		if userName == "" {
			return "", "", 0, fmt.Errorf("expected a user name before '@'")
		}
	}
	host = s
	var portStr string
	switch {
	case strings.HasPrefix(s, "["):
		h, p, splitErr := net.SplitHostPort(s)
		if splitErr != nil {
			if !strings.HasSuffix(s, "]") {
				return "", "", 0, fmt.Errorf("expected [address] or [address]:port, got %q", s)
			}
			h = s[1 : len(s)-1]
		}
		host, portStr = h, p
	case strings.Count(s, ":") == 1:
		host, portStr, _ = strings.Cut(s, ":")
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("expected a host name in %q", s)
	}
	if portStr != "" {
		port, err = strconv.Atoi(portStr)
		if err != nil || port < 1 || port > 65535 {
			return "", "", 0, fmt.Errorf("expected a port from 1 to 65535, got %q", portStr)
		}
	}
	return userName, host, port, nil
}
