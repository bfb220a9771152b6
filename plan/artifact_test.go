package plan

import (
	"os"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/inventory"
)

var artifactPlan = `plan "app" {
  repo      = "/r"
  inventory = "inv.ini"
  hosts     = "web"
  revision  = "v1"
  restart   = "systemctl restart app"
  install   = "apt-get install -y app=${host.vars.app_version}"
  prefetch  = "apt-get install -y --download-only app=${host.vars.app_version}"
  artifact "app" {
    source   = "https://artifacts.example.com/app-${host.vars.app_version}.tar.gz"
    sha256   = host.vars.app_sha256
    dest     = "/opt/app"
    unpack   = true
    validate = "%s/bin/app -version ${host.vars.evil}"
  }
  artifact "tool" {
    source = "dist/tool"
    sha256 = "sha256:` + strings.Repeat("AB", 32) + `"
    dest   = "/opt/tool"
    keep   = 5
    mode   = "0755"
    owner  = "app:app"
    fetch  = "controller"
  }
  health "tcp" {
    address = "${host.address}:80"
  }
}
`

func TestForHostArtifacts(t *testing.T) {
	p, diags := Parse("/plans/rollout.hcl", []byte(artifactPlan))
	if diags.HasErrors() {
		t.Fatalf("parse: %s", diagsText(diags))
	}
	sum := strings.Repeat("0f", 32)
	hs, diags := p.ForHost(&inventory.Host{Name: "web1", Vars: map[string]any{"app_version": "1.2.4", "app_sha256": sum, "evil": "$(x)"}}, "v1")
	if diags.HasErrors() {
		t.Fatalf("for host: %s", diagsText(diags))
	}
	if len(hs.Files) != 0 || len(hs.Artifacts) != 2 {
		t.Fatalf("files %d, artifacts %d", len(hs.Files), len(hs.Artifacts))
	}
	want := ArtifactSpec{Name: "app", Source: "https://artifacts.example.com/app-1.2.4.tar.gz", SHA256: sum, Dest: "/opt/app",
		Unpack: true, Keep: DefaultKeep, Mode: DefaultMode, Validate: "%s/bin/app -version '$(x)'", Fetch: FetchController}
	if hs.Artifacts[0] != want {
		t.Errorf("app:\n got %+v\nwant %+v", hs.Artifacts[0], want)
	}
	tool := ArtifactSpec{Name: "tool", Source: "/plans/dist/tool", SHA256: strings.Repeat("ab", 32), Dest: "/opt/tool",
		Keep: 5, Mode: os.FileMode(0o755), Owner: "app:app", Fetch: FetchController}
	if hs.Artifacts[1] != tool {
		t.Errorf("tool:\n got %+v\nwant %+v", hs.Artifacts[1], tool)
	}
	if hs.Install != "apt-get install -y app=1.2.4" || hs.Prefetch != "apt-get install -y --download-only app=1.2.4" {
		t.Errorf("install %q prefetch %q", hs.Install, hs.Prefetch)
	}
	if got := hs.Artifacts[0].ValidateCommand("/opt/app/releases/x y"); got != "'/opt/app/releases/x y'/bin/app -version '$(x)'" {
		t.Errorf("validate command %q", got)
	}
}

func TestParseArtifactDiagnostics(t *testing.T) {
	base := `plan "app" {
  repo      = "/r"
  inventory = "inv.ini"
  hosts     = "web"
  revision  = "v1"
  restart   = "systemctl restart app"
  artifact "app" {
    source = "https://a.example/app.tgz"
    sha256 = "` + strings.Repeat("a", 64) + `"
    dest   = "/opt/app"
  }
  health "tcp" {
    address = "${host.address}:80"
  }
}
`
	if _, diags := Parse("rollout.hcl", []byte(base)); diags.HasErrors() {
		t.Fatalf("a plan with an artifact and no file is refused: %s", diagsText(diags))
	}
	tests := []struct {
		name, from, to, summary, at string
	}{
		{"no sha256", `sha256 = "` + strings.Repeat("a", 64) + `"`, ``, "Missing sha256", `artifact "app"`},
		{"short sha256", strings.Repeat("a", 64), "abc", "Invalid sha256", `"abc"`},
		{"relative dest", `"/opt/app"`, `"opt/app"`, "Invalid dest", `"opt/app"`},
		{"bad fetch", `dest   = "/opt/app"`, `dest = "/opt/app"` + "\n    fetch = \"ftp\"", "Invalid fetch", `"ftp"`},
		{"host fetch of a path", `source = "https://a.example/app.tgz"`, `source = "dist/app.tgz"` + "\n    fetch = \"host\"", "Host fetch needs a URL", `"dist/app.tgz"`},
		{"keep 1", `dest   = "/opt/app"`, `dest = "/opt/app"` + "\n    keep = 1", "Invalid keep", "1\n"},
		{"validate without %s", `dest   = "/opt/app"`, `dest = "/opt/app"` + "\n    validate = \"app -version\"", "Validate command without %s", `"app -version"`},
		{"other scheme", `"https://a.example/app.tgz"`, `"s3://b/app.tgz"`, "Invalid source", `"s3://b/app.tgz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(base, tt.from, tt.to, 1)
			wantDiag(t, src, tt.at, tt.summary, "")
		})
	}
	nothing := strings.Replace(base, base[strings.Index(base, "  artifact"):strings.Index(base, "  health")], "", 1)
	wantDiag(t, nothing, `plan "app"`, "Missing file block", "artifact")
}
