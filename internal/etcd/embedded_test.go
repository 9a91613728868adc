package etcd

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEmbeddedDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	cfg := EmbeddedConfig{DataDir: dir, UnsafeNoFsync: true, Logger: slog.New(slog.DiscardHandler)}

	e, err := StartEmbedded(ctx, cfg)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	if _, err := e.Client().Put(ctx, "/k", "v1"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	e, err = StartEmbedded(ctx, cfg)
	if err != nil {
		t.Fatalf("StartEmbedded again: %v", err)
	}
	defer e.Close()
	resp, err := e.Client().Get(ctx, "/k")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var got []string
	for _, kv := range resp.Kvs {
		got = append(got, string(kv.Value))
	}
	if diff := cmp.Diff([]string{"v1"}, got); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}

	// An external-style client reaches it through NewClient.
	c, err := NewClient(ctx, e.Endpoints(), nil)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	c.Close()
}

func TestNewClientUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c, err := NewClient(ctx, []string{"http://127.0.0.1:1"}, nil); err == nil {
		c.Close()
		t.Fatal("NewClient to a closed port succeeded")
	}
}

func TestLoopbackURL(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"default", "", true},
		{"fixed", "http://127.0.0.1:2379", true},
		{"public", "http://0.0.0.0:2379", false},
		{"noport", "http://127.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loopbackURL(tc.in)
			if (err == nil) != tc.ok {
				t.Errorf("loopbackURL(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}
