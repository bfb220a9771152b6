// Package plan decodes rollout plan files (HCL), evaluates them per host,
// computes batches, and reads deployable files from the pinned git commit.
package plan

import (
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rollout-sh/rollout/inventory"
)

// Quantity is a count or a percentage ("25%"), as used by batch,
// max_failures and min_in_service.
type Quantity struct {
	N       int  // the count when Percent is false
	Percent bool // N is a percentage
	Set     bool // the value was given
}

// Template engines of a file block's template attribute.
const (
	EngineHCL    = "hcl"
	EngineJinja2 = "jinja2"
)

// Range is expect_hosts: an exact number (Min == Max) or "10..14".
type Range struct{ Min, Max int }

// Plan is a decoded plan file. Per-host attributes are evaluated by ForHost.
type Plan struct {
	Name     string
	Filename string // the plan file as given
	Dir      string // absolute directory of the plan file

	Inventory string // absolute path of the inventory file or directory ("" = ansible.cfg's)
	Hosts     string // host pattern
	Repo      string // absolute path of the git repository (default: the one containing the plan)
	Revision  string // as written: a full SHA or a tag
	// AnsibleManaged is ansible.cfg's [defaults] ansible_managed, set by
	// whoever reads ansible.cfg ("" = ansible-core's default); Jinja2
	// templates see it as ansible_managed
	AnsibleManaged string

	Batch []Quantity // nil when not set in the plan
	// Waves are the plan's wave blocks, in the order written (nil: one
	// wave of every host).
	Waves []*Wave
	// MaxInFlight is the rolling window (max_in_flight): after a canary
	// host, the next host starts as soon as one finishes, at most this
	// many out at a time. Unset (Set false) without max_in_flight.
	MaxInFlight   Quantity
	MaxFailures   Quantity      // default 0: the first failure halts
	OnFailure     string        // "rollback", "rollback_all" or "halt" (default "halt")
	Pause         time.Duration // bake time between batches
	MinInService  Quantity      // unset: at least one server always serving
	AllowDowntime bool
	ExpectHosts   *Range // nil when not set
	Become        bool
	ApproveAfter  []int // 1-based batch numbers after which a person must approve
	// SSHKeepalive and SSHKeepaliveCount: a connection that answers none
	// of SSHKeepaliveCount keepalives sent SSHKeepalive apart is lost
	// (0: remote's defaults, 5s and 3).
	SSHKeepalive      time.Duration
	SSHKeepaliveCount int

	HasDrain bool // a drain block was written

	Backend  *Backend  // the backend block; nil: none written (local)
	Analysis *Analysis // nil without an analysis block
	Hooks    []*Hook   // the hook blocks, in the order written
	Notify   []*Notify // the notify blocks, in the order written

	// unexported: kept expressions for ForHost (implementation's choice)
	impl *planImpl
}

// HostSpec is the plan evaluated for one host. Every string has been
// evaluated with host.*, plan.name and revision in scope; command strings
// (Check, Restart, file Validate, Drain commands, health Command,
// Diagnostics) had every interpolated value shell-quoted.
type HostSpec struct {
	Host        *inventory.Host
	StateDir    string
	Files       []FileSpec
	Check       string
	Restart     string
	Drain       Drain
	Health      []Health
	Diagnostics []string
	Become      bool
	// Artifacts are the artifact blocks, in the order written.
	Artifacts []ArtifactSpec
	// Install runs once files and artifacts are in place, before check
	// and restart; Prefetch runs on every host in preflight ("" = none).
	Install  string
	Prefetch string
}

// Fetch modes of an artifact block.
const (
	FetchController = "controller" // downloaded once by rollout, uploaded through each host's session
	FetchHost       = "host"       // the host downloads it, and checks its sha256
)

// DefaultKeep is how many releases an artifact keeps per host.
const DefaultKeep = 3

// ArtifactSpec is one artifact block, evaluated for a host.
type ArtifactSpec struct {
	Name   string // the block label
	Source string // an http:// or https:// URL, or an absolute path on the controller
	SHA256 string // lowercase hex, 64 digits
	Dest   string // absolute: releases in Dest/releases/<id>, the live one Dest/current
	Unpack bool   // an archive (.tar.gz .tgz .tar .zip) unpacked into the release dir
	Keep   int    // releases kept on the host (default 3); never the current or previous
	Owner  string // "" = as the session's user writes them
	Mode   os.FileMode
	// Validate is a command with %s for the staged release directory
	// (shell-quoted values), "" = none.
	Validate string
	Fetch    string // FetchController or FetchHost
}

// URL reports whether the source is downloaded over http(s).
func (a ArtifactSpec) URL() bool {
	return strings.HasPrefix(a.Source, "http://") || strings.HasPrefix(a.Source, "https://")
}

// FileSpec is one file block, evaluated for a host.
type FileSpec struct {
	Name     string // the block label
	Source   string // path inside the repo at the revision
	Template bool   // rendered per host (Engine says how)
	Engine   string // "hcl" (template = true or "hcl") or "jinja2"; "" when not a template
	Dest     string
	Mode     os.FileMode // default 0644
	Owner    string      // "" = leave as is; "user" or "user:group"
	Validate string      // command with %s for the staged path ("" = none)
	// Role is the directory of the Ansible role the file comes from
	// ("roles/nginx", in the repo; "" = none): its defaults/main.yml and
	// vars/main.yml join the template's variables, and lookup('file')
	// and lookup('template') search its files/ and templates/.
	Role string

	roleRange *hcl.Range // where role is written, for diagnostics
	scope     *fileScope // the host scope ForHost evaluated this file with, reused by Render
}

// fileScope is a host's evaluation scope at a revision, kept so that
// rendering a file does not build the same scope again.
type fileScope struct {
	host     *inventory.Host
	revision string
	ctx      *hcl.EvalContext
}

// Rendered is one file of a host, rendered at a revision: what is staged,
// validated and moved into place.
type Rendered struct {
	FileSpec
	Revision string // the commit Source was read at
	Content  []byte
	SHA256   string
}

// Origin names where the content came from, as source@short-commit
// ("conf/app.conf.tmpl@09a536a"): the name a person can look up, unlike
// the temporary path a copy is staged at.
func (r Rendered) Origin() string {
	if r.Revision == "" {
		return r.Source
	}
	return r.Source + "@" + ShortRev(r.Revision)
}

// Drain is the drain block, evaluated for a host.
type Drain struct {
	Kind string // "haproxy", "command" or "none"

	// haproxy
	Endpoints []string // "unix:/path" or "tcp:HOST:PORT"
	Via       string   // inventory host whose SSH connection reaches the endpoints ("" = local)
	Backend   string
	Server    string
	Timeout   time.Duration // waiting for sessions to reach zero (default 2m)
	Ramp      []int         // weights in percent, last is 100 (default [100])

	// command (Via applies too: run on that host instead of the target)
	DrainCmd    string
	UndrainCmd  string
	SessionsCmd string

	// none
	Reason string
}

// Health is one health block, evaluated for a host.
type Health struct {
	Kind string // "http", "tcp", "command" or "haproxy"

	URL         string // http
	Status      int    // http, default 200
	BodyMatches string // http, regexp ("" = any body)
	Address     string // tcp: "host:port"
	Command     string // command: run on the host, exit 0 = healthy

	Interval   time.Duration // default 1s
	HealthyFor time.Duration // default 10s
	Deadline   time.Duration // default 2m
	Timeout    time.Duration // one probe, default 5s

	Unit    string // flap guard through systemd
	PidFile string // flap guard through a pid file
}
