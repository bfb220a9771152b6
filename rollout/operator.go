package rollout

import "strings"

// Operator is who runs a run: a person at a terminal, or a CI job acting
// for one. URL, when known, points at the CI run that did it.
type Operator struct {
	Name string
	URL  string
}

// ResolveOperator says who the operator is: flag (--operator) when given,
// else ROLLOUT_OPERATOR, else the CI's own variables (GitHub Actions'
// GITHUB_ACTOR with the workflow run's URL, GitLab's GITLAB_USER_LOGIN
// with CI_JOB_URL), else local (user@host, the owner of the run's locks).
// getenv reads the environment (os.Getenv).
func ResolveOperator(flag string, getenv func(string) string, local string) Operator {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if f := strings.TrimSpace(flag); f != "" {
		return Operator{Name: f}
	}
	if n := env("ROLLOUT_OPERATOR"); n != "" {
		return Operator{Name: n}
	}
	if n := env("GITHUB_ACTOR"); n != "" {
		op := Operator{Name: n}
		if srv, repo, id := env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY"), env("GITHUB_RUN_ID"); srv != "" && repo != "" && id != "" {
			op.URL = strings.TrimRight(srv, "/") + "/" + repo + "/actions/runs/" + id
		}
		return op
	}
	if n := env("GITLAB_USER_LOGIN"); n != "" {
		return Operator{Name: n, URL: env("CI_JOB_URL")}
	}
	return Operator{Name: local}
}

// operator is who the run is for: its Operator, else (a caller that did
// not resolve one) the owner of its locks.
func (r *run) operator() string {
	if r.opts.Operator.Name != "" {
		return r.opts.Operator.Name
	}
	return r.opts.Owner
}
