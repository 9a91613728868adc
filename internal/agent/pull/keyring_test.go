package pull

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/testserver"
)

func TestParseReference(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in      string
		want    reference
		wantErr bool
	}{
		{in: "busybox", want: reference{Domain: "docker.io", Path: "library/busybox"}},
		{in: "busybox:1.35", want: reference{Domain: "docker.io", Path: "library/busybox", Tag: "1.35"}},
		{in: "skiff-test/pause:3.10", want: reference{Domain: "docker.io", Path: "skiff-test/pause", Tag: "3.10"}},
		{in: "docker.io/library/busybox:1", want: reference{Domain: "docker.io", Path: "library/busybox", Tag: "1"}},
		{in: "index.docker.io/team/app", want: reference{Domain: "docker.io", Path: "team/app"}},
		{in: "localhost/app:1", want: reference{Domain: "localhost", Path: "app", Tag: "1"}},
		{in: "registry.example.com:5000/team/app:v1.2", want: reference{Domain: "registry.example.com:5000", Path: "team/app", Tag: "v1.2"}},
		{in: "registry.example.com:5000/app@" + digest, want: reference{Domain: "registry.example.com:5000", Path: "app", Digest: digest}},
		{in: "app:1@" + digest, want: reference{Domain: "docker.io", Path: "library/app", Tag: "1", Digest: digest}},
		{in: "", wantErr: true},
		{in: "Busybox", wantErr: true},
		{in: "busybox:bad/tag", wantErr: true},
		{in: "busybox@sha256:short", wantErr: true},
		{in: "a//b", wantErr: true},
		{in: "busybox:", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseReference(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseReference(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("parseReference(%q) (-want +got):\n%s", tt.in, diff)
				}
			}
		})
	}
}

func dockerConfigJSON(name, json string) *v1.Secret {
	return &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Type: v1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{v1.DockerConfigJsonKey: []byte(json)}}
}

func dockercfg(name, json string) *v1.Secret {
	return &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Type: v1.SecretTypeDockercfg,
		Data: map[string][]byte{v1.DockerConfigKey: []byte(json)}}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestKeyring(t *testing.T) {
	t.Parallel()
	secrets := []*v1.Secret{
		dockerConfigJSON("hub", `{"auths":{"https://index.docker.io/v1/":{"auth":"`+b64("hubuser:hubpass")+`"}}}`),
		dockerConfigJSON("corp", `{"auths":{
			"registry.example.com:5000":{"username":"corp","password":"pw"},
			"registry.example.com:5000/team":{"username":"team","password":"pw2"},
			"*.mirror.example.com":{"identitytoken":"tok"}}}`),
		dockercfg("legacy", `{"http://legacy.example.com/":{"auth":"`+b64("old:secret")+`","email":"a@b"}}`),
		{ObjectMeta: metav1.ObjectMeta{Name: "opaque"}, Type: v1.SecretTypeOpaque, Data: map[string][]byte{"x": []byte("y")}},
	}
	var k keyring
	for _, s := range secrets {
		if err := k.addSecret(s); err != nil {
			t.Fatalf("addSecret(%s): %v", s.Name, err)
		}
	}
	tests := []struct {
		image string
		want  []cri.AuthConfig
	}{
		{"busybox:1.35", []cri.AuthConfig{{Username: "hubuser", Password: "hubpass"}}},
		{"docker.io/team/app:1", []cri.AuthConfig{{Username: "hubuser", Password: "hubpass"}}},
		{"registry.example.com:5000/other/app:1", []cri.AuthConfig{{Username: "corp", Password: "pw"}}},
		{"registry.example.com:5000/team/app:1", []cri.AuthConfig{{Username: "team", Password: "pw2"}, {Username: "corp", Password: "pw"}}},
		{"registry.example.com:5000/teamx/app:1", []cri.AuthConfig{{Username: "corp", Password: "pw"}}},
		{"registry.example.com/app:1", nil}, // another port
		{"eu.mirror.example.com/app:1", []cri.AuthConfig{{IdentityToken: "tok"}}},
		{"a.eu.mirror.example.com/app:1", nil}, // a glob matches one label
		{"legacy.example.com/app:1", []cri.AuthConfig{{Username: "old", Password: "secret"}}},
		{"quay.io/app:1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			t.Parallel()
			ref, err := parseReference(tt.image)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, k.lookup(ref)); diff != "" {
				t.Errorf("lookup(%s) (-want +got):\n%s", tt.image, diff)
			}
		})
	}

	var bad keyring
	if err := bad.addSecret(dockerConfigJSON("bad", `{"auths":{"x.io":{"auth":"not base64!"}}}`)); err == nil {
		t.Error("addSecret with a bad auth: no error")
	}
}

// TestEnsureWithPullSecrets reads pull secrets from a real API server.
func TestEnsureWithPullSecrets(t *testing.T) {
	t.Parallel()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	for _, s := range []*v1.Secret{
		dockerConfigJSON("wrong", `{"auths":{"registry.example.com":{"username":"wrong","password":"x"}}}`),
		dockerConfigJSON("right", `{"auths":{"registry.example.com/team":{"username":"right","password":"y"}}}`),
	} {
		s.Namespace = "default"
		if _, err := client.CoreV1().Secrets("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	images := &authImages{fakeImages: newFakeImages(), accept: "right"}
	rec := record.NewFakeRecorder(100)
	p := New(images, client, rec, nil)
	pod := podWith("registry.example.com/team/app:1", v1.PullIfNotPresent)
	pod.Namespace = "default"
	pod.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "wrong"}, {Name: "missing"}, {Name: "right"}}

	ref, err := p.Ensure(ctx, pod, &pod.Spec.Containers[0])
	if err != nil || ref != "sha256:registry.example.com/team/app:1" {
		t.Fatalf("Ensure = %q, %v", ref, err)
	}
	// The more specific credentials are tried first.
	if diff := cmp.Diff([]string{"registry.example.com/team/app:1 right"}, images.pulled()); diff != "" {
		t.Errorf("pulls (-want +got):\n%s", diff)
	}
	events := drain(rec)
	want := `Warning FailedToRetrieveImagePullSecret Unable to retrieve some image pull secrets (default/missing); attempting to pull the image may not succeed.`
	if len(events) < 2 || events[1] != want {
		t.Errorf("events %q; want the second %q", events, want)
	}

	// With only the wrong credentials the pull fails with the
	// registry's error.
	pod2 := pod.DeepCopy()
	pod2.UID = "uid-2"
	pod2.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: "wrong"}}
	pod2.Spec.Containers[0].Image = "registry.example.com/team/other:1"
	_, err = p.Ensure(ctx, pod2, &pod2.Spec.Containers[0])
	var perr *Error
	if !errors.As(err, &perr) || perr.Reason != ReasonErrImagePull || perr.Message != "unauthorized" {
		t.Errorf("Ensure with wrong credentials: %v; want ErrImagePull: unauthorized", err)
	}
}

// authImages accepts pulls only with the username accept.
type authImages struct {
	*fakeImages
	accept string
}

func (a *authImages) PullImageWithAuth(ctx context.Context, image string, auth *cri.AuthConfig) (string, error) {
	if auth == nil || auth.Username != a.accept {
		return "", errors.New("unauthorized")
	}
	return a.fakeImages.PullImageWithAuth(ctx, image, auth)
}
