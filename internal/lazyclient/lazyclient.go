package lazyclient

//go:generate go run gen.go

import (
	"fmt"
	"net/http"
	"sync"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

var _ kubernetes.Interface = (*Clientset)(nil)

// Clientset is a kubernetes.Interface whose group clients are built on
// first use. They share one HTTP client and one rate limiter, as those of
// kubernetes.NewForConfig do.
type Clientset struct {
	cfg       rest.Config
	http      *http.Client
	discovery *discovery.DiscoveryClient
	groups    groups
}

// New returns a Clientset for cfg. Errors in cfg are reported here, not
// on first use: the discovery client is built at once and the config of
// every group client differs from it only in the group version.
func New(cfg *rest.Config) (*Clientset, error) {
	c := &Clientset{cfg: *cfg}
	if c.cfg.UserAgent == "" {
		c.cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	h, err := rest.HTTPClientFor(&c.cfg)
	if err != nil {
		return nil, fmt.Errorf("lazyclient: building the HTTP client: %w", err)
	}
	c.http = h
	if c.cfg.RateLimiter == nil && c.cfg.QPS > 0 {
		if c.cfg.Burst <= 0 {
			return nil, fmt.Errorf("lazyclient: burst must be positive when QPS is set")
		}
		c.cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(c.cfg.QPS, c.cfg.Burst)
	}
	c.discovery, err = discovery.NewDiscoveryClientForConfigAndClient(&c.cfg, h)
	if err != nil {
		return nil, fmt.Errorf("lazyclient: building the discovery client: %w", err)
	}
	core := func(cfg *rest.Config, h *http.Client) (corev1.CoreV1Interface, error) {
		return corev1.NewForConfigAndClient(cfg, h)
	}
	if _, err := c.groups.coreV1.build(&c.cfg, h, core); err != nil {
		return nil, fmt.Errorf("lazyclient: building the core client: %w", err)
	}
	return c, nil
}

// Discovery returns the discovery client.
func (c *Clientset) Discovery() discovery.DiscoveryInterfaces {
	if c == nil {
		return nil
	}
	return c.discovery
}

// lazy is one group client, built once.
type lazy[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (l *lazy[T]) build(cfg *rest.Config, h *http.Client, mk func(*rest.Config, *http.Client) (T, error)) (T, error) {
	l.once.Do(func() {
		c := *cfg // the constructors set defaults on the config they get
		l.v, l.err = mk(&c, h)
	})
	return l.v, l.err
}

// get returns the group client of l, building it on first use. The
// config was checked by New; a group client that still fails to build
// (which client-go does only for a config New would have refused) is a
// programming error.
func get[T any](c *Clientset, l *lazy[T], mk func(*rest.Config, *http.Client) (T, error)) T {
	v, err := l.build(&c.cfg, c.http, mk)
	if err != nil {
		panic(fmt.Sprintf("lazyclient: building a group client from a config that was accepted: %v", err))
	}
	return v
}
