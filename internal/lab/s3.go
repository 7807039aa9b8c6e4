package lab

// S3Credentials are the keys of an S3 endpoint, as the lab file names
// them wherever one is reached (a repository on S3, an s3-mirror target's
// source and destination): each key is a `*_env` or a `*_file` reference
// (see [Secret]), never a value. They are inlined into the structure that
// holds them:
//
//	access_key_id_env: S3_KEY            # or access_key_id_file: keys/id
//	secret_access_key_file: keys/secret  # or secret_access_key_env: S3_SECRET
//	region: us-east-1                    # optional
//
// restic reads them as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_DEFAULT_REGION from its environment (restic's documentation,
// "Amazon S3"); minio-go takes them as static V4 credentials.
type S3Credentials struct {
	AccessKeyIDEnv      string `yaml:"access_key_id_env"`
	AccessKeyIDFile     string `yaml:"access_key_id_file"`
	SecretAccessKeyEnv  string `yaml:"secret_access_key_env"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// Region is the bucket's region; empty lets the client find it
	// (restic and minio-go ask the server, us-east-1 when it has none).
	Region string `yaml:"region"`
}

// IsSet reports whether either key is configured.
func (c S3Credentials) IsSet() bool {
	return c.AccessKeyID().IsSet() || c.SecretAccessKey().IsSet()
}

// AccessKeyID is the access key ID reference (access_key_id_env/_file).
func (c S3Credentials) AccessKeyID() Secret {
	return Secret{Field: "access_key_id", Env: c.AccessKeyIDEnv, File: c.AccessKeyIDFile}
}

// SecretAccessKey is the secret key reference (secret_access_key_env/_file).
func (c S3Credentials) SecretAccessKey() Secret {
	return Secret{Field: "secret_access_key", Env: c.SecretAccessKeyEnv, File: c.SecretAccessKeyFile}
}

// resolvePaths makes the `*_file` paths absolute against the lab file's
// directory dir.
func (c *S3Credentials) resolvePaths(dir string) {
	if c.AccessKeyIDFile != "" {
		c.AccessKeyIDFile = absPath(dir, c.AccessKeyIDFile)
	}
	if c.SecretAccessKeyFile != "" {
		c.SecretAccessKeyFile = absPath(dir, c.SecretAccessKeyFile)
	}
}

// validateS3Credentials checks the keys of the structure at path p:
// each key set at most one way, both keys or neither (required says
// which: true when the endpoint cannot be reached without them), and no
// inline access_key_id/secret_access_key.
func (d *decoder) validateS3Credentials(p string, c S3Credentials, required bool) {
	for _, inline := range []string{"access_key_id", "secret_access_key"} {
		if d.present(p + "." + inline) {
			d.at(p+"."+inline, "inline secret not allowed: use %s_env or %s_file", inline, inline)
		}
	}
	for _, s := range []Secret{c.AccessKeyID(), c.SecretAccessKey()} {
		if s.Env != "" && s.File != "" {
			d.at(p+"."+s.Field+"_env", "%s_env and %s_file are mutually exclusive", s.Field, s.Field)
		}
	}
	id, secret := c.AccessKeyID().IsSet(), c.SecretAccessKey().IsSet()
	switch {
	case id && !secret:
		d.at(p+".secret_access_key_env", "access_key_id is set but secret_access_key is not: set secret_access_key_env or secret_access_key_file")
	case secret && !id:
		d.at(p+".access_key_id_env", "secret_access_key is set but access_key_id is not: set access_key_id_env or access_key_id_file")
	case !id && required:
		d.at(p+".access_key_id_env", "required: the S3 keys (access_key_id_env or access_key_id_file, and secret_access_key_env or secret_access_key_file)")
	}
}
