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
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/encryption"
	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
	"github.com/skiff-dev/skiff/internal/storage"
)

// pollUntil polls cond every 20ms until it returns nil or d passes.
func pollUntil(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", d, err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// sealedWith checks the raw etcd value at key: sealed under keyName, no
// plaintext.
func sealedWith(ctx context.Context, client *clientv3.Client, key, keyName, plaintext string) error {
	resp, err := client.Get(ctx, key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) != 1 {
		return fmt.Errorf("%s: %d values", key, len(resp.Kvs))
	}
	v := resp.Kvs[0].Value
	if bytes.Contains(v, []byte(plaintext)) {
		return fmt.Errorf("%s holds plaintext: %q", key, v)
	}
	if want := "k8s:enc:aesgcm:v1:" + keyName + ":"; !bytes.HasPrefix(v, []byte(want)) {
		return fmt.Errorf("%s = %.30q..., want prefix %q", key, v, want)
	}
	return nil
}

func TestSecretsEncryptionLoopAndRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := etcdtest.Start(t)
	dir := t.TempDir()
	prefix := "/" + t.Name() + secretsPrefix
	// Secrets written before encryption was enabled.
	keys := []string{prefix + "ns/a", prefix + "ns/b"}
	for _, k := range keys {
		if _, err := client.Put(ctx, k, "k8s\x00plain-secret-value"); err != nil {
			t.Fatal(err)
		}
	}

	tr, _, err := secretsTransformer(dir, client, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(encryptionKeyPath(dir)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", st, err)
	}
	// The test's loop: same code, its own prefix and a short interval.
	l := &secretsEncryption{
		tr: tr.(*encryption.Transformer), client: client, prefix: prefix,
		statusPath: filepath.Join(dir, "pki", EncryptionStatusFile),
		interval:   20 * time.Millisecond, log: slog.New(slog.DiscardHandler),
	}
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.run(loopCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("loop returned %v", err)
		}
	})

	status := func(want string) func() error {
		return func() error {
			b, err := os.ReadFile(l.statusPath)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(b)); got != want {
				return fmt.Errorf("status %q, want %q", got, want)
			}
			return nil
		}
	}
	allSealed := func(keyName string) func() error {
		return func() error {
			for _, k := range keys {
				if err := sealedWith(ctx, client, k, keyName, "plain-secret-value"); err != nil {
					return err
				}
			}
			return nil
		}
	}
	// Start-up pass: plaintext is encrypted with key1.
	pollUntil(t, 10*time.Second, status("key1"))
	pollUntil(t, time.Second, allSealed("key1"))

	// Without a server holding the lock: rotated, not waited for.
	r, err := RotateEncryptionKey(ctx, dir, time.Minute)
	if err != nil {
		t.Fatalf("RotateEncryptionKey: %v", err)
	}
	if want := (KeyRotation{Key: "key2"}); r != want {
		t.Errorf("RotateEncryptionKey = %+v, want %+v", r, want)
	}
	// The loop notices anyway.
	pollUntil(t, 10*time.Second, status("key2"))
	pollUntil(t, time.Second, allSealed("key2"))

	// With a server holding the lock: waits for the status.
	lock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	r, err = RotateEncryptionKey(ctx, dir, 10*time.Second)
	if err != nil {
		t.Fatalf("RotateEncryptionKey: %v", err)
	}
	if want := (KeyRotation{Key: "key3", ServerRunning: true, Reencrypted: true}); r != want {
		t.Errorf("RotateEncryptionKey = %+v, want %+v", r, want)
	}
	if err := allSealed("key3")(); err != nil {
		t.Error(err)
	}
	// Every secret is still readable with the reloaded transformer.
	for _, k := range keys {
		resp, err := client.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		plain, stale, err := tr.Decrypt(k, resp.Kvs[0].Value)
		if err != nil || stale || string(plain) != "k8s\x00plain-secret-value" {
			t.Errorf("Decrypt(%s) = %q, %v, %v", k, plain, stale, err)
		}
	}

	// A stopped loop: the wait times out, the key is rotated all the same.
	stop()
	if err := <-done; err != nil {
		t.Errorf("loop returned %v", err)
	}
	done <- nil // for the cleanup
	r, err = RotateEncryptionKey(ctx, dir, 300*time.Millisecond)
	if !errors.Is(err, ErrReencryptTimeout) || r.Key != "key4" || r.Reencrypted {
		t.Errorf("RotateEncryptionKey with no loop = %+v, %v; want key4, ErrReencryptTimeout", r, err)
	}
}

func TestSecretsEncryptionBadKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(encryptionKeyPath(dir), []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := secretsTransformer(dir, nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "no keys") {
		t.Errorf("secretsTransformer error = %v, want one saying no keys", err)
	}
	if _, err := RotateEncryptionKey(context.Background(), filepath.Join(dir, "missing"), 0); err == nil {
		t.Errorf("RotateEncryptionKey on a missing data dir succeeded")
	}
}

