package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"homelab/internal/repokey"
)

// RepoKeyAddOptions are the options of homelab repo key add.
type RepoKeyAddOptions struct {
	IO   *IOStreams
	F    *Factory
	Repo string
	Out  string
	Show bool
	JSON bool
}

// NewCmdRepoKeyAdd returns `homelab repo key add`.
func NewCmdRepoKeyAdd(f *Factory, runF func(*RepoKeyAddOptions) error) *cobra.Command {
	opts := &RepoKeyAddOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "add <repository> --out FILE",
		Short: "Add a recovery key: a second restic key whose new password is written to FILE (0600) for offline storage",
		Long: "Add a second key to the repository (restic key add), for offline storage: a recovery key opens the repository " +
			"when the password the lab uses is lost with the machine. The password is generated (256 random bits, 43 characters " +
			"of base64url), written with a newline to FILE, which must not exist (created with mode 0600), handed to restic as " +
			"--new-password-file, and never printed unless --show is given. The repository's own password reaches restic as for " +
			"every command (its environment). The new key is then proved: the repository is opened with FILE alone.\n" +
			"Store FILE offline (a password manager, paper in a safe) and delete it from this machine; " +
			"`restic -r URL --password-file FILE` opens the repository with it. `homelab doctor` reports a repository with a single key.\n\n" +
			exitCodesHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Repo, opts.JSON = args[0], f.JSON
			if opts.Out == "" {
				return usageErr("--out FILE is required: where the new key's password is written")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRepoKeyAdd(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "new file for the new key's password (mode 0600; an existing file is refused)")
	cmd.Flags().BoolVar(&opts.Show, "show", false, "also print the new password on stdout")
	return cmd
}

// repoKeyAddJSON is repo key add's --json result.
type repoKeyAddJSON struct {
	Repository string `json:"repository"`
	KeyID      string `json:"key_id"`
	File       string `json:"file"`
	Password   string `json:"password,omitempty"` // only with --show
}

func runRepoKeyAdd(ctx context.Context, opts *RepoKeyAddOptions) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	if err := knownRepo(a.Lab, opts.Repo); err != nil {
		return err
	}
	out, err := filepath.Abs(opts.Out)
	if err != nil {
		return err
	}
	c, err := a.Repo(ctx, opts.Repo, 0)
	if err != nil {
		return err
	}
	added, err := repokey.Add(ctx, c, out)
	if err != nil {
		return fmt.Errorf("repository %s: %w", opts.Repo, err)
	}
	if opts.JSON {
		r := repoKeyAddJSON{Repository: opts.Repo, KeyID: added.ID, File: added.File}
		if opts.Show {
			r.Password = added.Password
		}
		return writeJSON(opts.IO.Out, "repo_key_add", r)
	}
	fmt.Fprintf(opts.IO.Out, "repository %s: added key %s; its password is in %s (mode 0600): store it offline, then delete it here\n",
		opts.Repo, added.ID[:min(8, len(added.ID))], added.File)
	if opts.Show {
		fmt.Fprintf(opts.IO.Out, "password: %s\n", added.Password)
	}
	return nil
}
