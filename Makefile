# rollout — build, test, demo. Every target installs what it needs itself.
SHELL := /bin/bash
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH):$(HOME)/go/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.Version=$(VERSION) -X main.Commit=$(COMMIT)
STATICCHECK_VERSION ?= v0.8.2
GOVULNCHECK_VERSION ?= v1.9.0
FUZZTIME ?= 20s
# packages the e2e tests need, installed with apt-get when missing (as root)
APT_PACKAGES := openssh-server haproxy git tmux socat patch nginx jq ansible prometheus
# install: where `make install` puts the binary, man pages and completions
PREFIX  ?= /usr/local
DESTDIR ?=
BIN_DIR ?= bin
MAN_DIR ?= man
# dist: static release binaries (CGO off), one per GOOS/GOARCH, and SHA256SUMS
DIST_DIR     ?= dist
DIST_TARGETS ?= linux/amd64 linux/arm64 darwin/arm64

.PHONY: all build test test-large unit e2e lint fuzz deps bench-deps demo demo-stop bench bench-all bench-scale bench-fleet clean man install dist

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/rollout ./cmd/rollout

# man: one page per command, generated from the command tree (cobra/doc).
man: build
	$(BIN_DIR)/rollout man --dir $(MAN_DIR)

# install: binary, man pages and bash/zsh/fish completions under
# $(DESTDIR)$(PREFIX) (e.g. make install PREFIX=$$HOME/.local).
install: man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(BIN_DIR)/rollout $(DESTDIR)$(PREFIX)/bin/rollout
	install -m 0644 $(MAN_DIR)/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(BIN_DIR)/rollout completion bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/rollout
	$(BIN_DIR)/rollout completion zsh >$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_rollout
	$(BIN_DIR)/rollout completion fish >$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/rollout.fish

# dist: static binaries for DIST_TARGETS with version and commit stamped,
# named rollout-VERSION-OS-ARCH, and SHA256SUMS over them.
dist:
	rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)
	@set -e; for t in $(DIST_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; out=$(DIST_DIR)/rollout-$(VERSION)-$$os-$$arch; \
	  echo "== $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $$out ./cmd/rollout; \
	done
	cd $(DIST_DIR) && sha256sum rollout-* >SHA256SUMS && cat SHA256SUMS

# deps: system packages for the real fleet (sshd, haproxy, nginx, etcd, prometheus) and ansible-core
# (the differential tests compare rollout with it), idempotent;
# EXTRA_APT names more Debian packages (bench-deps uses it).
deps:
	@missing=""; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	[ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	command -v socat >/dev/null || missing="$$missing socat"; \
	command -v patch >/dev/null || missing="$$missing patch"; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v etcdctl >/dev/null || missing="$$missing etcd-client"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v jq >/dev/null || missing="$$missing jq"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	for p in $(EXTRA_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v ansible-inventory >/dev/null || missing="$$missing ansible"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing:$$missing — install them (sudo apt-get install$$missing) or the end-to-end tests skip"; \
	  fi; \
	fi
	$(GO) mod download

# test: vet + every test, unit and end to end (real sshd, HAProxy, HTTP load).
# Every package but the end-to-end suite runs under the race detector; the
# e2e suite (which drives the real binary as a separate process) runs as is,
# four fleets at a time: its tests mostly wait on real daemons.
E2E_PACKAGES  = ./e2e/
RACE_PACKAGES = $(shell $(GO) list ./... | grep -v -e '/e2e$$')
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m $(RACE_PACKAGES)
	$(GO) test -count=1 -parallel 4 -timeout 25m $(E2E_PACKAGES)

# test-large: the end-to-end tests too heavy for a 2-core CI machine
# (100 sshd hosts behind one stock HAProxy, --forks 100).
test-large: deps
	ROLLOUT_E2E=1 ROLLOUT_E2E_LARGE=1 $(GO) test -count=1 -timeout 25m -run 'TestHundredHostsStockStatsSocket' -v $(E2E_PACKAGES)

unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'd:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	staticcheck ./...
	@command -v govulncheck >/dev/null || $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	@# govulncheck needs its vulnerability database (vuln.go.dev, or GOVULNDB=file:///…
	@# for a mirror). Without it the check cannot run: say so loudly instead of passing.
	@out=$$(govulncheck $${GOVULNDB:+-db $$GOVULNDB} ./... 2>&1); rc=$$?; echo "$$out"; \
	if [ $$rc -ne 0 ] && echo "$$out" | grep -q 'fetching vulnerabilities'; then \
	  echo "WARNING: govulncheck could not reach its vulnerability database; set GOVULNDB=file:///path/to/mirror to check offline"; \
	  [ "$${ROLLOUT_REQUIRE_VULNCHECK:-0}" = 1 ] && exit 1 || exit 0; \
	fi; exit $$rc

# fuzz: each target of every package that has one, for FUZZTIME; crashers
# land in the package's testdata/fuzz and must be fixed.
FUZZ_PACKAGES = $(shell grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r -n1 dirname | sort -u)
fuzz:
	@set -e; for pkg in $(FUZZ_PACKAGES); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

demo: deps
	bash examples/demo/demo.sh

demo-stop:
	bash examples/demo/demo.sh stop

# bench-deps: deps plus Debian's Ansible and Mitogen for the side-by-side bench.
bench-deps:
	@$(MAKE) --no-print-directory deps EXTRA_APT="ansible ansible-mitogen"

# bench: the same rolling upgrade by rollout, Ansible and Ansible + Mitogen
# on N real sshd hosts behind one HAProxy under load (RUNS alternating runs
# each), then rollout's no-op re-run and online plan. Results: stdout and
# bench/out/. See docs/benchmarks.md. bench-all adds bench-scale.
# On a shared machine: flock /tmp/rollout-e2e.lock make bench
N ?= 20
RUNS ?= 3
TOOLS ?= ansible,mitogen,rollout
ROLLOUT_FLAGS ?=
bench: bench-deps build
	$(GO) build -o bin/rollout-bench ./bench/cmd/rollout-bench
	@mkdir -p bench/out
	bin/rollout-bench -n $(N) -runs $(RUNS) -tools $(TOOLS) -rollout bin/rollout -rollout-flags "$(ROLLOUT_FLAGS)" -out bench/out/side-by-side-N$(N).md

bench-all: bench bench-scale

# bench-scale: what grows with fleet size, at 10,000 hosts (no fleet needed;
# ROLLOUT_BENCH_ENGINE_HOSTS=N runs the engine benchmark on fewer).
bench-scale:
	$(GO) test -run '^$$' -bench 'Scale' -benchmem -timeout 20m ./bench/

# bench-fleet: the 4-host --batch 1 apply with its phase breakdown.
bench-fleet: deps
	$(GO) test -run '^$$' -bench 'Apply4Hosts' -benchtime 1x -timeout 20m ./bench/

clean:
	rm -rf bin man dist
