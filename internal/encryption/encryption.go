package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// KeyFileName is the key file's name in the data dir's pki directory.
const KeyFileName = "encryption-keys.json"

const (
	// encPrefix starts every value an encryption provider wrote (upstream's
	// "k8s:enc:" + provider + ":v1:" + key name + ":").
	encPrefix = "k8s:enc:"
	// gcmPrefix starts a value this package wrote; the key name and ":"
	// follow.
	gcmPrefix = encPrefix + "aesgcm:v1:"
	keySize   = 32 // AES-256
	nonceSize = 12 // the standard GCM nonce
)

// validName is what a key name may look like: it cannot contain ":", which
// ends the name in a stored value.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// fileKey is one entry of the key file.
type fileKey struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// key is a parsed key, ready to seal and open.
type key struct {
	name string
	aead cipher.AEAD
}

// Transformer encrypts and decrypts values with the keys of one key file.
// It is safe for concurrent use; Reload swaps the keys atomically with
// respect to Encrypt and Decrypt.
type Transformer struct {
	path string

	mu      sync.RWMutex
	primary *key            // guarded by mu; keys[primary.name] too
	keys    map[string]*key // guarded by mu
}

// Load reads the key file at path, creating it (and its directory, 0700)
// with one new key when it does not exist.
func Load(path string) (*Transformer, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading encryption keys: %w", err)
	}
	t := &Transformer{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload re-reads the key file. On error the keys in use stay as they were.
// The server calls it when the file changes (after Rotate).
func (t *Transformer) Reload() error {
	keys, err := readKeyFile(t.path)
	if err != nil {
		return err
	}
	primary, byName, err := parseKeys(t.path, keys)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.primary, t.keys = primary, byName
	t.mu.Unlock()
	return nil
}

// Path returns the key file's path.
func (t *Transformer) Path() string { return t.path }

// Primary returns the name of the key Encrypt uses.
func (t *Transformer) Primary() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.primary.name
}

// Encrypt seals plaintext under the primary key with a fresh random nonce
// and storageKey (the etcd key) as additional authenticated data.
func (t *Transformer) Encrypt(storageKey string, plaintext []byte) ([]byte, error) {
	t.mu.RLock()
	k := t.primary
	t.mu.RUnlock()
	prefix := gcmPrefix + k.name + ":"
	out := make([]byte, len(prefix)+nonceSize, len(prefix)+nonceSize+len(plaintext)+k.aead.Overhead())
	copy(out, prefix)
	nonce := out[len(prefix):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("encrypting %s: reading a nonce: %w", storageKey, err)
	}
	return k.aead.Seal(out, nonce, plaintext, []byte(storageKey)), nil
}

// Decrypt opens a stored value of storageKey. A value without the
// "k8s:enc:" prefix is plaintext and returned as it is, with stale true
// (it should be rewritten encrypted). A value sealed under a known key
// other than the primary is decrypted with stale true. Anything else that
// does not open (another provider, an unknown key, a tampered value, a
// value moved from another key) is an error naming the key.
// The returned plaintext never aliases stored unless it is stored itself.
func (t *Transformer) Decrypt(storageKey string, stored []byte) (plain []byte, stale bool, err error) {
	if !bytes.HasPrefix(stored, []byte(encPrefix)) {
		return stored, true, nil
	}
	if !bytes.HasPrefix(stored, []byte(gcmPrefix)) {
		provider, _, _ := strings.Cut(string(stored[len(encPrefix):min(len(stored), len(encPrefix)+32)]), ":")
		return nil, false, fmt.Errorf("decrypting %s: unsupported encryption provider %q (only aesgcm)", storageKey, provider)
	}
	rest := stored[len(gcmPrefix):]
	i := bytes.IndexByte(rest, ':')
	if i < 0 {
		return nil, false, fmt.Errorf("decrypting %s: no key name in the stored value", storageKey)
	}
	name, sealed := string(rest[:i]), rest[i+1:]
	t.mu.RLock()
	k, primary := t.keys[name], t.primary
	t.mu.RUnlock()
	if k == nil {
		return nil, false, fmt.Errorf("decrypting %s: encrypted with key %q, which is not in %s", storageKey, name, t.path)
	}
	if len(sealed) < nonceSize+k.aead.Overhead() {
		return nil, false, fmt.Errorf("decrypting %s with key %q: value too short", storageKey, name)
	}
	plain, err = k.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(storageKey))
	if err != nil {
		return nil, false, fmt.Errorf("decrypting %s with key %q: %w (tampered, or moved from another key)", storageKey, name, err)
	}
	return plain, k != primary, nil
}

