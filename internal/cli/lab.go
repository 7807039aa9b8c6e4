package cli

import (
	"github.com/spf13/cobra"
)

// NewCmdLab returns `homelab lab`.
func NewCmdLab(f *Factory) *cobra.Command {
	cmd := group(&cobra.Command{Use: "lab", Short: "Work with the lab file"})
	cmd.AddCommand(NewCmdLabValidate(f, nil))
	return cmd
}
