package storage

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-dev/skiff/internal/encryption"
)

// marker is a label value that must never appear in etcd in plaintext.
const marker = "plaintext-marker-7f3a"

func encryptedStore(t *testing.T) (*Store, *encryption.Transformer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), encryption.KeyFileName)
	tr, err := encryption.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newTestStore(t, nil, func(c *Config) { c.Transformer = tr })
	return s, tr, path
}

// rawValue reads key's bytes from etcd as they are stored.
func rawValue(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	resp, err := s.client.Get(context.Background(), s.EtcdKey(key))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("etcd has %d values at %s", len(resp.Kvs), key)
	}
	return resp.Kvs[0].Value
}

// checkSealed fails unless key's stored value is sealed under keyName and
// shows no plaintext.
func checkSealed(t *testing.T, s *Store, key, keyName string) {
	t.Helper()
	v := rawValue(t, s, key)
	if want := "k8s:enc:aesgcm:v1:" + keyName + ":"; !bytes.HasPrefix(v, []byte(want)) {
		t.Errorf("etcd value of %s = %.40q..., want prefix %q", key, v, want)
	}
	if bytes.Contains(v, []byte(marker)) || bytes.Contains(v, []byte("busybox")) {
		t.Errorf("etcd value of %s shows plaintext: %q", key, v)
	}
}

func TestTransformerReadAndWritePaths(t *testing.T) {
	t.Parallel()
	s, _, _ := encryptedStore(t)
	ctx := context.Background()
	w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	created := mustCreate(t, s, pod("ns", "a", map[string]string{"m": marker}, ""))
	checkSealed(t, s, "ns/a", "key1")

	got, err := s.Get(ctx, "ns/a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("Get (-created +got):\n%s", diff)
	}

	updated, err := s.GuaranteedUpdate(ctx, "ns/a", false, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.(*corev1.Pod)
		p.Spec.NodeName = "n1"
		return p, nil
	})
	if err != nil {
		t.Fatalf("GuaranteedUpdate: %v", err)
	}
	checkSealed(t, s, "ns/a", "key1")
	if got := updated.(*corev1.Pod).Spec.NodeName; got != "n1" {
		t.Errorf("updated nodeName = %q", got)
	}

	// A no-op update writes nothing, though every encryption differs.
	before := rawValue(t, s, "ns/a")
	same, err := s.GuaranteedUpdate(ctx, "ns/a", false, func(cur runtime.Object) (runtime.Object, error) { return cur, nil })
	if err != nil {
		t.Fatalf("no-op GuaranteedUpdate: %v", err)
	}
	if rvOf(t, same) != rvOf(t, updated) || !bytes.Equal(before, rawValue(t, s, "ns/a")) {
		t.Errorf("no-op update wrote: rv %s -> %s", rvOf(t, updated), rvOf(t, same))
	}

	// Lists from the cache and from etcd.
	eventually(t, 5*time.Second, func() error {
		l, err := s.List(ctx, "", ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"ns/a"}, names(t, l)); diff != "" {
			return fmt.Errorf("cache list (-want +got):\n%s", diff)
		}
		return nil
	})
	l, err := s.List(ctx, "ns/", ListOptions{ResourceVersion: rvOf(t, updated), ResourceVersionMatch: MatchExact})
	if err != nil {
		t.Fatalf("List from etcd: %v", err)
	}
	if diff := cmp.Diff([]string{"ns/a"}, names(t, l)); diff != "" {
		t.Errorf("etcd list (-want +got):\n%s", diff)
	}

	if _, err := s.Delete(ctx, "ns/a", nil, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want := []seen{
		{Type: watch.Added, Name: "a", RV: rvOf(t, created)},
		{Type: watch.Modified, Name: "a", RV: rvOf(t, updated)},
	}
	evs := nextN(t, w, 3)
	if diff := cmp.Diff(want, evs[:2]); diff != "" {
		t.Errorf("watch events (-want +got):\n%s", diff)
	}
	if evs[2].Type != watch.Deleted {
		t.Errorf("third event = %v, want DELETED", evs[2])
	}
}

