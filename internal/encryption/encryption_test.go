package encryption

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testKey = "/registry/core/secrets/default/s1"

func load(t *testing.T) (*Transformer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pki", KeyFileName)
	tr, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tr, path
}

func fileNames(t *testing.T, path string) []string {
	t.Helper()
	keys, err := readKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range keys {
		names = append(names, k.Name)
	}
	return names
}

func TestLoadCreatesKeyFile(t *testing.T) {
	t.Parallel()
	tr, path := load(t)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %v, want 0600", got)
	}
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := dir.Mode().Perm(); got != 0o700 {
		t.Errorf("pki dir mode = %v, want 0700", got)
	}
	if diff := cmp.Diff([]string{"key1"}, fileNames(t, path)); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if got := tr.Primary(); got != "key1" {
		t.Errorf("Primary() = %q, want key1", got)
	}
	// A second Load uses the same file and can read the first one's values.
	stored, err := tr.Encrypt(testKey, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	tr2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	plain, stale, err := tr2.Decrypt(testKey, stored)
	if err != nil || stale || string(plain) != "hello" {
		t.Errorf("Decrypt after reload = %q, %v, %v; want hello, false, nil", plain, stale, err)
	}
}

func TestEncryptFormat(t *testing.T) {
	t.Parallel()
	tr, _ := load(t)
	plain := []byte("k8s\x00top secret value")
	a, err := tr.Encrypt(testKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.Encrypt(testKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "k8s:enc:aesgcm:v1:key1:"
	if !bytes.HasPrefix(a, []byte(prefix)) {
		t.Fatalf("stored value %q does not start with %q", a, prefix)
	}
	if want := len(prefix) + 12 + len(plain) + 16; len(a) != want {
		t.Errorf("stored length = %d, want %d (prefix + nonce + ciphertext + tag)", len(a), want)
	}
	if bytes.Contains(a, []byte("top secret")) {
		t.Errorf("stored value contains the plaintext: %q", a)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two encryptions of one value are equal: nonces are not random")
	}
}

func TestDecrypt(t *testing.T) {
	t.Parallel()
	tr, path := load(t)
	plain := []byte("the value")
	underKey1, err := tr.Encrypt(testKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	// Another key file: its key1 is not ours.
	other, _ := load(t)
	fromOther, err := other.Encrypt(testKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rotate(path); err != nil {
		t.Fatal(err)
	}
	if err := tr.Reload(); err != nil {
		t.Fatal(err)
	}
	underKey2, err := tr.Encrypt(testKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(underKey2)
	tampered[len(tampered)-1] ^= 1
	tamperedNonce := bytes.Clone(underKey2)
	tamperedNonce[len("k8s:enc:aesgcm:v1:key2:")] ^= 1
	unknown := []byte(strings.Replace(string(underKey2), ":key2:", ":nokey:", 1))

	for _, tc := range []struct {
		name      string
		key       string
		stored    []byte
		want      []byte
		wantStale bool
		wantErr   string // substring; "" means no error
	}{
		{name: "primary", key: testKey, stored: underKey2, want: plain},
		{name: "old key is stale", key: testKey, stored: underKey1, want: plain, wantStale: true},
		{name: "plaintext protobuf passes through", key: testKey, stored: []byte("k8s\x00\x0a\x02v1"), want: []byte("k8s\x00\x0a\x02v1"), wantStale: true},
		{name: "plaintext json passes through", key: testKey, stored: []byte(`{"kind":"Secret"}`), want: []byte(`{"kind":"Secret"}`), wantStale: true},
		{name: "empty passes through", key: testKey, stored: []byte{}, want: []byte{}, wantStale: true},
		{name: "tampered ciphertext", key: testKey, stored: tampered, wantErr: `decrypting /registry/core/secrets/default/s1 with key "key2": cipher: message authentication failed`},
		{name: "tampered nonce", key: testKey, stored: tamperedNonce, wantErr: "message authentication failed"},
		{name: "moved to another key (AAD)", key: "/registry/core/secrets/default/s2", stored: underKey2, wantErr: `decrypting /registry/core/secrets/default/s2 with key "key2"`},
		{name: "unknown key name", key: testKey, stored: unknown, wantErr: `encrypted with key "nokey", which is not in`},
		{name: "same name, other secret", key: testKey, stored: fromOther, wantErr: "message authentication failed"},
		{name: "truncated", key: testKey, stored: underKey2[:len("k8s:enc:aesgcm:v1:key2:")+5], wantErr: "value too short"},
		{name: "no key name", key: testKey, stored: []byte("k8s:enc:aesgcm:v1:key2"), wantErr: "no key name"},
		{name: "other provider", key: testKey, stored: []byte("k8s:enc:aescbc:v1:key1:xxxxxxxx"), wantErr: `unsupported encryption provider "aescbc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, stale, err := tr.Decrypt(tc.key, tc.stored)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Decrypt error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plaintext (-want +got):\n%s", diff)
			}
			if stale != tc.wantStale {
				t.Errorf("stale = %v, want %v", stale, tc.wantStale)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	tr, path := load(t)
	old, err := tr.Encrypt(testKey, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"key2", "key3"} {
		name, err := Rotate(path)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if name != want {
			t.Errorf("Rotate() = %q, want %q", name, want)
		}
	}
	if diff := cmp.Diff([]string{"key3", "key2", "key1"}, fileNames(t, path)); diff != "" {
		t.Errorf("keys after two rotations (-want +got):\n%s", diff)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file after rotation: %v, %v; want mode 0600", st.Mode(), err)
	}
	// Until Reload the transformer keeps writing with key1.
	if got := tr.Primary(); got != "key1" {
		t.Errorf("Primary() before Reload = %q, want key1", got)
	}
	if err := tr.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := tr.Primary(); got != "key3" {
		t.Errorf("Primary() after Reload = %q, want key3", got)
	}
	if _, stale, err := tr.Decrypt(testKey, old); err != nil || !stale {
		t.Errorf("Decrypt(old) = stale %v, %v; want stale, no error", stale, err)
	}
	// Rotate creates a missing file.
	fresh := filepath.Join(t.TempDir(), "pki", KeyFileName)
	if name, err := Rotate(fresh); err != nil || name != "key1" {
		t.Errorf("Rotate(missing) = %q, %v; want key1", name, err)
	}
}

func TestReloadKeepsKeysOnError(t *testing.T) {
	t.Parallel()
	tr, path := load(t)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := base64.StdEncoding.EncodeToString(make([]byte, 32))
	bad := func(keys ...fileKey) string {
		b, _ := json.Marshal(keys)
		return string(b)
	}
	for _, tc := range []struct {
		name, content, wantErr string
	}{
		{"not json", "{", "reading encryption keys"},
		{"empty list", "[]", "no keys"},
		{"short secret", bad(fileKey{"k", base64.StdEncoding.EncodeToString(make([]byte, 16))}), "secret is 16 bytes, want 32"},
		{"bad base64", bad(fileKey{"k", "!!"}), `key "k": secret`},
		{"colon in name", bad(fileKey{"a:b", secret}), `invalid name "a:b"`},
		{"duplicate", bad(fileKey{"k", secret}, fileKey{"k", secret}), `"k" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			err := tr.Reload()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Reload error = %v, want one containing %q", err, tc.wantErr)
			}
			if _, err := Rotate(path); err == nil {
				t.Errorf("Rotate on a bad file succeeded")
			}
			if got := tr.Primary(); got != "key1" {
				t.Errorf("Primary() after a failed Reload = %q, want key1", got)
			}
		})
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecrypt(f *testing.F) {
	dir := f.TempDir()
	tr, err := Load(filepath.Join(dir, KeyFileName))
	if err != nil {
		f.Fatal(err)
	}
	good, err := tr.Encrypt(testKey, []byte("seed"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("k8s:enc:aesgcm:v1:key1:"))
	f.Add([]byte("k8s:enc:"))
	f.Fuzz(func(t *testing.T, stored []byte) {
		plain, _, err := tr.Decrypt(testKey, stored)
		if err == nil && bytes.HasPrefix(stored, []byte("k8s:enc:")) && !bytes.Equal(stored, good) {
			// Only a genuine seal opens; anything else must fail.
			t.Errorf("Decrypt(%q) = %q, want an error", stored, plain)
		}
	})
}
