package cri

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// recordingImages is a CRI image service that records the pull requests
// it gets and answers them from refs (image -> ref; missing: NotFound).
type recordingImages struct {
	runtimeapi.UnimplementedImageServiceServer
	refs map[string]string

	mu   sync.Mutex
	auth []*runtimeapi.AuthConfig // guarded by mu
}

func (s *recordingImages) PullImage(_ context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	s.mu.Lock()
	s.auth = append(s.auth, r.GetAuth())
	s.mu.Unlock()
	ref, ok := s.refs[r.GetImage().GetImage()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such image")
	}
	return &runtimeapi.PullImageResponse{ImageRef: ref}, nil
}

func TestClientPullImageWithAuth(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	images := &recordingImages{refs: map[string]string{"example.com/app:1": "sha256:abc"}}
	runtimeapi.RegisterImageServiceServer(srv, images)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	c, err := Dial(Config{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()

	ref, err := c.PullImageWithAuth(ctx, "example.com/app:1", &AuthConfig{Username: "u", Password: "p", ServerAddress: "example.com"})
	if err != nil || ref != "sha256:abc" {
		t.Fatalf("PullImageWithAuth = %q, %v; want sha256:abc", ref, err)
	}
	if _, err := c.PullImageWithAuth(ctx, "example.com/app:1", nil); err != nil {
		t.Fatalf("anonymous pull: %v", err)
	}
	_, err = c.PullImageWithAuth(ctx, "example.com/missing:1", nil)
	if !IsNotFound(err) {
		t.Fatalf("pull of a missing image: %v; want IsNotFound", err)
	}

	images.mu.Lock()
	defer images.mu.Unlock()
	var got []AuthConfig
	for _, a := range images.auth {
		if a == nil {
			got = append(got, AuthConfig{})
			continue
		}
		got = append(got, AuthConfig{Username: a.GetUsername(), Password: a.GetPassword(), Auth: a.GetAuth(),
			ServerAddress: a.GetServerAddress(), IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken()})
	}
	want := []AuthConfig{{Username: "u", Password: "p", ServerAddress: "example.com"}, {}, {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("auth sent (-want +got):\n%s", diff)
	}
}

func TestFakePullImageWithAuth(t *testing.T) {
	t.Parallel()
	f := NewFake("busybox")
	ctx := context.Background()
	ref, err := f.PullImageWithAuth(ctx, "busybox", &AuthConfig{Username: "u"})
	if err != nil || ref != "sha256:busybox" {
		t.Errorf("present image: %q, %v; want sha256:busybox", ref, err)
	}
	if _, err := f.PullImageWithAuth(ctx, "absent", nil); err == nil {
		t.Error("absent image pulled; want an error")
	}
}
