package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// DrillDirPrefix names the temporary directories of a target's drills
// that restore into a throwaway cluster: TMPDIR/homelab-<kind>-drill-
// <target>-<lab>.<run ID> is one drill's, where <lab> is the first 8 hex
// digits of the SHA-256 of the lab's state directory (a target name has
// no dot). The target's lock, which is the lab's, keeps two drills of it
// apart; another lab's target of the same name on the same host has
// another prefix, so removing what a killed drill left (every directory
// with the prefix) never removes the directory of a drill that runs.
func DrillDirPrefix(kind, stateDir, target string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return filepath.Join(os.TempDir(), "homelab-"+kind+"-drill-"+target+"-"+hex.EncodeToString(sum[:4])+".")
}
