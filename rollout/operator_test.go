package rollout

import "testing"

func TestResolveOperator(t *testing.T) {
	github := map[string]string{"GITHUB_ACTOR": "octocat", "GITHUB_SERVER_URL": "https://github.com/",
		"GITHUB_REPOSITORY": "acme/web", "GITHUB_RUN_ID": "42"}
	gitlab := map[string]string{"GITLAB_USER_LOGIN": "tanuki", "CI_JOB_URL": "https://gitlab.com/acme/web/-/jobs/7"}
	both := map[string]string{}
	for k, v := range github {
		both[k] = v
	}
	for k, v := range gitlab {
		both[k] = v
	}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name string
		flag string
		env  map[string]string
		want Operator
	}{
		{"nothing: user@host", "", nil, Operator{Name: "alice@laptop"}},
		{"flag first", "bob", with(both, "ROLLOUT_OPERATOR", "carol"), Operator{Name: "bob"}},
		{"ROLLOUT_OPERATOR over CI", "", with(both, "ROLLOUT_OPERATOR", "carol"), Operator{Name: "carol"}},
		{"GitHub Actions with its run URL", "", github, Operator{Name: "octocat", URL: "https://github.com/acme/web/actions/runs/42"}},
		{"GitHub over GitLab", "", both, Operator{Name: "octocat", URL: "https://github.com/acme/web/actions/runs/42"}},
		{"GitHub without a run id: no URL", "", map[string]string{"GITHUB_ACTOR": "octocat", "GITHUB_REPOSITORY": "acme/web"}, Operator{Name: "octocat"}},
		{"GitLab with its job URL", "", gitlab, Operator{Name: "tanuki", URL: "https://gitlab.com/acme/web/-/jobs/7"}},
		{"GitLab without a job URL", "", map[string]string{"GITLAB_USER_LOGIN": "tanuki"}, Operator{Name: "tanuki"}},
		{"blank values are not set", "  ", map[string]string{"ROLLOUT_OPERATOR": " ", "GITHUB_ACTOR": ""}, Operator{Name: "alice@laptop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ResolveOperator(tt.flag, func(k string) string { return tt.env[k] }, "alice@laptop")
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
