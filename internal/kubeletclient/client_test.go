package kubeletclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// nodes returns a lookup over a fixed set of nodes.
func nodes(ns ...*corev1.Node) func(context.Context, string) (*corev1.Node, error) {
	return func(_ context.Context, name string) (*corev1.Node, error) {
		for _, n := range ns {
			if n.Name == name {
				return n, nil
			}
		}
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
	}
}

func node(name string, port int32, addrs ...corev1.NodeAddress) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.Addresses = addrs
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	return n
}

func TestURL(t *testing.T) {
	t.Parallel()
	c := New(Config{Nodes: nodes(
		node("internal", 10250,
			corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.1"},
			corev1.NodeAddress{Type: corev1.NodeHostName, Address: "host-a"},
			corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}),
		node("hostname", 0, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "host-b"},
			corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.2"}),
		node("external", 12345, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.3"}),
		node("ipv6", 10250, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::1"}),
		node("none", 10250),
	)})
	tests := []struct {
		name, node string
		want       string
		wantErr    func(error) bool
	}{
		{name: "internal IP preferred", node: "internal", want: "https://10.0.0.1:10250/containerLogs/ns/p/c?follow=true"},
		{name: "hostname next, default port", node: "hostname", want: "https://host-b:10250/containerLogs/ns/p/c?follow=true"},
		{name: "external last", node: "external", want: "https://203.0.113.3:12345/containerLogs/ns/p/c?follow=true"},
		{name: "ipv6", node: "ipv6", want: "https://[fd00::1]:10250/containerLogs/ns/p/c?follow=true"},
		{name: "no address", node: "none", wantErr: func(err error) bool { return errors.Is(err, ErrNoAddress) }},
		{name: "unknown node", node: "zz", wantErr: apierrors.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := c.URL(context.Background(), tc.node, "/containerLogs/ns/p/c", url.Values{"follow": {"true"}})
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("URL error = %v, want a matching error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, u.String()); diff != "" {
				t.Errorf("URL (-want +got):\n%s", diff)
			}
		})
	}
}

// kubeletAt serves h over TLS and returns a client whose node "n" points
// at it.
func kubeletAt(t *testing.T, h http.Handler) *Client {
	t.Helper()
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	host, port, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return New(Config{Nodes: nodes(node("n", int32(p), corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: host})), DialTimeout: 5 * time.Second})
}

func TestGet(t *testing.T) {
	t.Parallel()
	c := kubeletAt(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI())
	}))
	resp, err := c.Get(context.Background(), "n", "/stats/summary", url.Values{"only_cpu_and_memory": {"true"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if diff := cmp.Diff("GET /stats/summary?only_cpu_and_memory=true", string(b)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestUpgrade(t *testing.T) {
	t.Parallel()
	c := kubeletAt(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "test/1" {
			http.Error(w, "upgrade required", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// The greeting rides in the same write as the response head.
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test/1\r\nConnection: Upgrade\r\n\r\nhello ")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = io.WriteString(conn, "echo "+line)
	}))
	ctx := context.Background()
	u, err := c.URL(ctx, "n", "/exec/ns/p/c", nil)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("refused", func(t *testing.T) {
		conn, resp, err := c.Upgrade(ctx, http.MethodPost, u, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"other"}})
		if err != nil {
			t.Fatal(err)
		}
		if conn != nil {
			t.Fatal("got a connection for a refused upgrade")
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || string(b) != "upgrade required\n" {
			t.Errorf("response = %d %q, want 400 \"upgrade required\\n\"", resp.StatusCode, b)
		}
	})
	t.Run("switched", func(t *testing.T) {
		conn, resp, err := c.Upgrade(ctx, http.MethodPost, u, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"test/1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status = %d, want 101", resp.StatusCode)
		}
		if _, err := io.WriteString(conn, "ping\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff("hello echo ping\n", string(b)); diff != "" {
			t.Errorf("upgraded stream (-want +got):\n%s", diff)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, _, err = c.Upgrade(ctx, http.MethodPost, &url.URL{Scheme: "https", Host: addr, Path: "/"}, http.Header{})
		if err == nil {
			t.Fatal("Upgrade to a closed port succeeded")
		}
	})
}
