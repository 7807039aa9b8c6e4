package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"homelab/internal/lab"
)

// NewCmdRepoKey returns `homelab repo key`.
func NewCmdRepoKey(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "key", Short: "A repository's restic keys: add a recovery key, list them"})
	cmd.AddCommand(NewCmdRepoKeyAdd(f, nil), NewCmdRepoKeyList(f, nil))
	return cmd
}

// knownRepo refuses a repository name the lab does not have.
func knownRepo(l *lab.Lab, name string) error {
	if _, ok := l.Repositories[name]; !ok {
		return usageErr(fmt.Sprintf("unknown repository %q (known: %v)", name, repoNames(l)))
	}
	return nil
}
