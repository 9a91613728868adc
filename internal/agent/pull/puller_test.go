package pull

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// fakeImages is an ImageService over a set of present images. A pull
// succeeds unless fail holds an error for the image, and makes it present.
type fakeImages struct {
	mu      sync.Mutex
	present map[string]bool              // guarded by mu
	fail    map[string]error             // guarded by mu
	pulls   []string                     // guarded by mu; "image auth-user" per pull
	block   chan struct{}                // when set, pulls wait for it to close
	started chan struct{}                // when set, gets a value per pull started
	auths   map[string][]*cri.AuthConfig // guarded by mu
}

func newFakeImages(present ...string) *fakeImages {
	f := &fakeImages{present: map[string]bool{}, fail: map[string]error{}, auths: map[string][]*cri.AuthConfig{}}
	for _, img := range present {
		f.present[img] = true
	}
	return f
}

func (f *fakeImages) ImageStatus(_ context.Context, image string) (*cri.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.present[image] {
		return nil, nil
	}
	return &cri.Image{ID: "sha256:" + image, RepoTags: []string{image}, Size: 100}, nil
}

func (f *fakeImages) PullImageWithAuth(_ context.Context, image string, auth *cri.AuthConfig) (string, error) {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	user := "-"
	if auth != nil {
		user = auth.Username
	}
	f.pulls = append(f.pulls, image+" "+user)
	f.auths[image] = append(f.auths[image], auth)
	if err := f.fail[image]; err != nil {
		return "", err
	}
	f.present[image] = true
	return "sha256:" + image, nil
}

func (f *fakeImages) pulled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.pulls...)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func drain(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func podWith(image string, policy v1.PullPolicy) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: image, ImagePullPolicy: policy}}},
	}
}

func newTestPuller(images ImageService) (*Puller, *record.FakeRecorder, *clock) {
	rec := record.NewFakeRecorder(100)
	clk := &clock{t: time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)}
	p := New(images, nil, rec, nil)
	p.now = clk.now
	return p, rec, clk
}

func TestEnsurePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		image      string
		policy     v1.PullPolicy
		present    []string
		fail       bool
		wantRef    string
		wantReason string // of *Error; "" for success
		wantPulls  []string
		wantEvents []string
	}{
		{
			name: "if not present, present", image: "example.com/app:1", policy: v1.PullIfNotPresent, present: []string{"example.com/app:1"},
			wantRef:    "sha256:example.com/app:1",
			wantEvents: []string{`Normal Pulled Container image "example.com/app:1" already present on machine`},
		},
		{
			name: "if not present, absent", image: "example.com/app:1", policy: v1.PullIfNotPresent,
			wantRef: "sha256:example.com/app:1", wantPulls: []string{"example.com/app:1 -"},
			wantEvents: []string{
				`Normal Pulling Pulling image "example.com/app:1"`,
				`Normal Pulled Successfully pulled image "example.com/app:1" in 0s (0s including waiting). Image size: 100 bytes.`,
			},
		},
		{
			name: "always pulls a present image", image: "example.com/app:1", policy: v1.PullAlways, present: []string{"example.com/app:1"},
			wantRef: "sha256:example.com/app:1", wantPulls: []string{"example.com/app:1 -"},
			wantEvents: []string{
				`Normal Pulling Pulling image "example.com/app:1"`,
				`Normal Pulled Successfully pulled image "example.com/app:1" in 0s (0s including waiting). Image size: 100 bytes.`,
			},
		},
		{
			name: "no tag: latest, pulled always", image: "busybox", present: []string{"busybox:latest"},
			wantRef: "sha256:busybox:latest", wantPulls: []string{"busybox:latest -"},
			wantEvents: []string{
				`Normal Pulling Pulling image "busybox:latest"`,
				`Normal Pulled Successfully pulled image "busybox:latest" in 0s (0s including waiting). Image size: 100 bytes.`,
			},
		},
		{
			name: "no policy and a tag: if not present", image: "busybox:1.35", present: []string{"busybox:1.35"},
			wantRef:    "sha256:busybox:1.35",
			wantEvents: []string{`Normal Pulled Container image "busybox:1.35" already present on machine`},
		},
		{
			name: "never, present", image: "busybox:1.35", policy: v1.PullNever, present: []string{"busybox:1.35"},
			wantRef:    "sha256:busybox:1.35",
			wantEvents: []string{`Normal Pulled Container image "busybox:1.35" already present on machine`},
		},
		{
			name: "never, absent", image: "busybox:1.35", policy: v1.PullNever,
			wantReason: ReasonErrImageNeverPull,
			wantEvents: []string{`Warning ErrImageNeverPull Container image "busybox:1.35" is not present with pull policy of Never`},
		},
		{
			name: "invalid name", image: "Example/App:1", policy: v1.PullIfNotPresent,
			wantReason: ReasonInvalidImageName,
			wantEvents: []string{`Warning InspectFailed Failed to apply default image tag "Example/App:1": repository name must be lowercase`},
		},
		{
			name: "pull fails", image: "example.com/app:1", policy: v1.PullIfNotPresent, fail: true,
			wantReason: ReasonErrImagePull, wantPulls: []string{"example.com/app:1 -"},
			wantEvents: []string{
				`Normal Pulling Pulling image "example.com/app:1"`,
				`Warning Failed Failed to pull image "example.com/app:1": no such image`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			images := newFakeImages(tt.present...)
			if tt.fail {
				images.fail[tt.image] = errors.New("no such image")
			}
			p, rec, _ := newTestPuller(images)
			pod := podWith(tt.image, tt.policy)
			ref, err := p.Ensure(context.Background(), pod, &pod.Spec.Containers[0])
			var reason string
			if err != nil {
				var perr *Error
				if !errors.As(err, &perr) {
					t.Fatalf("Ensure: %v; want a *pull.Error", err)
				}
				reason = perr.Reason
			}
			if ref != tt.wantRef || reason != tt.wantReason {
				t.Errorf("Ensure = %q, %v; want %q, reason %q", ref, err, tt.wantRef, tt.wantReason)
			}
			if diff := cmp.Diff(tt.wantPulls, images.pulled()); diff != "" {
				t.Errorf("pulls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEvents, drain(rec)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnsureBackOff(t *testing.T) {
	t.Parallel()
	images := newFakeImages()
	images.fail["example.com/app:1"] = errors.New("unreachable")
	p, rec, clk := newTestPuller(images)
	pod := podWith("example.com/app:1", v1.PullIfNotPresent)
	other := podWith("example.com/app:1", v1.PullIfNotPresent)
	other.UID = "uid-2"

	ensure := func(pod *v1.Pod) string {
		_, err := p.Ensure(context.Background(), pod, &pod.Spec.Containers[0])
		var perr *Error
		if !errors.As(err, &perr) {
			return fmt.Sprintf("err=%v", err)
		}
		return perr.Reason + ": " + perr.Message
	}
	// Each step: advance the clock, call Ensure, say what it returned.
	steps := []struct {
		advance time.Duration
		pod     *v1.Pod
		want    string
	}{
		{0, pod, "ErrImagePull: unreachable"},
		{time.Second, pod, `ImagePullBackOff: Back-off pulling image "example.com/app:1"`},
		{0, other, "ErrImagePull: unreachable"}, // back-off is per pod
		{9 * time.Second, pod, "ErrImagePull: unreachable"},
		{19 * time.Second, pod, `ImagePullBackOff: Back-off pulling image "example.com/app:1"`}, // now 20 s
		{time.Second, pod, "ErrImagePull: unreachable"},
		{39 * time.Second, pod, `ImagePullBackOff: Back-off pulling image "example.com/app:1"`}, // now 40 s
	}
	for i, s := range steps {
		clk.step(s.advance)
		if got := ensure(s.pod); got != s.want {
			t.Fatalf("step %d: %s; want %s", i, got, s.want)
		}
	}
	events := drain(rec)
	if got, want := events[2], `Normal BackOff Back-off pulling image "example.com/app:1"`; got != want {
		t.Errorf("back-off event %q, want %q", got, want)
	}

	// The delay is capped at 5 min, and a success ends the back-off.
	for range 10 {
		clk.step(6 * time.Minute)
		ensure(pod)
	}
	p.mu.Lock()
	delay := p.backOff["uid-1_example.com/app:1"].delay
	p.mu.Unlock()
	if delay != maxBackOff {
		t.Errorf("back-off delay %v, want %v", delay, maxBackOff)
	}
	images.mu.Lock()
	delete(images.fail, "example.com/app:1")
	images.mu.Unlock()
	clk.step(6 * time.Minute)
	if got := ensure(pod); got != "err=<nil>" {
		t.Errorf("after the registry is back: %s", got)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.backOff["uid-1_example.com/app:1"]; ok {
		t.Error("back-off kept after a successful pull")
	}
}

func TestEnsureCoalesces(t *testing.T) {
	t.Parallel()
	images := newFakeImages()
	images.block = make(chan struct{})
	images.started = make(chan struct{}, 10)
	p, _, _ := newTestPuller(images)

	const n = 5
	type result struct {
		ref string
		err error
	}
	results := make(chan result, n)
	for i := range n {
		pod := podWith("example.com/app:1", v1.PullAlways)
		pod.UID = types.UID(fmt.Sprintf("uid-%d", i))
		go func() {
			ref, err := p.Ensure(context.Background(), pod, &pod.Spec.Containers[0])
			results <- result{ref, err}
		}()
	}
	<-images.started
	// A caller that gives up does not stop the pull for the others.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pod := podWith("example.com/app:1", v1.PullAlways)
	if _, err := p.Ensure(ctx, pod, &pod.Spec.Containers[0]); !errors.Is(err, context.Canceled) {
		t.Errorf("Ensure with a cancelled context: %v; want context.Canceled", err)
	}
	// Wait until every caller waits on the one pull.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		inflight, waiters := len(p.inflight), 0
		for _, c := range p.inflight {
			waiters += c.waiters
		}
		p.mu.Unlock()
		if inflight == 1 && waiters == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pulls in flight with %d waiters, want 1 with %d", inflight, waiters, n+1)
		}
		time.Sleep(time.Millisecond)
	}

	close(images.block)
	for range n {
		r := <-results
		if r.err != nil || r.ref != "sha256:example.com/app:1" {
			t.Errorf("Ensure = %q, %v", r.ref, r.err)
		}
	}
	if got := images.pulled(); len(got) != 1 {
		t.Errorf("pulls %v, want one", got)
	}
}

func TestEnsureWithFakeRuntime(t *testing.T) {
	t.Parallel()
	rt := cri.NewFake("busybox:1.35")
	p := New(rt, nil, record.NewFakeRecorder(10), nil)
	pod := podWith("busybox:1.35", "")
	if ref, err := p.Ensure(context.Background(), pod, &pod.Spec.Containers[0]); err != nil || ref != "sha256:busybox:1.35" {
		t.Errorf("present image: %q, %v", ref, err)
	}
	pod = podWith("busybox:1.36", "")
	_, err := p.Ensure(context.Background(), pod, &pod.Spec.Containers[0])
	var perr *Error
	if !errors.As(err, &perr) || perr.Reason != ReasonErrImagePull {
		t.Errorf("absent image: %v; want ErrImagePull", err)
	}
}
