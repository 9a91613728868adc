package staticpods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// DefaultInterval is Config.Interval's default.
const DefaultInterval = 5 * time.Second

// settle is how long a pass waits after a change was noticed, so that a
// file being written and a burst of events make one pass.
const settle = 100 * time.Millisecond

// Config configures Run. Client, NodeName and Dir are required.
type Config struct {
	// Client writes the mirror pods and reads the Node and the node's pods.
	Client kubernetes.Interface
	// NodeName is the node the mirror pods are bound to.
	NodeName string
	// Dir holds the manifests: files *.yaml, *.yml and *.json, one Pod
	// each; dotfiles are ignored.
	Dir string
	// Interval is how often Dir is re-read; 0 means DefaultInterval.
	// Changes inotify reports (Linux) are acted on sooner.
	Interval time.Duration
	// Recorder receives the Warning events on the Node; nil means Run
	// sends them through Client with the source component "kubelet".
	Recorder record.EventRecorder
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
}

// Run keeps the mirror pods of the manifests in cfg.Dir in the API server
// until ctx is done, then returns nil; it returns an error only for an
// unusable Config. Problems with single manifests, a missing namespace or
// Node, or a failing API server are logged (once each) and retried on
// the next pass. Run leaves the mirror pods in place when it returns.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil || cfg.NodeName == "" || cfg.Dir == "" {
		return errors.New("staticpods: Client, NodeName and Dir are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cfg.Client.CoreV1().Events("")})
		defer b.Shutdown()
		cfg.Recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})
	}

	kick := make(chan struct{}, 1)
	trigger := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}

	factory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0,
		cachetrim.Option(),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(mirrorPodEvents(trigger)); err != nil {
		return fmt.Errorf("staticpods: watching pods: %w", err)
	}
	factory.StartWithContext(ctx)
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil // ctx is done
	}

	w := &dirWatcher{dir: cfg.Dir, notify: trigger, log: cfg.Logger}
	defer w.close()

	s := newSyncer(cfg, inf.GetStore())
	ticker := time.NewTicker(cfg.Interval)
	defer ticker.Stop()
	for {
		w.ensure()
		s.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-kick:
			t := time.NewTimer(settle)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			select { // what came in while settling is in this pass
			case <-kick:
			default:
			}
		}
	}
}

// mirrorPodEvents triggers a pass when a mirror pod appears, starts
// terminating, changes its hash or is gone; status updates do not.
func mirrorPodEvents(trigger func()) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok && IsMirrorPod(p) {
				trigger()
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Pod)
			n, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 || !(IsMirrorPod(o) || IsMirrorPod(n)) {
				return
			}
			if (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
				o.Annotations[AnnotationMirror] != n.Annotations[AnnotationMirror] {
				trigger()
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok && IsMirrorPod(p) {
				trigger()
			}
		},
	}
}
