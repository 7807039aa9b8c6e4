package cli_test

import (
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"homelab/internal/cli"
)

// parse runs cmd with args and returns its error; the runF of cmd records
// the options.
func parse(cmd *cobra.Command, args []string) error {
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	return cmd.Execute()
}

func TestSnapshotOptions(t *testing.T) {
	f := &cli.Factory{IO: &cli.IOStreams{Out: io.Discard, ErrOut: io.Discard}}
	create := []struct {
		args    []string
		want    cli.SnapshotCreateOptions
		wantErr string
	}{
		{args: []string{"before"}, want: cli.SnapshotCreateOptions{Name: "before"}},
		{args: []string{"before", "--note", "os upgrade", "--target", "db", "--target", "files"},
			want: cli.SnapshotCreateOptions{Name: "before", Note: "os upgrade", Targets: []string{"db", "files"}}},
		{args: []string{"--resume"}, want: cli.SnapshotCreateOptions{Resume: true}},
		{args: []string{"--resume", "20261123T100000Z-0000abcd", "-y"}, want: cli.SnapshotCreateOptions{Resume: true, ResumeID: "20261123T100000Z-0000abcd", Yes: true}},
		{args: nil, wantErr: "usage: homelab snapshot create NAME"},
		{args: []string{"--resume", "--note", "x"}, wantErr: "--resume takes no --note or --target"},
		{args: []string{"a", "b"}, wantErr: "accepts at most 1 arg(s)"},
	}
	for _, tt := range create {
		t.Run("create "+strings.Join(tt.args, " "), func(t *testing.T) {
			var got *cli.SnapshotCreateOptions
			err := parse(cli.NewCmdSnapshotCreate(f, func(o *cli.SnapshotCreateOptions) error { got = o; return nil }), tt.args)
			checkParsed(t, err, tt.wantErr, func() (any, any) { got.F, got.IO = nil, nil; return *got, tt.want })
		})
	}
	restore := []struct {
		args    []string
		want    cli.SnapshotRestoreOptions
		wantErr string
	}{
		{args: []string{"before", "--dry-run"}, want: cli.SnapshotRestoreOptions{Name: "before", DryRun: true}},
		{args: []string{"before", "--yes"}, want: cli.SnapshotRestoreOptions{Name: "before", Yes: true}},
		{args: []string{"--resume", "20261123T100000Z-0000abcd"}, want: cli.SnapshotRestoreOptions{Resume: true, ResumeID: "20261123T100000Z-0000abcd"}},
		{args: []string{"--resume", "--dry-run"}, wantErr: "--resume takes no --dry-run"},
		{args: nil, wantErr: "usage: homelab snapshot restore NAME"},
	}
	for _, tt := range restore {
		t.Run("restore "+strings.Join(tt.args, " "), func(t *testing.T) {
			var got *cli.SnapshotRestoreOptions
			err := parse(cli.NewCmdSnapshotRestore(f, func(o *cli.SnapshotRestoreOptions) error { got = o; return nil }), tt.args)
			checkParsed(t, err, tt.wantErr, func() (any, any) { got.F, got.IO = nil, nil; return *got, tt.want })
		})
	}
	for _, args := range [][]string{{"show"}, {"delete"}, {"show", "a", "b"}, {"list", "x"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			err := parse(cli.NewCmdSnapshot(f), args)
			if cli.ExitCode(err) != cli.ExitUsage {
				t.Errorf("snapshot %v: %v (exit %d), want a usage error", args, err, cli.ExitCode(err))
			}
		})
	}
}

// checkParsed checks a parse's error against wantErr (a usage error) or,
// when none is wanted, the options got against want.
func checkParsed(t *testing.T, err error, wantErr string, gotWant func() (any, any)) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || cli.ExitCode(err) != cli.ExitUsage {
			t.Fatalf("err = %v (exit %d), want usage error %q", err, cli.ExitCode(err), wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got, want := gotWant(); !reflect.DeepEqual(got, want) {
		t.Errorf("options %+v, want %+v", got, want)
	}
}
