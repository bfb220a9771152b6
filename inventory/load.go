package inventory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults are the connection settings of ansible.cfg's [defaults] that
// apply to hosts whose inventory does not set them.
type Defaults struct {
	RemoteUser     string // remote_user: when no ansible_user is set
	PrivateKeyFile string // private_key_file: when no ansible_ssh_private_key_file is set
}

// Options say where Ansible's variable files are and which defaults apply.
type Options struct {
	// PlaybookDir holds group_vars/ and host_vars/ that take precedence
	// over those beside the inventory, as a playbook's directory does
	// (rollout uses the plan's directory). "" = none.
	PlaybookDir string
	Defaults    Defaults
	// FS is where every file is read (nil = the local disk).
	FS Files
}

// Load reads an Ansible inventory: a file, or a directory of inventory
// files (every file in it, in name order, as Ansible reads a directory),
// plus the group_vars/ and host_vars/ beside it. Files ending in .yml,
// .yaml or .json, and files whose first meaningful line looks like YAML
// (a "---" document marker, a "{", or a "key:" mapping entry), are read as
// YAML; everything else is read as INI.
func Load(path string) (*Inventory, error) {
	return LoadWith([]string{path}, Options{})
}

// LoadWith reads one or more inventory sources (files or directories)
// into one inventory, as ansible -i A -i B does, with group_vars/ and
// host_vars/ beside each source and beside opts.PlaybookDir.
func LoadWith(sources []string, opts Options) (*Inventory, error) {
	if len(sources) == 0 {
		return nil, fmt.Errorf("read inventory: expected an inventory file or directory")
	}
	b := newBuilder(sources[0])
	b.defaults = opts.Defaults
	b.files = reader{opts.FS}
	var basedirs []string
	for _, src := range sources {
		st, err := b.files.stat(src)
		if err != nil {
			return nil, fmt.Errorf("read inventory: %w", err)
		}
		if st.IsDir() {
			if err := b.parseDir(src); err != nil {
				return nil, err
			}
			basedirs = append(basedirs, src)
			continue
		}
		if err := b.parseFile(src); err != nil {
			return nil, err
		}
		basedirs = append(basedirs, filepath.Dir(src))
	}
	b.filename = sources[0]
	for _, dir := range basedirs {
		l, err := b.readVarDirs(dir)
		if err != nil {
			return nil, err
		}
		b.invVars = append(b.invVars, l)
	}
	if opts.PlaybookDir != "" && !sameDirAsAny(opts.PlaybookDir, basedirs) {
		l, err := b.readVarDirs(opts.PlaybookDir)
		if err != nil {
			return nil, err
		}
		b.playVars = &l
	}
	return b.finish()
}

// sameDirAsAny reports whether dir is one of dirs: group_vars beside both
// the plan and the inventory are read once, at the inventory's (lower)
// precedence... as ansible-core reads them twice with the same result.
func sameDirAsAny(dir string, dirs []string) bool {
	a, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for _, d := range dirs {
		if b, err := filepath.Abs(d); err == nil && a == b {
			return true
		}
	}
	return false
}

func (b *builder) parseFile(path string) error {
	data, err := b.files.readFile(path)
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	if isYAML(path, data) {
		return b.parseYAML(path, data)
	}
	return b.parseINI(path, data)
}

// inventoryIgnored is ansible-core's INVENTORY_IGNORE_EXTS (its default)
// plus the names it always skips in an inventory directory.
var inventoryIgnored = regexp.MustCompile(`(?:\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.ini|\.cfg|\.retry)$|^\.|^host_vars$|^group_vars$|^vars_plugins$`)

// parseDir reads every inventory file of a directory, in name order,
// descending into subdirectories, skipping what ansible-core skips (hidden
// files, group_vars, host_vars, and the extensions of its
// INVENTORY_IGNORE_EXTS — .ini files among them). Executable files are
// dynamic inventory scripts, which rollout does not run: refused.
func (b *builder) parseDir(dir string) error {
	entries, err := b.files.readDir(dir)
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		full := filepath.Join(dir, name)
		if inventoryIgnored.MatchString(name) {
			b.filename = full
			if !strings.HasPrefix(name, ".") && name != "group_vars" && name != "host_vars" && name != "vars_plugins" {
				b.warnf(0, "skipped, as Ansible skips this extension in an inventory directory (INVENTORY_IGNORE_EXTS)")
			}
			continue
		}
		st, err := b.files.stat(full)
		if err != nil {
			return fmt.Errorf("read inventory: %w", err)
		}
		if st.IsDir() {
			if err := b.parseDir(full); err != nil {
				return err
			}
			continue
		}
		if st.Mode()&0o111 != 0 {
			return &parseError{file: full, msg: "an executable file in an inventory directory is a dynamic inventory script, which rollout does not run: export its output with ansible-inventory -i " + full + " --list --yaml > hosts.yml, or remove the executable bit (chmod -x) if it is a static file"}
		}
		if err := b.parseFile(full); err != nil {
			return err
		}
	}
	return nil
}

