package servicealloc

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// Defaults, as kubeadm and upstream's defaults have them.
const (
	DefaultServiceCIDR = "10.96.0.0/12"
	DefaultPortMin     = 30000
	DefaultPortMax     = 32767
)

// Config configures an Allocator.
type Config struct {
	Client *clientv3.Client
	// Prefix is the etcd key prefix of the reservations ("/registry/ranges/").
	Prefix string
	// ServiceCIDR is the range cluster IPs come from (IPv4 or IPv6).
	ServiceCIDR netip.Prefix
	// PortMin and PortMax bound node ports (inclusive); zero means the
	// defaults.
	PortMin, PortMax int
	Logger           *slog.Logger
}

// Allocator reserves cluster IPs and node ports. It is safe for concurrent
// use, also from several servers sharing one etcd.
type Allocator struct {
	client           *clientv3.Client
	ipPrefix         string
	portPrefix       string
	cidr             netip.Prefix
	portMin, portMax int
	log              *slog.Logger
}

var _ registry.Allocator = (*Allocator)(nil)

// New returns an Allocator for cfg.
func New(cfg Config) (*Allocator, error) {
	if !cfg.ServiceCIDR.IsValid() || cfg.ServiceCIDR.Bits() > cfg.ServiceCIDR.Addr().BitLen()-2 {
		return nil, fmt.Errorf("service CIDR %v: must hold at least 4 addresses", cfg.ServiceCIDR)
	}
	if cfg.PortMin == 0 && cfg.PortMax == 0 {
		cfg.PortMin, cfg.PortMax = DefaultPortMin, DefaultPortMax
	}
	if cfg.PortMin < 1 || cfg.PortMax > 65535 || cfg.PortMin > cfg.PortMax {
		return nil, fmt.Errorf("node port range %d-%d: invalid", cfg.PortMin, cfg.PortMax)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Allocator{
		client:     cfg.Client,
		ipPrefix:   cfg.Prefix + "serviceips/",
		portPrefix: cfg.Prefix + "servicenodeports/",
		cidr:       cfg.ServiceCIDR.Masked(),
		portMin:    cfg.PortMin,
		portMax:    cfg.PortMax,
		log:        cfg.Logger,
	}, nil
}

// KubernetesServiceIP is the first address of the range, which upstream
// gives the "kubernetes" Service in "default" and never hands out otherwise.
func (a *Allocator) KubernetesServiceIP() netip.Addr { return a.cidr.Addr().Next() }

// claims is what one Service holds.
type claims struct {
	ips   []string
	ports []int
}

func claimsOf(svc *corev1.Service) claims {
	var c claims
	if svc == nil {
		return c
	}
	for _, ip := range svc.Spec.ClusterIPs {
		if ip != "" && ip != corev1.ClusterIPNone {
			c.ips = append(c.ips, ip)
		}
	}
	if len(c.ips) == 0 && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		c.ips = append(c.ips, svc.Spec.ClusterIP)
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			c.ports = append(c.ports, int(p.NodePort))
		}
	}
	return c
}

func holder(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

// Allocate implements registry.Allocator for Services.
func (a *Allocator) Allocate(ctx context.Context, obj, old runtime.Object, dryRun bool) (func(), error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, fmt.Errorf("servicealloc: unexpected type %T", obj)
	}
	var oldSvc *corev1.Service
	if old != nil {
		if oldSvc, ok = old.(*corev1.Service); !ok {
			return nil, fmt.Errorf("servicealloc: unexpected type %T", old)
		}
	}
	had := claimsOf(oldSvc)
	owner := holder(svc)
	var (
		reserved []string // keys this call reserved
		errs     field.ErrorList
	)
	undo := func() {
		for _, k := range reserved {
			a.release(context.WithoutCancel(ctx), k, owner)
		}
	}
	reserve := func(key string) (bool, error) {
		if dryRun {
			taken, err := a.takenByOther(ctx, key, owner)
			return !taken, err
		}
		got, fresh, err := a.reserve(ctx, key, owner)
		if fresh {
			// Only what this call took is undone: a value the same
			// holder already had (a retried write) stays.
			reserved = append(reserved, key)
		}
		return got, err
	}

	// Cluster IP.
	if svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		fld := field.NewPath("spec", "clusterIPs").Index(0)
		switch ip := svc.Spec.ClusterIP; {
		case ip == "":
			picked, err := a.pickIP(ctx, owner, reserve)
			if err != nil {
				undo()
				return nil, err
			}
			svc.Spec.ClusterIP = picked
			svc.Spec.ClusterIPs = []string{picked}
		case contains(had.ips, ip):
			// Held already.
		default:
			addr, err := netip.ParseAddr(ip)
			switch {
			case err != nil:
				// Validation reports malformed addresses.
			case !a.cidr.Contains(addr) || addr == a.cidr.Addr() || isBroadcast(a.cidr, addr):
				errs = append(errs, field.Invalid(fld, ip, fmt.Sprintf("provided IP is not in the valid range. The range of valid IPs is %s", a.cidr)))
			default:
				got, err := reserve(a.ipPrefix + addr.String())
				if err != nil {
					undo()
					return nil, err
				}
				if !got {
					errs = append(errs, field.Invalid(fld, ip, "provided IP is already allocated"))
				}
			}
		}
	}

	// Node ports.
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		used := map[int]bool{}
		for _, p := range svc.Spec.Ports {
			used[int(p.NodePort)] = true
		}
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			fld := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			switch np := int(p.NodePort); {
			case np == 0:
				picked, err := a.pickPort(ctx, used, reserve)
				if err != nil {
					undo()
					return nil, err
				}
				p.NodePort = int32(picked)
				used[picked] = true
			case contains(had.ports, np):
			case np < a.portMin || np > a.portMax:
				errs = append(errs, field.Invalid(fld, np, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", a.portMin, a.portMax)))
			default:
				got, err := reserve(a.portPrefix + strconv.Itoa(np))
				if err != nil {
					undo()
					return nil, err
				}
				if !got && !sharedWithinService(svc, i) {
					errs = append(errs, field.Invalid(fld, np, "provided port is already allocated"))
				}
			}
		}
	}
	if len(errs) > 0 {
		undo()
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name, errs)
	}
	return undo, nil
}

