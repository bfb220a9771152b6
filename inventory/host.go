// Package inventory reads Ansible INI and YAML inventories as they are,
// selects hosts with Ansible host patterns, and applies ~/.ssh/config.
package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Host is one inventory host with its variables merged the way Ansible
// merges them (all < parent groups < child groups < host).
type Host struct {
	// Name is the inventory name (what patterns match).
	Name string
	// Address is ansible_host, or Name when unset.
	Address string
	// Port is ansible_port, or 0 when unset (the SSH layer then uses
	// ~/.ssh/config or 22).
	Port int
	// User is ansible_user, or remote_user from ansible.cfg, or "" when
	// unset.
	User string
	// KeyFile is ansible_ssh_private_key_file (or
	// ansible_private_key_file), else private_key_file from ansible.cfg,
	// else "".
	KeyFile string
	// Become is ansible_become.
	Become bool
	// BecomeUser is ansible_become_user ("" = root); BecomeMethod is
	// ansible_become_method ("" = sudo; anything else is refused by
	// CheckConnection).
	BecomeUser   string
	BecomeMethod string
	// Connection is "ssh" (also for smart and paramiko), "local" for
	// ansible_connection=local (commands run on this machine, no SSH), or
	// another plugin's name, which CheckConnection refuses.
	Connection string
	// Implicit is Ansible's implicit localhost: not in the inventory, in
	// no group, selected only by naming it.
	Implicit bool
	// Groups the host belongs to, directly or through children, sorted,
	// without the implicit "all" and "ungrouped".
	Groups []string
	// Vars are the merged variables. Values are string, int64, float64,
	// bool, nil, []any or map[string]any (YAML). INI values are evaluated
	// as Ansible evaluates them (Python literals: 42, 1.5, True, False,
	// None, 'quoted'); anything else is the raw string.
	Vars map[string]any

	// origins maps a variable of Vars to the file:line its value was
	// read from (where known), for errors naming the variable.
	origins map[string]string

	inv *Inventory // for groups and hostvars in templates
}

// WithConnectionOf is a copy of h (its groups and variables) reached as
// c is: address, port, user, key, become and connection type. Rendering
// an earlier revision uses that revision's variables with how the host
// is reached today.
func (h *Host) WithConnectionOf(c *Host) *Host {
	out := *h
	out.Address, out.Port, out.User, out.KeyFile = c.Address, c.Port, c.User, c.KeyFile
	out.Become, out.BecomeUser, out.BecomeMethod, out.Connection = c.Become, c.BecomeUser, c.BecomeMethod, c.Connection
	return &out
}

// VarsDigest is a sha256 (hex) of the host's groups and merged variables:
// what its files are rendered with. A host records it, so a change of an
// inventory that no revision pins can be told apart later.
func (h *Host) VarsDigest() string {
	b, err := json.Marshal(struct {
		Groups []string       `json:"groups"`
		Vars   map[string]any `json:"vars"`
	}{h.Groups, h.Vars})
	if err != nil { // only plain data: cannot happen
		b = []byte(fmt.Sprint(h.Groups, h.Vars))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
