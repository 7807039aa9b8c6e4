package cli

import (
	"context"
	"fmt"
	"strings"

	"homelab/internal/app"
	"homelab/internal/catalog"
	"homelab/internal/saga"
)

// resumable returns the ID of the one unfinished saga of kind that no
// process works on (those in progress are noted on stderr), for
// `homelab <kind> --resume` without an ID: "" with "no unfinished <kind>"
// on stdout when there is none, and bad usage naming them when there are
// several.
func resumable(ctx context.Context, opts *IOStreams, a *app.App, j catalog.Journal, kind string) (string, error) {
	open, err := a.UnfinishedIn(ctx, j)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, r := range open {
		if r.Kind != kind {
			continue
		}
		if r.InProgress {
			fmt.Fprintf(opts.ErrOut, "homelab: %s; in progress: %s: not resumed\n", saga.Describe(r.Record), r.Holder)
			continue
		}
		ids = append(ids, r.ID)
	}
	switch len(ids) {
	case 0:
		fmt.Fprintln(opts.Out, "no unfinished "+kind)
		return "", nil
	case 1:
		return ids[0], nil
	}
	return "", usageErr(fmt.Sprintf("several unfinished %ss: name one of %s", kind, strings.Join(ids, ", ")))
}
