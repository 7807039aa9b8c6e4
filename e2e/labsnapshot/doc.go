// Package labsnapshot runs `homelab snapshot` end to end from the scripts
// in testdata/*.txtar: a lab with a files target, a PostgreSQL target (a
// throwaway cluster) and the testapp as a real process under the exec
// runtime, whose version is set through set_version; restores that
// succeed, a restore whose health gate fails and is put back, and members
// forgotten with plain restic. It has tests only.
package labsnapshot
