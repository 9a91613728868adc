package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/kubeletclient"
	"github.com/skiff-dev/skiff/internal/metricsapi"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/storage"
)

// kubeletAccess builds what the API server needs to reach node agents: the
// client for pods/log, exec, attach, port-forward and nodes/proxy (with the
// API server's own kubelet-client certificate), and the metrics.k8s.io API
// that reads the agents' summaries. Nodes and pods come from the stores'
// watch caches, never from etcd per request.
func kubeletAccess(certs *pki.Bundle, stores []*registry.Store, log *slog.Logger) (*kubeletclient.Client, http.Handler, error) {
	certPEM, keyPEM, err := certs.ClientCert("kubelet-client", pki.KubeletClientUser, []string{pki.AdminGroup})
	if err != nil {
		return nil, nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	nodes := storeFor(stores, corev1.SchemeGroupVersion.WithResource("nodes"))
	pods := storeFor(stores, corev1.SchemeGroupVersion.WithResource("pods"))
	if nodes == nil || pods == nil {
		return nil, nil, fmt.Errorf("no node or pod store")
	}
	getNode := func(ctx context.Context, name string) (*corev1.Node, error) {
		obj, err := nodes.Get(ctx, "", name)
		if err != nil {
			return nil, err
		}
		n, ok := obj.(*corev1.Node)
		if !ok {
			return nil, fmt.Errorf("node store returned %T", obj)
		}
		return n, nil
	}
	kc := kubeletclient.New(kubeletclient.Config{Nodes: getNode, ClientCert: pair})
	metrics := metricsapi.New(metricsapi.Config{
		Nodes: func(ctx context.Context) ([]*corev1.Node, error) {
			obj, err := nodes.List(ctx, "", storage.ListOptions{ResourceVersion: "0"})
			if err != nil {
				return nil, err
			}
			l, ok := obj.(*corev1.NodeList)
			if !ok {
				return nil, fmt.Errorf("node store listed %T", obj)
			}
			out := make([]*corev1.Node, len(l.Items))
			for i := range l.Items {
				out[i] = &l.Items[i]
			}
			return out, nil
		},
		Pods: func(ctx context.Context, namespace string) ([]*corev1.Pod, error) {
			obj, err := pods.List(ctx, namespace, storage.ListOptions{ResourceVersion: "0"})
			if err != nil {
				return nil, err
			}
			l, ok := obj.(*corev1.PodList)
			if !ok {
				return nil, fmt.Errorf("pod store listed %T", obj)
			}
			out := make([]*corev1.Pod, len(l.Items))
			for i := range l.Items {
				out[i] = &l.Items[i]
			}
			return out, nil
		},
		Fetcher: &metricsapi.KubeletFetcher{Client: &http.Client{Transport: kc.Transport()}, Node: getNode},
		Logger:  log.With("component", "metricsapi"),
	})
	return kc, metrics, nil
}

// storeFor returns the store of gvr, or nil.
func storeFor(stores []*registry.Store, gvr schema.GroupVersionResource) *registry.Store {
	for _, st := range stores {
		if st.Resource.GVR == gvr {
			return st
		}
	}
	return nil
}
