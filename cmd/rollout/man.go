package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd is the hidden `rollout man --dir DIR` behind `make man`: one
// man page per command (rollout.1, rollout-apply.1, ...) from the command
// tree itself, so the pages cannot drift from the flags.
func newManCmd(ios *IOStreams) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "man",
		Short:  "Write man pages for every command into --dir",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // no date in the pages: rebuilding them changes nothing
			hdr := &doc.GenManHeader{Title: "ROLLOUT", Section: "1", Source: "rollout " + Version, Manual: "rollout manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			fmt.Fprintf(ios.Out, "man pages written to %s\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "man", "directory for the pages")
	return cmd
}
