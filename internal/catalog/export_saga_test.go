package catalog

// Migrations are the schema migrations, for tests that build an older
// catalog by hand.
var Migrations = migrations[:]
