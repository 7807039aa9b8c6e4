package cli_test

import (
	"io"
	"strings"
	"testing"

	"homelab/internal/cli"
)

func TestUpgradeOptions(t *testing.T) {
	tests := []struct {
		args    []string
		want    cli.UpgradeOptions
		wantErr string
	}{
		{args: []string{"web", "--to", "1.1.0"}, want: cli.UpgradeOptions{Service: "web", To: "1.1.0"}},
		{args: []string{"web", "--to", "1.0.0", "--allow-downgrade", "--yes", "--wait"}, want: cli.UpgradeOptions{Service: "web", To: "1.0.0", AllowDowngrade: true, Yes: true, Wait: true}},
		{args: []string{"web", "--to", "2.0.0", "--dry-run"}, want: cli.UpgradeOptions{Service: "web", To: "2.0.0", DryRun: true}},
		{args: []string{"--resume"}, want: cli.UpgradeOptions{Resume: true}},
		{args: []string{"--resume", "20261123T100000Z-0000abcd", "--forward", "-y"}, want: cli.UpgradeOptions{Resume: true, ResumeID: "20261123T100000Z-0000abcd", Forward: true, Yes: true}},
		{args: []string{"web"}, wantErr: "usage: homelab upgrade SERVICE --to VERSION"},
		{args: []string{"--to", "1.0.0"}, wantErr: "usage: homelab upgrade SERVICE --to VERSION"},
		{args: []string{"--resume", "20261123T100000Z-0000abcd", "--resolved"}, want: cli.UpgradeOptions{Resume: true, ResumeID: "20261123T100000Z-0000abcd", Resolved: true}},
		{args: []string{"--resume", "--resolved"}, wantErr: "--resolved takes the saga's ID"},
		{args: []string{"--resume", "20261123T100000Z-0000abcd", "--resolved", "--forward"}, wantErr: "and no --forward"},
		{args: []string{"web", "--to", "1.0.0", "--resolved"}, wantErr: "--forward and --resolved go with --resume"},
		{args: []string{"web", "--to", "1.0.0", "--forward"}, wantErr: "--forward and --resolved go with --resume"},
		{args: []string{"--resume", "--to", "1.0.0"}, wantErr: "--resume takes no --to"},
		{args: []string{"web", "db", "--to", "1.0.0"}, wantErr: "accepts at most 1 arg(s), received 2"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := &cli.Factory{IO: &cli.IOStreams{Out: io.Discard, ErrOut: io.Discard}}
			var got *cli.UpgradeOptions
			cmd := cli.NewCmdUpgrade(f, func(o *cli.UpgradeOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || cli.ExitCode(err) != cli.ExitUsage {
					t.Fatalf("err = %v (exit %d), want usage error %q", err, cli.ExitCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.F, got.IO = nil, nil
			if *got != tt.want {
				t.Errorf("options %+v, want %+v", *got, tt.want)
			}
		})
	}
}