// Rotate adds a new random key at the head of the key file at path (the
// new primary) and keeps the others for reading; it creates the file when
// missing. It returns the new key's name ("key<N>", N one more than the
// highest such number in the file). Concurrent Rotate calls are
// serialized with an flock on path+".lock". A running server picks the
// new key up only when it reloads the file.
func Rotate(path string) (newName string, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("rotating encryption key: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("rotating encryption key: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("rotating encryption key: locking %s: %w", lock.Name(), err)
	}
	var keys []fileKey
	if _, err := os.Stat(path); err == nil {
		if keys, err = readKeyFile(path); err != nil {
			return "", err
		}
		if _, _, err := parseKeys(path, keys); err != nil {
			return "", err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("rotating encryption key: %w", err)
	}
	k, err := newFileKey(nextName(keys))
	if err != nil {
		return "", err
	}
	if err := writeKeyFile(path, append([]fileKey{k}, keys...)); err != nil {
		return "", err
	}
	return k.Name, nil
}

// nextName is "key<N>" with N one more than the highest keyN in keys.
func nextName(keys []fileKey) string {
	n := 0
	for _, k := range keys {
		if s, ok := strings.CutPrefix(k.Name, "key"); ok {
			if i, err := strconv.Atoi(s); err == nil && i > n {
				n = i
			}
		}
	}
	return "key" + strconv.Itoa(n+1)
}

func newFileKey(name string) (fileKey, error) {
	b := make([]byte, keySize)
	if _, err := rand.Read(b); err != nil {
		return fileKey{}, fmt.Errorf("generating encryption key: %w", err)
	}
	return fileKey{Name: name, Secret: base64.StdEncoding.EncodeToString(b)}, nil
}

// createKeyFile writes a key file with one new key, unless one appeared
// meanwhile.
func createKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating encryption keys: %w", err)
	}
	k, err := newFileKey("key1")
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent([]fileKey{k}, "", "  ")
	if err != nil {
		return fmt.Errorf("creating encryption keys: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil // another process created it first: use theirs
	}
	if err != nil {
		return fmt.Errorf("creating encryption keys: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("creating encryption keys: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("creating encryption keys: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("creating encryption keys: %w", err)
	}
	return nil
}

// writeKeyFile replaces the file at path atomically (a synced temporary
// file renamed over it), so a reader sees the old or the new list.
func writeKeyFile(path string, keys []fileKey) error {
	data, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return fmt.Errorf("writing encryption keys: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing encryption keys: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing encryption keys: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing encryption keys: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing encryption keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing encryption keys: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing encryption keys: %w", err)
	}
	return nil
}

func readKeyFile(path string) ([]fileKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading encryption keys: %w", err)
	}
	var keys []fileKey
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("reading encryption keys %s: %w", path, err)
	}
	return keys, nil
}

// parseKeys checks the file's keys and builds their ciphers.
func parseKeys(path string, keys []fileKey) (*key, map[string]*key, error) {
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("reading encryption keys %s: no keys", path)
	}
	byName := make(map[string]*key, len(keys))
	var primary *key
	for i, fk := range keys {
		if !validName.MatchString(fk.Name) {
			return nil, nil, fmt.Errorf("reading encryption keys %s: key %d: invalid name %q", path, i, fk.Name)
		}
		if byName[fk.Name] != nil {
			return nil, nil, fmt.Errorf("reading encryption keys %s: key name %q appears twice", path, fk.Name)
		}
		secret, err := base64.StdEncoding.DecodeString(fk.Secret)
		if err != nil {
			return nil, nil, fmt.Errorf("reading encryption keys %s: key %q: secret: %w", path, fk.Name, err)
		}
		if len(secret) != keySize {
			return nil, nil, fmt.Errorf("reading encryption keys %s: key %q: secret is %d bytes, want %d", path, fk.Name, len(secret), keySize)
		}
		block, err := aes.NewCipher(secret)
		if err != nil {
			return nil, nil, fmt.Errorf("reading encryption keys %s: key %q: %w", path, fk.Name, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, nil, fmt.Errorf("reading encryption keys %s: key %q: %w", path, fk.Name, err)
		}
		k := &key{name: fk.Name, aead: aead}
		byName[k.name] = k
		if i == 0 {
			primary = k
		}
	}
	return primary, byName, nil
}
