package cli

import "github.com/spf13/cobra"

// NewCmdMigrations returns `homelab migrations`.
func NewCmdMigrations(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "migrations", Short: "Check a blue/green service's SQL migrations (expand or contract)"})
	cmd.AddCommand(NewCmdMigrationsCheck(f, nil))
	return cmd
}
