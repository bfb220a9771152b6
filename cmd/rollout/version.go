package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd(ios *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(ios.Out, versionLine())
			return nil
		},
	}
}

// versionLine is what `rollout version` and `rollout --version` print:
// the version and commit stamped by `make build`/`make dist` (-ldflags), or,
// for `go install …@latest` builds, what the Go toolchain recorded.
func versionLine() string {
	version, commit := Version, Commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version // go install github.com/rollout-sh/rollout/cmd/rollout@v1.2.3
		}
		if commit == "unknown" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	return fmt.Sprintf("rollout %s (commit %s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
