package apiserver

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/auth"
)

// inProcessConfig is a client configuration that reaches e's server
// in-process with a certificate for cn in orgs.
func inProcessConfig(t *testing.T, e *testEnv, cn string, orgs ...string) *rest.Config {
	t.Helper()
	certPEM, _ := issueClient(t, e.ca, e.caKey, cn, orgs)
	rt, err := e.server.InProcessTransport(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(e.adminConfig)
	cfg.WrapTransport = func(http.RoundTripper) http.RoundTripper { return rt }
	return cfg
}

// Clients in the server's process go through the whole handler: they are
// authenticated by their certificate and authorized as that user, they
// create, read and watch like any client, and stopping a watch ends it
// on the server.
func TestInProcessTransportClientGo(t *testing.T) {
	authz := &fakeAuthz{allow: func(a auth.Attributes) bool {
		return a.User.Name == "alice" && a.Resource == "configmaps" && a.Namespace == "default"
	}}
	e := newTestEnv(t, func(c *Config) { c.Authorizer = authz })
	ctx := context.Background()
	if _, err := e.clientset(t).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(inProcessConfig(t, e, "alice", "devs"))
	if err != nil {
		t.Fatal(err)
	}
	cms := cs.CoreV1().ConfigMaps("default")

	w, err := cms.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := authz.last(); a.User.Name != "alice" || !slices.Contains(a.User.Groups, "devs") || !slices.Contains(a.User.Groups, auth.AllAuthenticated) {
		t.Errorf("request authorized as %+v, want alice in devs", a.User)
	}
	select {
	case ev := <-w.ResultChan():
		if cm, ok := ev.Object.(*corev1.ConfigMap); ev.Type != watch.Added || !ok || cm.Name != "one" {
			t.Errorf("watch event %s %T, want ADDED of one", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	w.Stop()
	deadline := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-w.ResultChan():
		case <-deadline:
			t.Fatal("watch not closed after Stop")
		}
	}

	// What was written in-process is what a client over TLS reads.
	got, err := e.clientset(t).CoreV1().ConfigMaps("default").Get(ctx, "one", metav1.GetOptions{})
	if err != nil || got.UID != created.UID || got.Data["k"] != "v" {
		t.Fatalf("get over TLS = %+v, %v", got, err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	// Refused like any request: a status with the code and reason.
	_, err = cs.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
	if err == nil || !strings.Contains(err.Error(), `User "alice" cannot list resource "secrets"`) {
		t.Errorf("listing secrets: %v, want forbidden for alice", err)
	}
}

func TestInProcessTransportRefusesForeignCertificate(t *testing.T) {
	e := newTestEnv(t)
	other, otherKey := newCA(t)
	certPEM, _ := issueClient(t, other, otherKey, "mallory", nil)
	if _, err := e.server.InProcessTransport(certPEM); err == nil {
		t.Fatal("a certificate of another CA was accepted")
	}
	if _, err := e.server.InProcessTransport([]byte("not pem")); err == nil {
		t.Fatal("no certificate was accepted")
	}
}

// handlerServer is a Server whose handler is h, for the transport's own
// behaviour.
func handlerServer(t *testing.T, h http.HandlerFunc) (*Server, http.RoundTripper) {
	t.Helper()
	ca, caKey := newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	s := &Server{handler: h, shutdown: make(chan struct{}), cfg: Config{ClientCAs: pool}}
	certPEM, _ := issueClient(t, ca, caKey, "c", nil)
	rt, err := s.InProcessTransport(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return s, rt
}

func TestInProcessTransportResponses(t *testing.T) {
	t.Run("request as a server sees it", func(t *testing.T) {
		_, rt := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Seen", strings.Join([]string{r.Method, r.RequestURI, r.Host, string(body), r.TLS.VerifiedChains[0][0].Subject.CommonName, r.Header.Get("X-In")}, "|"))
			w.WriteHeader(http.StatusCreated)
		})
		req, _ := http.NewRequest("POST", "https://10.0.0.1:6443/api/v1/x?y=1", strings.NewReader("body"))
		req.Header.Set("X-In", "h")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if want := "POST|/api/v1/x?y=1|10.0.0.1:6443|body|c|h"; resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Seen") != want {
			t.Errorf("got %d %q, want 201 %q", resp.StatusCode, resp.Header.Get("X-Seen"), want)
		}
	})
	t.Run("no write is an empty 200", func(t *testing.T) {
		_, rt := handlerServer(t, func(http.ResponseWriter, *http.Request) {})
		resp, err := rt.RoundTrip(mustRequest(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(b) != 0 || err != nil {
			t.Errorf("got %d %q %v", resp.StatusCode, b, err)
		}
	})
	t.Run("a large body streams through the bounded buffer", func(t *testing.T) {
		big := strings.Repeat("0123456789", 3*inProcessBodyLimit/10)
		_, rt := handlerServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			for i := 0; i < len(big); i += 4096 {
				if _, err := io.WriteString(w, big[i:min(i+4096, len(big))]); err != nil {
					return
				}
			}
		})
		resp, err := rt.RoundTrip(mustRequest(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != big || resp.ContentLength != int64(len(big)) {
			t.Errorf("read %d bytes (content length %d), %v; want %d", len(b), resp.ContentLength, err, len(big))
		}
	})
	t.Run("closing the body ends a blocked handler", func(t *testing.T) {
		ended := make(chan error, 1)
		_, rt := handlerServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			chunk := make([]byte, 64<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					ended <- r.Context().Err()
					return
				}
			}
		})
		resp, err := rt.RoundTrip(mustRequest(t))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		select {
		case err := <-ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("handler context: %v, want canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("handler still writing after the body was closed")
		}
		if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
			t.Error("read after close succeeded")
		}
	})
	t.Run("a client that gives up unblocks the handler", func(t *testing.T) {
		ended := make(chan struct{})
		_, rt := handlerServer(t, func(w http.ResponseWriter, _ *http.Request) {
			defer close(ended)
			chunk := make([]byte, 64<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		req := mustRequest(t).WithContext(ctx)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("handler still blocked after the client's context ended")
		}
	})
	t.Run("a handler that aborts resets the response", func(t *testing.T) {
		s, rt := handlerServer(t, func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
		s.log = slog.New(slog.DiscardHandler)
		if _, err := rt.RoundTrip(mustRequest(t)); err == nil {
			t.Error("aborted before the header: no error")
		}
		s2, rt2 := handlerServer(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		})
		s2.log = slog.New(slog.DiscardHandler)
		resp, err := rt2.RoundTrip(mustRequest(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("aborted after the header: body read without error")
		}
	})
	t.Run("refused once the server shuts down", func(t *testing.T) {
		s, rt := handlerServer(t, func(http.ResponseWriter, *http.Request) {})
		s.beginShutdown()
		if _, err := rt.RoundTrip(mustRequest(t)); !errors.Is(err, errInProcessClosed) {
			t.Errorf("got %v, want %v", err, errInProcessClosed)
		}
	})
}

func mustRequest(t *testing.T) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", "https://127.0.0.1/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
