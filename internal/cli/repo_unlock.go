package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"homelab/internal/restic"
)

// ResticStaleAge is the age after which restic itself calls a lock that
// was not refreshed stale (restic refreshes live locks every 5 minutes).
const ResticStaleAge = 30 * time.Minute

// RepoUnlockOptions are the options of homelab repo unlock.
type RepoUnlockOptions struct {
	IO        *IOStreams
	F         *Factory
	Names     []string
	All       bool
	RemoveAll bool
	DryRun    bool
	Yes       bool
	JSON      bool
}

// NewCmdRepoUnlock returns `homelab repo unlock`.
func NewCmdRepoUnlock(f *Factory, runF func(*RepoUnlockOptions) error) *cobra.Command {
	opts := &RepoUnlockOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "unlock [repository...] | --all",
		Short: "List a repository's restic locks and remove the stale ones (--remove-all: every one)",
		Long: "List the restic locks of the named repositories (or --all): holder host and pid, age, shared or exclusive, and whether it is stale: " +
			"taken on this host by a process that is gone, or not refreshed for 30 minutes (restic refreshes a live lock every 5 minutes). " +
			"Stale locks are removed (restic unlock); live ones are kept.\n" +
			"homelab's own commands already remove a lock that blocks them when its holder is provably gone from this host; " +
			"this command is for the rest, such as a lock left by a machine that crashed.\n" +
			"--remove-all removes live locks too (restic unlock --remove-all): only when you know no restic uses the repository, " +
			"since an operation still running then works without its lock. It asks for confirmation (off a terminal: --yes). " +
			"--dry-run lists and removes nothing.\n\n" + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names, opts.JSON = args, f.JSON
			if len(args) == 0 && !opts.All {
				return usageErr("name a repository or pass --all")
			}
			if len(args) > 0 && opts.All {
				return usageErr("name repositories or pass --all, not both")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRepoUnlock(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every repository of the lab")
	cmd.Flags().BoolVar(&opts.RemoveAll, "remove-all", false, "remove live locks too (restic unlock --remove-all)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "list the locks and what would be removed; remove nothing")
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "do not ask before --remove-all")
	return cmd
}

// lockJSON is one lock in --json output.
type lockJSON struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Exclusive  bool      `json:"exclusive"`
	Hostname   string    `json:"hostname"`
	PID        int       `json:"pid"`
	AgeSeconds float64   `json:"age_seconds"`
	Stale      bool      `json:"stale"`
}

func runRepoUnlock(ctx context.Context, opts *RepoUnlockOptions) error {
	l, err := opts.F.Lab()
	if err != nil {
		return err
	}
	names := opts.Names
	if opts.All {
		names = repoNames(l)
	}
	for _, n := range names {
		if _, ok := l.Repositories[n]; !ok {
			return usageErr(fmt.Sprintf("unknown repository %q (known: %v)", n, repoNames(l)))
		}
	}
	host, _ := os.Hostname()
	now := opts.F.now()
	rule := restic.StaleRule{MaxAge: ResticStaleAge, Hostname: host, Now: func() time.Time { return now }}
	var failed error
	for _, name := range names {
		if err := repoUnlock(ctx, opts, name, rule, now); err != nil {
			failed = errors.Join(failed, fmt.Errorf("repository %s: %w", name, err))
		}
	}
	return failed
}

// repoUnlock lists, shows and removes the locks of one repository.
func repoUnlock(ctx context.Context, opts *RepoUnlockOptions, name string, rule restic.StaleRule, now time.Time) error {
	a, err := opts.F.App()
	if err != nil {
		return err
	}
	c, err := a.Repo(ctx, name, 0)
	if err != nil {
		return err
	}
	stale, live, err := c.Partition(ctx, rule)
	if err != nil {
		return err
	}
	remove := stale
	if opts.RemoveAll {
		remove = append(append([]restic.LockInfo{}, stale...), live...)
	}
	if !opts.JSON {
		renderLocks(opts.IO.Out, name, stale, live, now)
	}
	state := "none"
	switch {
	case len(remove) == 0:
	case opts.DryRun:
		state = "dry_run"
	default:
		if opts.RemoveAll && len(live) > 0 {
			if err := confirm(opts.IO, opts.Yes, fmt.Sprintf("remove %d live locks of repository %s, although a restic may still be using it?", len(live), name)); err != nil {
				return err
			}
			err = c.UnlockAll(ctx)
		} else {
			err = c.Unlock(ctx)
		}
		if err != nil {
			return err
		}
		state = "removed"
	}
	if opts.JSON {
		var locks []lockJSON
		for _, group := range []struct {
			locks []restic.LockInfo
			stale bool
		}{{stale, true}, {live, false}} {
			for _, k := range group.locks {
				locks = append(locks, lockJSON{ID: k.ID, Time: k.Time, Exclusive: k.Exclusive, Hostname: k.Hostname, PID: k.PID,
					AgeSeconds: now.Sub(k.Time).Seconds(), Stale: group.stale})
			}
		}
		return writeJSON(opts.IO.Out, "repo_unlock", map[string]any{"repository": name, "locks": locks, "removed": len(remove), "state": state})
	}
	switch state {
	case "none":
		fmt.Fprintf(opts.IO.Out, "repository %s: nothing to remove (%d live locks kept)\n", name, len(live))
	case "dry_run":
		fmt.Fprintf(opts.IO.Out, "repository %s: would remove %d locks (dry run)\n", name, len(remove))
	default:
		fmt.Fprintf(opts.IO.Out, "repository %s: removed %d locks, kept %d\n", name, len(remove), len(stale)+len(live)-len(remove))
	}
	return nil
}

// renderLocks is the table of a repository's locks.
func renderLocks(w io.Writer, repo string, stale, live []restic.LockInfo, now time.Time) {
	if len(stale)+len(live) == 0 {
		fmt.Fprintf(w, "repository %s: no locks\n", repo)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "LOCK\tKIND\tHOST\tPID\tAGE\tSTATE\n")
	row := func(k restic.LockInfo, state string) {
		kind := "shared"
		if k.Exclusive {
			kind = "exclusive"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", k.ShortID(), kind, k.Hostname, k.PID, now.Sub(k.Time).Round(time.Second), state)
	}
	for _, k := range stale {
		row(k, "stale")
	}
	for _, k := range live {
		row(k, "live")
	}
	tw.Flush()
}
