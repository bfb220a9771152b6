package main

import "github.com/spf13/cobra"

// extendRoot adds what fits rollout into a user's tools rather than their
// fleet: --version, `init`, shell completion (cobra's `completion` command
// plus dynamic values for the flags), and the hidden `man` generator
// behind `make man`.
func extendRoot(root *cobra.Command, ios *IOStreams, g *GlobalOptions) {
	root.Version = Version
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddCommand(newInitCmd(ios, g), newManCmd(ios))
	root.InitDefaultCompletionCmd() // now, not at Execute: the tree is whole for docs tests and man pages
	registerCompletions(root)
}
