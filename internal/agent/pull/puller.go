package pull

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Reasons of Error, as the container's waiting reason shows them.
const (
	ReasonErrImagePull      = "ErrImagePull"
	ReasonImagePullBackOff  = "ImagePullBackOff"
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	ReasonInvalidImageName  = "InvalidImageName"
	// ReasonImageInspectError: the runtime could not say whether the
	// image is present.
	ReasonImageInspectError = "ImageInspectError"
)

// Back-off between failed pulls of an image for a pod: 10 s, doubling to
// 5 min; forgotten after twice the maximum without a failure.
const (
	initialBackOff = 10 * time.Second
	maxBackOff     = 5 * time.Minute
)

// ImageService is what the Puller needs of the runtime. cri.Client and
// cri.Fake implement it.
type ImageService interface {
	ImageStatus(ctx context.Context, image string) (*cri.Image, error)
	PullImageWithAuth(ctx context.Context, image string, auth *cri.AuthConfig) (string, error)
}

var (
	_ ImageService = (*cri.Client)(nil)
	_ ImageService = (*cri.Fake)(nil)
)

// Puller makes the images of containers present, as the pod sync calls
// Ensure before creating a container. Safe for concurrent use.
type Puller struct {
	images   ImageService
	client   kubernetes.Interface
	recorder record.EventRecorder
	logger   *slog.Logger
	// now is the clock; tests replace it.
	now func() time.Time

	mu       sync.Mutex
	backOff  map[string]*backOffEntry // guarded by mu; key: pod UID + image
	inflight map[string]*pullCall     // guarded by mu; key: image + credentials
	lastGC   time.Time                // guarded by mu
}

type backOffEntry struct {
	delay time.Duration
	last  time.Time
}

// pullCall is one pull that concurrent Ensure calls share.
type pullCall struct {
	waiters int           // guarded by Puller.mu; callers that joined
	done    chan struct{} // closed when the fields below are set
	ref     string
	err     error
	took    time.Duration
}

// New returns a Puller pulling through images, reading pull secrets with
// client and recording events with recorder.
func New(images ImageService, client kubernetes.Interface, recorder record.EventRecorder, logger *slog.Logger) *Puller {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Puller{
		images:   images,
		client:   client,
		recorder: recorder,
		logger:   logger,
		now:      time.Now,
		backOff:  map[string]*backOffEntry{},
		inflight: map[string]*pullCall{},
	}
}

// Ensure makes the image of container c of pod present according to its
// imagePullPolicy (empty: Always for ":latest" or no tag, else
// IfNotPresent) and returns the image reference (ID) the runtime knows it
// by. It pulls with the credentials of pod.spec.imagePullSecrets that
// match the image's registry (the most specific first, then anonymously
// when none match), records the upstream events (Pulling, Pulled, Failed,
// BackOff, ErrImageNeverPull, InspectFailed) on the pod, and after a
// failed pull refuses to pull that image for that pod again during a
// back-off (10 s doubling to 5 min).
//
// Errors that pod status shows are *Error with Reason ErrImagePull,
// ImagePullBackOff, ErrImageNeverPull, InvalidImageName or
// ImageInspectError. Concurrent pulls of one image with the same
// credentials are one pull; a caller whose ctx ends stops waiting (with
// ctx's error) while the pull goes on for the others.
func (p *Puller) Ensure(ctx context.Context, pod *v1.Pod, c *v1.Container) (string, error) {
	ref := containerRef(pod, c)
	image, parsed, err := withDefaultTag(c.Image)
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err)
		p.recorder.Event(ref, v1.EventTypeWarning, "InspectFailed", msg)
		return "", &Error{Reason: ReasonInvalidImageName, Message: msg}
	}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = v1.PullIfNotPresent
		if parsed.Digest == "" && parsed.Tag == "latest" {
			policy = v1.PullAlways
		}
	}

	img, err := p.images.ImageStatus(ctx, image)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		msg := fmt.Sprintf("Failed to inspect image %q: %v", image, err)
		p.recorder.Event(ref, v1.EventTypeWarning, "InspectFailed", msg)
		return "", &Error{Reason: ReasonImageInspectError, Message: msg}
	}
	present := img != nil
	switch {
	case policy == v1.PullNever && !present:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", image)
		p.recorder.Event(ref, v1.EventTypeWarning, ReasonErrImageNeverPull, msg)
		return "", &Error{Reason: ReasonErrImageNeverPull, Message: msg}
	case present && policy != v1.PullAlways:
		p.recorder.Eventf(ref, v1.EventTypeNormal, "Pulled", "Container image %q already present on machine", image)
		return img.ID, nil
	}

	key := string(pod.UID) + "_" + image
	if p.inBackOff(key) {
		msg := fmt.Sprintf("Back-off pulling image %q", image)
		p.recorder.Event(ref, v1.EventTypeNormal, "BackOff", msg)
		return "", &Error{Reason: ReasonImagePullBackOff, Message: msg}
	}

	start := p.now()
	p.recorder.Eventf(ref, v1.EventTypeNormal, "Pulling", "Pulling image %q", image)
	creds := p.credentials(ctx, pod, ref).lookup(parsed)
	call := p.startPull(ctx, image, creds)
	select {
	case <-call.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if call.err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		p.recorder.Eventf(ref, v1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", image, call.err)
		p.failed(key)
		return "", &Error{Reason: ReasonErrImagePull, Message: call.err.Error()}
	}
	p.succeeded(key)
	var size uint64
	if img, err := p.images.ImageStatus(ctx, image); err == nil && img != nil {
		size = img.Size
	}
	p.recorder.Eventf(ref, v1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v (%v including waiting). Image size: %d bytes.",
		image, call.took.Truncate(time.Millisecond), p.now().Sub(start).Truncate(time.Millisecond), size)
	return call.ref, nil
}

