package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/skiff-dev/skiff/internal/apiserver"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
	"github.com/skiff-dev/skiff/internal/registry"
)

// newIssuer loads (or creates) the service account signing key pair in
// DIR/pki (sa.key, sa.pub).
func newIssuer(dir string) (*tokens.Issuer, error) {
	iss, err := tokens.NewIssuer(filepath.Join(dir, "pki"), "", nil)
	if err != nil {
		return nil, fmt.Errorf("service account token issuer: %w", err)
	}
	return iss, nil
}

// storeLookups reads service accounts and the objects tokens are bound
// to from the stores.
func storeLookups(stores []*registry.Store) tokens.Lookups {
	return tokens.Lookups{
		ServiceAccounts: saLister{storeGetter[*corev1.ServiceAccount]{storeFor(stores, corev1.SchemeGroupVersion.WithResource("serviceaccounts")), ""}},
		Pods:            podLister{storeGetter[*corev1.Pod]{storeFor(stores, corev1.SchemeGroupVersion.WithResource("pods")), ""}},
		Secrets:         secretLister{storeGetter[*corev1.Secret]{storeFor(stores, corev1.SchemeGroupVersion.WithResource("secrets")), ""}},
		Nodes:           nodeLister{storeGetter[*corev1.Node]{storeFor(stores, corev1.SchemeGroupVersion.WithResource("nodes")), ""}},
	}
}

// tokenRequester issues service account tokens for serviceaccounts/token
// with iss, looking up service accounts and the objects a token is bound
// to in the stores.
func tokenRequester(iss *tokens.Issuer, stores []*registry.Store) apiserver.TokenRequester {
	l := storeLookups(stores)
	sas := storeFor(stores, corev1.SchemeGroupVersion.WithResource("serviceaccounts"))
	return func(ctx context.Context, namespace, name string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
		sa, err := (storeGetter[*corev1.ServiceAccount]{sas, namespace}).Get(name)
		if err != nil {
			return nil, err
		}
		return iss.TokenRequest(ctx, sa, req, l)
	}
}

// errNoList: the token issuer only gets objects by name.
var errNoList = errors.New("listing is not supported here")

// storeGetter reads one kind of object from its store by name, as the
// client-go listers the token code takes do from a cache.
type storeGetter[T any] struct {
	st *registry.Store
	ns string
}

func (g storeGetter[T]) Get(name string) (T, error) {
	var zero T
	if g.st == nil {
		return zero, errors.New("no store")
	}
	obj, err := g.st.Get(context.Background(), g.ns, name)
	if err != nil {
		return zero, err
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("store returned %T", obj)
	}
	return t, nil
}

func (g storeGetter[T]) in(ns string) storeGetter[T] { return storeGetter[T]{g.st, ns} }

type saLister struct {
	storeGetter[*corev1.ServiceAccount]
}

func (l saLister) List(labels.Selector) ([]*corev1.ServiceAccount, error) { return nil, errNoList }
func (l saLister) ServiceAccounts(ns string) corelisters.ServiceAccountNamespaceLister {
	return saLister{l.in(ns)}
}

type podLister struct{ storeGetter[*corev1.Pod] }

func (l podLister) List(labels.Selector) ([]*corev1.Pod, error)   { return nil, errNoList }
func (l podLister) Pods(ns string) corelisters.PodNamespaceLister { return podLister{l.in(ns)} }

type secretLister struct{ storeGetter[*corev1.Secret] }

func (l secretLister) List(labels.Selector) ([]*corev1.Secret, error) { return nil, errNoList }
func (l secretLister) Secrets(ns string) corelisters.SecretNamespaceLister {
	return secretLister{l.in(ns)}
}

type nodeLister struct{ storeGetter[*corev1.Node] }

func (l nodeLister) List(labels.Selector) ([]*corev1.Node, error) { return nil, errNoList }
