package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// RepoKeyListOptions are the options of homelab repo key list.
type RepoKeyListOptions struct {
	IO   *IOStreams
	F    *Factory
	Repo string
	JSON bool
}

// NewCmdRepoKeyList returns `homelab repo key list`.
func NewCmdRepoKeyList(f *Factory, runF func(*RepoKeyListOptions) error) *cobra.Command {
	opts := &RepoKeyListOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "list <repository>",
		Short: "List the repository's restic keys (restic key list)",
		Long: "List the repository's keys (restic key list --json, without a lock): ID, user and host that added it, " +
			"when, and which one the lab's password opens (current). A repository with one key has no recovery key: " +
			"add one with homelab repo key add.\n\n" + exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Repo, opts.JSON = args[0], f.JSON
			if runF != nil {
				return runF(opts)
			}
			return runRepoKeyList(cmd.Context(), opts)
		},
	}
	return cmd
}

// keyJSON is one key in repo key list's --json output.
type keyJSON struct {
	ID      string `json:"id"`
	Current bool   `json:"current"`
	User    string `json:"user"`
	Host    string `json:"host"`
	Created string `json:"created"` // as restic writes it: "2006-01-02 15:04:05", the adding machine's local time
}

func runRepoKeyList(ctx context.Context, opts *RepoKeyListOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	if err := knownRepo(a.Lab, opts.Repo); err != nil {
		return err
	}
	c, err := a.Repo(ctx, opts.Repo, 0)
	if err != nil {
		return err
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return fmt.Errorf("repository %s: %w", opts.Repo, err)
	}
	if opts.JSON {
		out := []keyJSON{}
		for _, k := range keys {
			out = append(out, keyJSON{ID: k.ID, Current: k.Current, User: k.UserName, Host: k.HostName, Created: k.Created})
		}
		return writeJSON(opts.IO.Out, "repo_key_list", map[string]any{"repository": opts.Repo, "keys": out})
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "KEY\tUSER\tHOST\tCREATED\tCURRENT\n")
	for _, k := range keys {
		cur := ""
		if k.Current {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ShortID(), k.UserName, k.HostName, k.Created, cur)
	}
	tw.Flush()
	if len(keys) == 1 {
		fmt.Fprintf(opts.IO.Out, "repository %s has one key: no recovery key (homelab repo key add %s --out FILE)\n", opts.Repo, opts.Repo)
	}
	return nil
}