func TestTransformerFor(t *testing.T) {
	t.Parallel()
	var tr storage.Transformer = &encryption.Transformer{}
	for _, res := range builtin.Resources() {
		got := transformerFor(res, tr)
		if want := KeyPrefix(res) == secretsPrefix; (got != nil) != want {
			t.Errorf("transformerFor(%s) set = %v, want %v", res.GVR, got != nil, want)
		}
	}
}

// TestRunEncryptsSecrets runs a real server on an etcd the test reads
// directly: a secret written in plaintext before the server started and
// one created through the API end up sealed; a rotation re-encrypts both.
func TestRunEncryptsSecrets(t *testing.T) {
	t.Parallel()
	client, endpoints := etcdtest.StartEndpoints(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A secret from before encryption at rest.
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "old", UID: "uid-old", CreationTimestamp: metav1.Now()}, Data: map[string][]byte{"k": []byte("old-plaintext-value")}}
	data, err := runtime.Encode(storage.ProtobufCodec(scheme, corev1.SchemeGroupVersion), old)
	if err != nil {
		t.Fatal(err)
	}
	oldKey := secretsPrefix + "default/old"
	if _, err := client.Put(ctx, oldKey, string(data)); err != nil {
		t.Fatal(err)
	}

	progress := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0", EtcdServers: endpoints, Logger: testLogger(t), Progress: progress})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel = %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("Run did not return within 60s of cancel")
		}
	})
	kubeconfig := filepath.Join(dir, "kubeconfig")
	pollUntil(t, 60*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("Run returned during start-up: %v\n%s", err, progress)
		default:
		}
		_, err := os.Stat(kubeconfig)
		return err
	})
	if _, err := os.Stat(encryptionKeyPath(dir)); errors.Is(err, os.ErrNotExist) {
		// TODO(issue 7): remove once server.go calls secretsTransformer.
		t.Skip("the server does not encrypt secrets yet (secretsTransformer not wired into newStores)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	s1 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s1"}, StringData: map[string]string{"password": "new-plaintext-value"}}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, s1, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating secret: %v", err)
	}

	check := func(keyName string) func() error {
		return func() error {
			if err := sealedWith(ctx, client, oldKey, keyName, "old-plaintext-value"); err != nil {
				return err
			}
			return sealedWith(ctx, client, secretsPrefix+"default/s1", keyName, "new-plaintext-value")
		}
	}
	readable := func() {
		t.Helper()
		for name, want := range map[string]string{"old": "old-plaintext-value", "s1": "new-plaintext-value"} {
			got, err := cs.CoreV1().Secrets("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("getting secret %s: %v", name, err)
			}
			for _, v := range got.Data {
				if string(v) != want {
					t.Errorf("secret %s data = %q, want %q", name, v, want)
				}
			}
		}
	}
	pollUntil(t, 15*time.Second, check("key1"))
	readable()

	r, err := RotateEncryptionKey(ctx, dir, 30*time.Second)
	if err != nil {
		t.Fatalf("RotateEncryptionKey: %v", err)
	}
	if want := (KeyRotation{Key: "key2", ServerRunning: true, Reencrypted: true}); r != want {
		t.Errorf("RotateEncryptionKey = %+v, want %+v", r, want)
	}
	if err := check("key2")(); err != nil {
		t.Error(err)
	}
	readable()
}

// TestSecretsEncryptionRetriesAfterBadValue: a value that does not decrypt
// does not stop the others from being encrypted, holds back the status,
// and once it is gone the retried pass completes.
func TestSecretsEncryptionRetriesAfterBadValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := etcdtest.Start(t)
	dir := t.TempDir()
	prefix := "/" + t.Name() + secretsPrefix
	if _, err := client.Put(ctx, prefix+"ns/good", "k8s\x00plain-secret-value"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Put(ctx, prefix+"ns/bad", "k8s:enc:aesgcm:v1:gone:0123456789abcdefghijklmnopqrstuvwxyz"); err != nil {
		t.Fatal(err)
	}
	tr, _, err := secretsTransformer(dir, client, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l := &secretsEncryption{
		tr: tr.(*encryption.Transformer), client: client, prefix: prefix,
		statusPath: filepath.Join(dir, "pki", EncryptionStatusFile),
		interval:   20 * time.Millisecond, log: slog.New(slog.DiscardHandler),
	}
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.run(loopCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("loop returned %v", err)
		}
	}()
	pollUntil(t, 10*time.Second, func() error {
		return sealedWith(ctx, client, prefix+"ns/good", "key1", "plain-secret-value")
	})
	if _, err := os.Stat(l.statusPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status file after an incomplete pass: %v, want none", err)
	}
	if _, err := client.Delete(ctx, prefix+"ns/bad"); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 10*time.Second, func() error {
		b, err := os.ReadFile(l.statusPath)
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(b)); got != "key1" {
			return fmt.Errorf("status %q, want key1", got)
		}
		return nil
	})
}
