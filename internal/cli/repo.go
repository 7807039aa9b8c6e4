package cli

import (
	"sort"

	"github.com/spf13/cobra"

	"homelab/internal/lab"
)

// NewCmdRepo returns `homelab repo`.
func NewCmdRepo(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "repo", Short: "Manage restic repositories of the lab"})
	cmd.AddCommand(NewCmdRepoInit(f, nil), NewCmdRepoUnlock(f, nil), NewCmdRepoKey(f))
	return cmd
}

func repoNames(l *lab.Lab) []string {
	var names []string
	for n := range l.Repositories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
