package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// lbStatus keeps status.loadBalancer.ingress of LoadBalancer services
// without a loadBalancerClass equal to the nodes' addresses, as
// bare-metal load balancers do (the nodes answer on those addresses), and
// clears it when a service stops being a LoadBalancer.
//
// Every node's proxy runs one; they all compute the same answer from the
// same Nodes, so they agree rather than fight. Conflicts are retried.
type lbStatus struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	fallback []string // cfg.NodeIPs, when no Node has an InternalIP
	log      *slog.Logger
	queue    workqueue.TypedRateLimitingInterface[string]
}

func newLBStatus(client kubernetes.Interface, services corelisters.ServiceLister, nodes corelisters.NodeLister, fallback []string, log *slog.Logger) *lbStatus {
	return &lbStatus{
		client:   client,
		services: services,
		nodes:    nodes,
		fallback: sortedUnique(append([]string(nil), fallback...)),
		log:      log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "proxy-lb-status"}),
	}
}

func (l *lbStatus) enqueue(key string) { l.queue.Add(key) }

// enqueueAll queues every LoadBalancer service (the nodes changed).
func (l *lbStatus) enqueueAll() {
	svcs, err := l.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			l.queue.Add(svc.Namespace + "/" + svc.Name)
		}
	}
}

// run works the queue until ctx ends; the caches must be synced.
func (l *lbStatus) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		l.queue.ShutDown()
	}()
	for {
		key, quit := l.queue.Get()
		if quit {
			return
		}
		err := l.sync(ctx, key)
		switch {
		case err == nil:
			l.queue.Forget(key)
		case ctx.Err() != nil:
		default:
			l.log.Info("updating load balancer status failed", "service", key, "err", err)
			l.queue.AddRateLimited(key)
		}
		l.queue.Done(key)
	}
}

// sync converges one service's load balancer status.
func (l *lbStatus) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := l.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if svc.Spec.LoadBalancerClass != nil {
		return nil // another implementation owns it
	}
	var want []corev1.LoadBalancerIngress
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		vip := corev1.LoadBalancerIPModeVIP
		for _, ip := range l.ingressIPs() {
			want = append(want, corev1.LoadBalancerIngress{IP: ip, IPMode: &vip})
		}
	} else if len(svc.Status.LoadBalancer.Ingress) == 0 {
		return nil
	}
	if ingressEqual(svc.Status.LoadBalancer.Ingress, want) {
		return nil
	}
	upd := svc.DeepCopy()
	upd.Status.LoadBalancer.Ingress = want
	if _, err := l.client.CoreV1().Services(ns).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of service %s: %w", key, err)
	}
	l.log.Debug("load balancer status updated", "service", key, "ingress", len(want))
	return nil
}

// ingressIPs are the IPv4 InternalIPs of all Nodes, sorted, or the
// configured node IPs when there are none.
func (l *lbStatus) ingressIPs() []string {
	nodes, err := l.nodes.List(labels.Everything())
	var ips []string
	if err == nil {
		for _, n := range nodes {
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP && isIPv4(a.Address) {
					ips = append(ips, a.Address)
				}
			}
		}
	}
	if len(ips) == 0 {
		return l.fallback
	}
	return sortedUnique(ips)
}

func ingressEqual(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		xm, ym := "", ""
		if x.IPMode != nil {
			xm = string(*x.IPMode)
		}
		if y.IPMode != nil {
			ym = string(*y.IPMode)
		}
		return x.IP == y.IP && x.Hostname == y.Hostname && xm == ym && len(x.Ports) == 0 && len(y.Ports) == 0
	})
}
