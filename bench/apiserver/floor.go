package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// floorRate measures the ceiling any API server could reach on this
// machine for the create measurement: client-go creates pods (the same
// pods, clients and content type) against a server that does nothing an
// API server must do but store each one. It is a TLS HTTP/2 server in
// this process that reads the body, puts a value of the stored pod's size
// (the body, cut or zero-padded) to the same etcd over gRPC, and answers
// 201 with the body it read: no decoding, defaulting, validation,
// admission, encoding, watch cache or audit. What it lacks next to the
// real server is all server-side work, so the creates/s it reaches bound
// from above what the real server can, against the same put rate.
func floorRate(ctx context.Context, etcd *clientv3.Client, size, clients int, contentType string, d time.Duration) (float64, error) {
	var seq atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "the floor server takes creates only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		value := make([]byte, size)
		copy(value, body)
		if _, err := etcd.Put(r.Context(), fmt.Sprintf("/bench-floor/%d", seq.Add(1)), string(value)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	cfg := &rest.Config{
		Host:            srv.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})},
		QPS:             -1,
		ContentConfig:   rest.ContentConfig{ContentType: contentType, AcceptContentTypes: contentType},
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("building the floor's clientset: %w", err)
	}
	pods := cs.CoreV1().Pods("bench")
	n, took, err := parallel(ctx, clients, d, 0, func(ctx context.Context, g, i int) error {
		_, err := pods.Create(ctx, benchPod(fmt.Sprintf("floor-c%d-%d-%d", clients, g, i)), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("floor creates with %d clients: %w", clients, err)
	}
	return float64(n) / took.Seconds(), nil
}
