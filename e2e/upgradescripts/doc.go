// Package upgradescripts runs `homelab upgrade` end to end from the
// scripts in testdata/*.txtar: Docker Compose with the testapp images,
// the exec runtime with the testapp as a process, a real PostgreSQL, and
// crashes, signals and --resume in between. It has tests only.
package upgradescripts
