package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"homelab/internal/restic"
)

// RepoInitOptions are the options of homelab repo init.
type RepoInitOptions struct {
	IO    *IOStreams
	F     *Factory
	Names []string
	All   bool
	JSON  bool
}

// NewCmdRepoInit returns `homelab repo init`.
func NewCmdRepoInit(f *Factory, runF func(*RepoInitOptions) error) *cobra.Command {
	opts := &RepoInitOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "init [repository...] | --all",
		Short: "Create the restic repositories named in the lab file (existing ones are left alone)",
		Long:  "Create the restic repositories named in the lab file; a repository that exists already is reported and left alone.\n\n" + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names, opts.JSON = args, f.JSON
			if len(args) == 0 && !opts.All {
				return usageErr("name a repository or pass --all")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRepoInit(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every repository of the lab")
	return cmd
}

func runRepoInit(ctx context.Context, opts *RepoInitOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	l := a.Lab
	names := opts.Names
	if opts.All {
		names = repoNames(l)
	}
	var failed error
	for _, name := range names {
		c, err := a.Repo(ctx, name, 0)
		state := "created"
		if err == nil {
			err = c.Init(ctx)
			if errors.Is(err, restic.ErrAlreadyInitialized) {
				state, err = "exists", nil
			}
		}
		if err != nil {
			failed = errors.Join(failed, fmt.Errorf("repository %s: %w", name, err))
			state = "failed"
		}
		if opts.JSON {
			writeJSON(opts.IO.Out, "repo_init", map[string]string{"repository": name, "url": l.Repositories[name].URL, "state": state})
		} else if err == nil {
			fmt.Fprintf(opts.IO.Out, "repository %s (%s): %s\n", name, l.Repositories[name].URL, state)
		}
	}
	return failed
}
