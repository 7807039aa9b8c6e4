// Package s3mirror is the s3-mirror backup provider: a target is a source
// bucket (or a prefix of one) and a destination bucket; a backup copies
// every object of the source into
// <destination prefix>/<target>/<snapshot ID>/ and then writes the
// snapshot's manifest beside it, <snapshot ID>.manifest.json. The
// snapshot ID is the backup's UTC start time (20061206T051708.123Z).
//
// A snapshot is its manifest: a prefix with no manifest (a backup that
// failed or was killed mid-copy) is never listed and is removed by the
// next backup of the target. Copies are server-side (CopyObject) when the
// source and the destination are the same endpoint reached with the same
// keys and the object's ETag is its MD5, and streamed otherwise; every
// copy is checked against the object's size and MD5. Restores and drills
// copy a snapshot back the same way; a drill then reads every object back
// and compares it with the manifest.
//
// Recovering without homelab needs only an S3 client: the manifest is
// JSON, and the objects are stored under their own keys.
package s3mirror