func TestTransformerPlaintextUpgradeAndReencrypt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A store without encryption writes plaintext, as before the upgrade.
	plain, client := newTestStore(t, nil, nil)
	for _, n := range []string{"a", "b", "c"} {
		mustCreate(t, plain, pod("ns", n, map[string]string{"m": marker}, ""))
	}
	if v := rawValue(t, plain, "ns/a"); !bytes.Contains(v, []byte(marker)) {
		t.Fatalf("unencrypted store did not write plaintext: %q", v)
	}

	path := filepath.Join(t.TempDir(), encryption.KeyFileName)
	tr, err := encryption.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newTestStore(t, client, func(c *Config) { c.Transformer = tr })
	// Plaintext values read as they are, from etcd and from the cache.
	got, err := s.Get(ctx, "ns/b")
	if err != nil {
		t.Fatalf("Get plaintext: %v", err)
	}
	if got.(*corev1.Pod).Labels["m"] != marker {
		t.Errorf("Get plaintext = %v", got)
	}
	l, err := s.List(ctx, "", ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ns/a", "ns/b", "ns/c"}, names(t, l)); diff != "" {
		t.Errorf("cache list of plaintext (-want +got):\n%s", diff)
	}

	la, err := meta.ListAccessor(l)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: la.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	n, err := s.Reencrypt(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Reencrypt = %d, %v; want 3, nil", n, err)
	}
	for _, k := range []string{"ns/a", "ns/b", "ns/c"} {
		checkSealed(t, s, k, "key1")
	}
	// Watchers see MODIFIED events with an equal object.
	for _, ev := range nextN(t, w, 3) {
		if ev.Type != watch.Modified {
			t.Errorf("event after re-encryption = %v, want MODIFIED", ev)
		}
	}
	if n, err := s.Reencrypt(ctx); err != nil || n != 0 {
		t.Errorf("second Reencrypt = %d, %v; want 0, nil", n, err)
	}

	// Rotate: nothing is stale until the transformer reloads.
	if _, err := encryption.Rotate(path); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Reencrypt(ctx); err != nil || n != 0 {
		t.Errorf("Reencrypt before Reload = %d, %v; want 0, nil", n, err)
	}
	if err := tr.Reload(); err != nil {
		t.Fatal(err)
	}
	// Old-key values still read.
	if _, err := s.Get(ctx, "ns/c"); err != nil {
		t.Fatalf("Get under the old key: %v", err)
	}
	if n, err := s.Reencrypt(ctx); err != nil || n != 3 {
		t.Fatalf("Reencrypt after rotation = %d, %v; want 3, nil", n, err)
	}
	for _, k := range []string{"ns/a", "ns/b", "ns/c"} {
		checkSealed(t, s, k, "key2")
	}
	got, err = s.Get(ctx, "ns/a")
	if err != nil {
		t.Fatalf("Get after re-encryption: %v", err)
	}
	if got.(*corev1.Pod).Labels["m"] != marker {
		t.Errorf("object changed by re-encryption: %v", got)
	}
}

func TestTransformerDecryptFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := encryptedStore(t)
	mustCreate(t, s, pod("ns", "good", nil, ""))
	// A value sealed under a key this store does not have, and one moved
	// from another key (its authenticated data no longer matches).
	other, err := encryption.Load(filepath.Join(t.TempDir(), encryption.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := encryption.Rotate(other.Path()); err != nil {
		t.Fatal(err)
	}
	if err := other.Reload(); err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Encrypt(s.EtcdKey("ns/foreign"), []byte("k8s\x00whatever"))
	if err != nil {
		t.Fatal(err)
	}
	moved := rawValue(t, s, "ns/good")
	for k, v := range map[string][]byte{"ns/foreign": foreign, "ns/moved": moved} {
		if _, err := s.client.Put(ctx, s.EtcdKey(k), string(v)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		key, want string
	}{
		{"ns/foreign", `encrypted with key "key2", which is not in`},
		{"ns/moved", `with key "key1": cipher: message authentication failed`},
	} {
		t.Run(tc.key, func(t *testing.T) {
			_, err := s.Get(ctx, tc.key)
			if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), s.EtcdKey(tc.key)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Get error = %v, want a 500 naming %s and containing %q", err, s.EtcdKey(tc.key), tc.want)
			}
			_, err = s.GuaranteedUpdate(ctx, tc.key, false, func(cur runtime.Object) (runtime.Object, error) { return cur, nil })
			if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("GuaranteedUpdate error = %v, want a 500 containing %q", err, tc.want)
			}
		})
	}
	// A list from etcd fails as a whole; the cache skips what it cannot read.
	resp, err := s.client.Get(ctx, "health")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.List(ctx, "ns/", ListOptions{ResourceVersion: fmt.Sprint(resp.Header.Revision), ResourceVersionMatch: MatchExact})
	if !apierrors.IsInternalError(err) {
		t.Errorf("etcd List error = %v, want a 500", err)
	}
	eventually(t, 5*time.Second, func() error {
		if r, _ := s.CurrentRevision(ctx); r < resp.Header.Revision {
			return fmt.Errorf("cache at %d, want %d", r, resp.Header.Revision)
		}
		l, err := s.List(ctx, "", ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"ns/good"}, names(t, l)); diff != "" {
			return fmt.Errorf("cache list (-want +got):\n%s", diff)
		}
		return nil
	})
	// Re-encryption reports the bad values and still does the rest.
	if _, err := s.client.Put(ctx, s.EtcdKey("ns/plain"), string(rawPod(t, s))); err != nil {
		t.Fatal(err)
	}
	n, err := s.Reencrypt(ctx)
	if n != 1 || err == nil || !strings.Contains(err.Error(), s.EtcdKey("ns/foreign")) || !strings.Contains(err.Error(), s.EtcdKey("ns/moved")) {
		t.Errorf("Reencrypt = %d, %v; want 1 and an error naming both bad keys", n, err)
	}
	checkSealed(t, s, "ns/plain", "key1")
}

// rawPod is a pod encoded as an unencrypted store writes it.
func rawPod(t *testing.T, s *Store) []byte {
	t.Helper()
	data, err := runtimeEncode(s, pod("ns", "plain", map[string]string{"m": marker}, ""))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
