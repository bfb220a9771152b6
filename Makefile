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
APT_PACKAGES := openssh-server haproxy git tmux socat patch jq

.PHONY: all build test unit e2e lint fuzz deps demo demo-stop bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/rollout ./cmd/rollout

# deps: system packages for the real fleet (sshd, haproxy), idempotent.
deps:
	@missing=""; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	[ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	command -v socat >/dev/null || missing="$$missing socat"; \
	command -v patch >/dev/null || missing="$$missing patch"; \
	command -v jq >/dev/null || missing="$$missing jq"; \
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
# e2e suite (which drives the real binary as a separate process) runs as is.
E2E_PACKAGES  = ./e2e/
RACE_PACKAGES = $(shell $(GO) list ./... | grep -v -e '/e2e$$')
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m $(RACE_PACKAGES)
	$(GO) test -count=1 -timeout 20m $(E2E_PACKAGES)

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

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./bench/

clean:
	rm -rf bin
