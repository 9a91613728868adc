// Package encryption encrypts values at rest with AES-GCM under named keys
// kept in a key file, in the format of upstream's EncryptionConfiguration
// "aesgcm" provider.
//
// It owns the key file (DIR/pki/encryption-keys.json, mode 0600): a JSON
// list of {"name", "secret"} where secret is 32 random bytes in base64. The
// first key is the primary: every Encrypt uses it. The other keys are kept
// so that values written under them can still be read.
//
// A stored value is
//
//	"k8s:enc:aesgcm:v1:" + name + ":" + nonce (12 random bytes) + ciphertext+tag
//
// sealed with the etcd key as additional authenticated data, so a value
// copied to another key fails to decrypt. A value without the "k8s:enc:"
// prefix is returned as it is (plaintext written before encryption was
// enabled) and reported stale, as is a value sealed under a key other than
// the primary: stale values are what a re-encryption pass rewrites.
//
// It reads and writes only the key file. It never logs or returns key
// material, and it never decides when to re-encrypt: that is its caller's
// (the server's secrets loop).
//
// # Usage
//
//	tr, err := encryption.Load(filepath.Join(dir, "pki", encryption.KeyFileName)) // creates the file
//	stored, err := tr.Encrypt("/registry/core/secrets/ns/name", plain)
//	plain, stale, err := tr.Decrypt("/registry/core/secrets/ns/name", stored)
//
//	// skiff secrets rotate-key (any process):
//	name, err := encryption.Rotate(path) // new primary, old keys kept
//	// the server notices the change:
//	err = tr.Reload() // then rewrites every stale value
//
// Known limits: a key is never removed from the file (re-encryption makes
// old keys unused, but deleting them is manual). Rotate serializes with
// other Rotate calls through an flock on the key file's ".lock" sibling;
// anything else editing the file by hand must not race it.
package encryption
