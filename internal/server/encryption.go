package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-dev/skiff/internal/encryption"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/storage"
)

// Secrets at rest: the files in DIR/pki and the etcd prefix they cover.
const (
	// secretsPrefix is KeyPrefix of core/v1 secrets.
	secretsPrefix = "/registry/core/secrets/"
	// EncryptionStatusFile, in DIR/pki, holds the name of the key every
	// secret is encrypted with, written by the server after each complete
	// re-encryption pass.
	EncryptionStatusFile = "encryption-status"
	// keyCheckInterval is how often the server reads the key file and
	// compares it with the last content it loaded (polling, not inotify:
	// a few hundred bytes every 5 s, and a rename-over by Rotate or an
	// editor is seen like any other change).
	keyCheckInterval = 5 * time.Second
	// retryFactor times the check interval is the wait before re-running
	// a failed re-encryption pass (a minute).
	retryFactor = 12
)

// encryptionKeyPath is the key file of the data dir dir.
func encryptionKeyPath(dir string) string {
	return filepath.Join(dir, "pki", encryption.KeyFileName)
}

// isSecrets reports whether res is core/v1 secrets, the one resource
// encrypted at rest.
func isSecrets(res *registry.Resource) bool {
	return res.GVR.Group == "" && res.GVR.Resource == "secrets"
}

// transformerFor is tr for secrets and nil (no transform) for any other
// resource: the value of storage.Config.Transformer in newStores.
func transformerFor(res *registry.Resource, tr storage.Transformer) storage.Transformer {
	if isSecrets(res) {
		return tr
	}
	return nil
}

// secretsTransformer loads (creating on first use) the key file in
// DIR/pki and returns the transformer of the secrets store and the loop
// that keeps it current. The loop, run for the life of the server (it
// returns only when ctx is done), re-encrypts every stale secret at once
// (plaintext from before encryption, or a key rotated while the server was
// stopped), then checks the key file every 5 s; on a change it reloads
// the keys, re-encrypts, and writes DIR/pki/encryption-status with the
// primary key's name. A failed reload is logged and retried at the next
// check, a failed pass a minute later (or at once on a new key file); the
// status file is only written after a complete pass.
func secretsTransformer(dir string, client *clientv3.Client, log *slog.Logger) (storage.Transformer, func(ctx context.Context) error, error) {
	path := encryptionKeyPath(dir)
	tr, err := encryption.Load(path)
	if err != nil {
		return nil, nil, fmt.Errorf("secrets encryption: %w", err)
	}
	l := &secretsEncryption{
		tr:         tr,
		client:     client,
		prefix:     secretsPrefix,
		statusPath: filepath.Join(dir, "pki", EncryptionStatusFile),
		interval:   keyCheckInterval,
		log:        log.With("component", "secrets-encryption"),
	}
	return tr, l.run, nil
}

// secretsEncryption is the loop that follows the key file.
type secretsEncryption struct {
	tr         *encryption.Transformer
	client     *clientv3.Client
	prefix     string
	statusPath string
	interval   time.Duration
	log        *slog.Logger
}

// run is the loop of secretsTransformer; it returns nil when ctx is done.
func (l *secretsEncryption) run(ctx context.Context) error {
	last, err := os.ReadFile(l.tr.Path())
	if err != nil {
		l.log.Info("cannot read the key file", "path", l.tr.Path(), "err", err)
	}
	pending := true // the first pass upgrades plaintext and old keys
	var retryAt time.Time
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		if pending && !time.Now().Before(retryAt) {
			pending = !l.reencrypt(ctx)
			// A value that does not decrypt fails every pass: retry
			// failures less often than the key file is checked.
			retryAt = time.Now().Add(retryFactor * l.interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := os.ReadFile(l.tr.Path())
		if err != nil {
			l.log.Info("cannot read the key file", "path", l.tr.Path(), "err", err)
			continue
		}
		if bytes.Equal(cur, last) {
			continue
		}
		if err := l.tr.Reload(); err != nil {
			// Keep the keys in use; retried at the next check.
			l.log.Info("cannot reload encryption keys; keeping the old ones", "err", err)
			continue
		}
		last = cur
		l.log.Info("encryption keys reloaded", "primary", l.tr.Primary())
		pending, retryAt = true, time.Time{}
	}
}

// reencrypt runs one pass and, when it is complete, writes the status
// file. It reports whether the pass was complete.
func (l *secretsEncryption) reencrypt(ctx context.Context) bool {
	primary := l.tr.Primary()
	start := time.Now()
	n, err := storage.Reencrypt(ctx, l.client, l.prefix, l.tr)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Info("re-encrypting secrets failed; retrying later", "rewritten", n, "err", err)
		}
		return false
	}
	if err := writeFileAtomic(l.statusPath, []byte(primary+"\n")); err != nil {
		l.log.Info("cannot write the encryption status", "err", err)
		return false
	}
	l.log.Info("secrets encrypted", "key", primary, "rewritten", n, "elapsed", time.Since(start))
	return true
}

// writeFileAtomic replaces path with data (0600) through a rename, so a
// reader sees the old or the new content.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// KeyRotation is what RotateEncryptionKey did.
type KeyRotation struct {
	// Key is the new primary key's name.
	Key string
	// ServerRunning is true when a server held the data dir's lock.
	ServerRunning bool
	// Reencrypted is true when that server reported every secret
	// encrypted with Key within the wait.
	Reencrypted bool
}

// ErrReencryptTimeout is returned (wrapped) by RotateEncryptionKey when
// the running server did not finish re-encrypting within the wait. The key
// is rotated nonetheless.
var ErrReencryptTimeout = errors.New("secrets not re-encrypted in time")

// RotateEncryptionKey adds a new primary key to the key file of the data
// dir dir (skiff secrets rotate-key). When a server runs on dir and wait
// is positive, it then waits up to wait for the server to write the new
// key's name to DIR/pki/encryption-status (every secret re-encrypted);
// otherwise the next server start re-encrypts. Safe to run beside a
// server; two concurrent rotations are serialized.
func RotateEncryptionKey(ctx context.Context, dir string, wait time.Duration) (KeyRotation, error) {
	if _, err := os.Stat(dir); err != nil {
		return KeyRotation{}, fmt.Errorf("data dir: %w", err)
	}
	running, err := dataDirLocked(dir)
	if err != nil {
		return KeyRotation{}, err
	}
	name, err := encryption.Rotate(encryptionKeyPath(dir))
	if err != nil {
		return KeyRotation{}, err
	}
	r := KeyRotation{Key: name, ServerRunning: running}
	if !running || wait <= 0 {
		return r, nil
	}
	status := filepath.Join(dir, "pki", EncryptionStatusFile)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(status)
		if err == nil && strings.TrimSpace(string(b)) == name {
			r.Reencrypted = true
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("waiting for the server to re-encrypt secrets with %s: %w (the server's log says why; it retries every %s)", name, ErrReencryptTimeout, keyCheckInterval)
		case <-tick.C:
		}
	}
}

// dataDirLocked reports whether a server holds the lock of the data dir
// dir (see lockDataDir). It takes and drops the lock at once when free: a
// server starting in that instant fails with ErrDataDirInUse.
func dataDirLocked(dir string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking the data dir lock: %w", err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking the data dir lock: %w", err)
	}
	return false, nil // closing f drops the lock
}