// varFileExts are the extensions ansible-core's host_group_vars plugin
// tries, in order ("" first).
var varFileExts = []string{"", ".yml", ".yaml", ".json"}

// readVarDirs reads dir/group_vars and dir/host_vars for every group and
// host of the inventory, as ansible-core's host_group_vars plugin does:
// for a name N, the first of N, N.yml, N.yaml, N.json that exists; when it
// is a directory, every file in it (recursively, in name order; hidden
// files, backups ending in ~ and other extensions skipped), later files
// overriding earlier ones.
func (b *builder) readVarDirs(dir string) (varLayer, error) {
	l := varLayer{groups: map[string]map[string]any{}, hosts: map[string]map[string]any{},
		groupOrigins: map[string]map[string]string{}, hostOrigins: map[string]map[string]string{}}
	for _, name := range b.groupOrder {
		vars, origins, err := b.readVarsFor(filepath.Join(dir, "group_vars"), name)
		if err != nil {
			return l, err
		}
		if vars != nil {
			l.groups[name], l.groupOrigins[name] = vars, origins
		}
	}
	for _, name := range b.order {
		vars, origins, err := b.readVarsFor(filepath.Join(dir, "host_vars"), name)
		if err != nil {
			return l, err
		}
		if vars != nil {
			l.hosts[name], l.hostOrigins[name] = vars, origins
		}
	}
	for _, name := range localhostNames {
		if _, ok := b.hosts[name]; ok {
			continue
		}
		vars, origins, err := b.readVarsFor(filepath.Join(dir, "host_vars"), name)
		if err != nil {
			return l, err
		}
		if vars != nil {
			l.hosts[name], l.hostOrigins[name] = vars, origins
		}
	}
	return l, nil
}

// readVarsFor returns the variables of one group or host, and the
// file:line each was read from.
func (b *builder) readVarsFor(dir, name string) (map[string]any, map[string]string, error) {
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return nil, nil, nil
	}
	for _, ext := range varFileExts {
		full := filepath.Join(dir, name+ext)
		st, err := b.files.stat(full)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read vars: %w", err)
		}
		var files []string
		if st.IsDir() {
			if files, err = b.varFilesIn(full); err != nil {
				return nil, nil, err
			}
		} else {
			files = []string{full}
		}
		vars, origins := map[string]any{}, map[string]string{}
		for _, f := range files {
			m, lines, err := b.readVarsFile(f)
			if err != nil {
				return nil, nil, err
			}
			for k, v := range m {
				vars[k] = v
				origins[k] = fmt.Sprintf("%s:%d", f, lines[k])
			}
		}
		return vars, origins, nil
	}
	return nil, nil, nil
}

func (b *builder) varFilesIn(dir string) ([]string, error) {
	entries, err := b.files.readDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read vars: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []string
	for _, name := range names {
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		full := filepath.Join(dir, name)
		st, err := b.files.stat(full)
		if err != nil {
			return nil, fmt.Errorf("read vars: %w", err)
		}
		if st.IsDir() {
			more, err := b.varFilesIn(full)
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
			continue
		}
		ext := filepath.Ext(name)
		if ext == "" || ext == ".yml" || ext == ".yaml" || ext == ".json" {
			out = append(out, full)
		}
	}
	return out, nil
}

// readVarsFile reads one group_vars or host_vars file: a YAML (or JSON)
// mapping of variables, or an empty file; and the line of each variable.
func (b *builder) readVarsFile(path string) (map[string]any, map[string]int, error) {
	data, err := b.files.readFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read vars: %w", err)
	}
	p := &yamlParser{b: &builder{filename: path, files: b.files}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, yamlError(path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil, nil
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return nil, nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, &parseError{file: path, line: root.Line, msg: fmt.Sprintf("expected a mapping of variables (name: value), got %s", kindName(root))}
	}
	v, err := p.value(root)
	if err != nil {
		return nil, nil, err
	}
	return v.(map[string]any), keyLines(root), nil
}

// Digest is a hash of everything the inventory resolved to: every host in
// order with its connection settings, groups and merged variables (so
// group_vars, host_vars and ansible.cfg defaults count, whichever file
// they came from). Saved plans compare it to notice an inventory change.
func (inv *Inventory) Digest() string {
	type hostDigest struct {
		Name, Address, User, KeyFile, Connection, BecomeUser, BecomeMethod string
		Port                                                               int
		Become                                                             bool
		Groups                                                             []string
		Vars                                                               map[string]any
	}
	var hs []hostDigest
	for _, h := range inv.hostOrder {
		hs = append(hs, hostDigest{h.Name, h.Address, h.User, h.KeyFile, h.Connection, h.BecomeUser, h.BecomeMethod, h.Port, h.Become, h.Groups, h.Vars})
	}
	members := map[string][]string{}
	for _, g := range inv.groupOrder {
		members[g] = inv.GroupHosts(g)
	}
	b, err := json.Marshal(struct {
		Hosts  []hostDigest
		Groups map[string][]string
	}{hs, members})
	if err != nil { // only plain data: cannot happen
		b = []byte(fmt.Sprint(hs, members))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