// containerRef is the object events about container c of pod are on.
func containerRef(pod *v1.Pod, c *v1.Container) *v1.ObjectReference {
	field := fmt.Sprintf("spec.containers{%s}", c.Name)
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			field = fmt.Sprintf("spec.initContainers{%s}", c.Name)
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == c.Name {
			field = fmt.Sprintf("spec.ephemeralContainers{%s}", c.Name)
		}
	}
	return &v1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
		UID: pod.UID, ResourceVersion: pod.ResourceVersion, FieldPath: field}
}

// credentials reads pod's image pull secrets into a keyring. Secrets that
// cannot be read or decoded are left out with a warning event: the pull
// may still succeed without them.
func (p *Puller) credentials(ctx context.Context, pod *v1.Pod, ref *v1.ObjectReference) keyring {
	var k keyring
	var missing []string
	for _, s := range pod.Spec.ImagePullSecrets {
		if s.Name == "" {
			continue
		}
		secret, err := p.client.CoreV1().Secrets(pod.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err == nil {
			err = k.addSecret(secret)
		}
		if err != nil {
			if !apierrors.IsNotFound(err) {
				p.logger.Info("reading image pull secret failed", "pod", pod.Namespace+"/"+pod.Name, "secret", s.Name, "err", err)
			}
			missing = append(missing, fmt.Sprintf("%s/%s", pod.Namespace, s.Name))
		}
	}
	if len(missing) > 0 {
		p.recorder.Eventf(&v1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			v1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", "))
	}
	return k
}

// startPull returns the pull of image with creds under way, starting it
// if there is none. The pull does not end with ctx: others may wait on it.
func (p *Puller) startPull(ctx context.Context, image string, creds []cri.AuthConfig) *pullCall {
	var b strings.Builder
	b.WriteString(image)
	for _, c := range creds {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%s\x00%s", c.Username, c.Password, c.IdentityToken, c.RegistryToken)
	}
	key := b.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if call, ok := p.inflight[key]; ok {
		call.waiters++
		return call
	}
	call := &pullCall{waiters: 1, done: make(chan struct{})}
	p.inflight[key] = call
	pullCtx := context.WithoutCancel(ctx)
	go func() {
		start := p.now()
		call.ref, call.err = p.pull(pullCtx, image, creds)
		call.took = p.now().Sub(start)
		p.mu.Lock()
		delete(p.inflight, key)
		p.mu.Unlock()
		close(call.done)
	}()
	return call
}

// pull tries each of creds in turn, or pulls anonymously without any.
func (p *Puller) pull(ctx context.Context, image string, creds []cri.AuthConfig) (string, error) {
	if len(creds) == 0 {
		return p.images.PullImageWithAuth(ctx, image, nil)
	}
	var errs []error
	for i := range creds {
		ref, err := p.images.PullImageWithAuth(ctx, image, &creds[i])
		if err == nil {
			return ref, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return "", errs[0]
	}
	return "", errors.Join(errs...)
}

func (p *Puller) inBackOff(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.backOff[key]
	return e != nil && p.now().Sub(e.last) < e.delay
}

// failed starts or lengthens the back-off of key.
func (p *Puller) failed(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	e := p.backOff[key]
	switch {
	case e == nil || now.Sub(e.last) > 2*maxBackOff:
		e = &backOffEntry{delay: initialBackOff}
		p.backOff[key] = e
	default:
		e.delay = min(2*e.delay, maxBackOff)
	}
	e.last = now
	if now.Sub(p.lastGC) > time.Minute {
		p.lastGC = now
		for k, e := range p.backOff {
			if now.Sub(e.last) > 2*maxBackOff {
				delete(p.backOff, k)
			}
		}
	}
}

func (p *Puller) succeeded(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.backOff, key)
}