// sharedWithinService reports whether port i's node port is also used by an
// earlier port of the same Service (TCP and UDP on one number), which the
// first of them reserved.
func sharedWithinService(svc *corev1.Service, i int) bool {
	for j := 0; j < i; j++ {
		if svc.Spec.Ports[j].NodePort == svc.Spec.Ports[i].NodePort {
			return true
		}
	}
	return false
}

// Release implements registry.Allocator.
func (a *Allocator) Release(ctx context.Context, old, obj runtime.Object) {
	oldSvc, ok := old.(*corev1.Service)
	if !ok {
		return
	}
	var now claims
	if svc, ok := obj.(*corev1.Service); ok {
		now = claimsOf(svc)
	}
	owner := holder(oldSvc)
	had := claimsOf(oldSvc)
	for _, ip := range had.ips {
		if !contains(now.ips, ip) {
			a.release(ctx, a.ipPrefix+ip, owner)
		}
	}
	for _, p := range had.ports {
		if !contains(now.ports, p) {
			a.release(ctx, a.portPrefix+strconv.Itoa(p), owner)
		}
	}
}

// reserve takes key for owner; got is false when another holder has it,
// and fresh is true when this call took it (not when owner already held it).
func (a *Allocator) reserve(ctx context.Context, key, owner string) (got, fresh bool, err error) {
	resp, err := a.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, owner)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return false, false, apierrors.NewInternalError(fmt.Errorf("reserving %s: %w", key, err))
	}
	if resp.Succeeded {
		return true, true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	return len(kvs) == 1 && string(kvs[0].Value) == owner, false, nil
}

func (a *Allocator) takenByOther(ctx context.Context, key, owner string) (bool, error) {
	resp, err := a.client.Get(ctx, key)
	if err != nil {
		return false, apierrors.NewInternalError(fmt.Errorf("reading %s: %w", key, err))
	}
	return len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) != owner, nil
}

// release drops owner's reservation of key (never someone else's).
func (a *Allocator) release(ctx context.Context, key, owner string) {
	_, err := a.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(key), "=", owner)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		a.log.Info("releasing a reservation failed; repair will drop it", "key", key, "err", err)
	}
}

// maxRandomTries is how many random candidates are tried before a scan of
// what is taken.
const maxRandomTries = 16

func (a *Allocator) pickIP(ctx context.Context, owner string, reserve func(string) (bool, error)) (string, error) {
	size := a.rangeSize()
	for range maxRandomTries {
		addr := a.nth(2 + rand.Int64N(size-3)) // skip network, .1 (kubernetes) and broadcast
		got, err := reserve(a.ipPrefix + addr.String())
		if err != nil {
			return "", err
		}
		if got {
			return addr.String(), nil
		}
	}
	taken, err := a.taken(ctx, a.ipPrefix)
	if err != nil {
		return "", err
	}
	for i := int64(2); i < size-1; i++ {
		addr := a.nth(i).String()
		if taken[addr] {
			continue
		}
		got, err := reserve(a.ipPrefix + addr)
		if err != nil {
			return "", err
		}
		if got {
			return addr, nil
		}
	}
	return "", apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range %s is full", a.cidr))
}

func (a *Allocator) pickPort(ctx context.Context, used map[int]bool, reserve func(string) (bool, error)) (int, error) {
	n := a.portMax - a.portMin + 1
	for range maxRandomTries {
		p := a.portMin + rand.IntN(n)
		if used[p] {
			continue
		}
		got, err := reserve(a.portPrefix + strconv.Itoa(p))
		if err != nil {
			return 0, err
		}
		if got {
			return p, nil
		}
	}
	taken, err := a.taken(ctx, a.portPrefix)
	if err != nil {
		return 0, err
	}
	for p := a.portMin; p <= a.portMax; p++ {
		if used[p] || taken[strconv.Itoa(p)] {
			continue
		}
		got, err := reserve(a.portPrefix + strconv.Itoa(p))
		if err != nil {
			return 0, err
		}
		if got {
			return p, nil
		}
	}
	return 0, apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range %d-%d is full", a.portMin, a.portMax))
}

// taken lists the reserved values under prefix.
func (a *Allocator) taken(ctx context.Context, prefix string) (map[string]bool, error) {
	resp, err := a.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing %s: %w", prefix, err))
	}
	out := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), prefix)] = true
	}
	return out, nil
}

// rangeSize is the number of addresses in the CIDR (capped to fit int64).
func (a *Allocator) rangeSize() int64 {
	host := a.cidr.Addr().BitLen() - a.cidr.Bits()
	if host > 62 {
		host = 62
	}
	return int64(1) << host
}

// nth is the CIDR's i-th address.
func (a *Allocator) nth(i int64) netip.Addr {
	b := a.cidr.Addr().AsSlice()
	carry := uint64(i)
	for k := len(b) - 1; k >= 0 && carry > 0; k-- {
		sum := uint64(b[k]) + (carry & 0xff)
		b[k] = byte(sum)
		carry = (carry >> 8) + (sum >> 8)
	}
	addr, _ := netip.AddrFromSlice(b)
	return addr
}

func isBroadcast(p netip.Prefix, a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	mask := uint32(1)<<(32-p.Bits()) - 1
	return v&mask == mask
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
