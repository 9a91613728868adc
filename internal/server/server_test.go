package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/auth/tokens"
	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
	"github.com/skiff-dev/skiff/internal/nodeaddr"
	"github.com/skiff-dev/skiff/internal/registry"
)

// syncBuffer is an io.Writer safe for the server's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// TestRun starts a real server (embedded etcd), checks the kubeconfig it
// writes works and the system namespaces exist, cancels it, and checks a
// clean exit and the progress lines.
func TestRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	progress := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger(t), Progress: progress})
	}()

	kubeconfig := filepath.Join(dir, "kubeconfig")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned during start-up: %v\n%s", err, progress)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kubeconfig after 60s:\n%s", progress)
		}
	}

	// A second server on the same data dir must refuse at once.
	err := Run(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0", Progress: &syncBuffer{}})
	if !errors.Is(err, ErrDataDirInUse) {
		t.Errorf("second Run on the same data dir = %v, want ErrDataDirInUse", err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("loading kubeconfig: %v", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing namespaces: %v", err)
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	if diff := cmp.Diff([]string{"default", "kube-node-lease", "kube-public", "kube-system"}, names); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating a config map as admin: %v", err)
	}
	// The kubernetes Service points at this server, through Endpoints and
	// an EndpointSlice.
	svc, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting the kubernetes service: %v", err)
	}
	_, port, _ := strings.Cut(cfg.Host, "127.0.0.1:")
	if got := fmt.Sprintf("%s %d->%s", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port, svc.Spec.Ports[0].TargetPort.String()); got != "10.96.0.1 443->"+port {
		t.Errorf("kubernetes service: %s, want 10.96.0.1 443->%s", got, port)
	}
	// Pods reach the API at the node's address (the server listens there
	// too, as it listens on loopback), which the certificate names, as it
	// names the service's cluster IP.
	advertised := "127.0.0.1"
	if ip, err := nodeaddr.DetectNodeIP(); err == nil {
		advertised = ip
	}
	eps, err := cs.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(eps.Subsets) != 1 || eps.Subsets[0].Addresses[0].IP != advertised || fmt.Sprint(eps.Subsets[0].Ports[0].Port) != port {
		t.Errorf("kubernetes endpoints: %+v, %v; want %s:%s", eps, err, advertised, port)
	}
	slice, err := cs.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != advertised || fmt.Sprint(*slice.Ports[0].Port) != port {
		t.Errorf("kubernetes endpoint slice: %+v, %v", slice, err)
	}
	advCfg := rest.CopyConfig(cfg)
	advCfg.Host = "https://" + net.JoinHostPort(advertised, port)
	if _, err := kubernetes.NewForConfigOrDie(advCfg).Discovery().ServerVersion(); err != nil {
		t.Errorf("the API at the advertised address %s: %v", advCfg.Host, err)
	}
	serving, err := tls.LoadX509KeyPair(filepath.Join(dir, "pki", "serving.crt"), filepath.Join(dir, "pki", "serving.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(serving.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("10.96.0.1"); err != nil {
		t.Errorf("serving certificate does not name the kubernetes service's IP: %v", err)
	}

	// The ServiceCIDR "kubernetes" describes the service range, Ready.
	sc, err := cs.NetworkingV1().ServiceCIDRs().Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || fmt.Sprint(sc.Spec.CIDRs) != "[10.96.0.0/12]" || !meta.IsStatusConditionTrue(sc.Status.Conditions, "Ready") {
		t.Errorf("default ServiceCIDR: %+v, %v", sc, err)
	}

	checkIssuerDiscovery(ctx, t, cfg, cs)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s of cancel")
	}

	out := progress.String()
	for _, re := range []string{
		`(?m)^etcd ready \(embedded, ` + regexp.QuoteMeta(filepath.Join(dir, "etcd")) + `\)$`,
		`(?m)^API serving on https://127\.0\.0\.1:\d+$`,
		`(?m)^ready in \d+ms$`,
		`(?m)^kubectl --kubeconfig ` + regexp.QuoteMeta(kubeconfig) + ` get nodes$`,
		`(?m)^to join another machine: skiff token create --data-dir ` + regexp.QuoteMeta(dir) + ` \(prints its skiff agent command\)$`,
		`(?m)^stopped$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("progress output does not match %s:\n%s", re, out)
		}
	}
}

// TestRunFailsFast checks the start-up errors that must come before any
// slow work, with a message that says what to do.
func TestRunFailsFast(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "address in use", cfg: Config{DataDir: t.TempDir(), Listen: taken.Addr().String()}, wantErr: "already in use"},
		{name: "bad listen address", cfg: Config{DataDir: t.TempDir(), Listen: "nonsense"}, wantErr: "invalid listen address"},
		{name: "no data dir", cfg: Config{Listen: "127.0.0.1:0"}, wantErr: "data dir"},
		{name: "data dir is a file", cfg: Config{DataDir: notDir, Listen: "127.0.0.1:0"}, wantErr: "data dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Progress = &syncBuffer{}
			start := time.Now()
			err := Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.wantErr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Run took %v to fail, want it at once", d)
			}
		})
	}
}

func TestLockDataDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	l1, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	_, err = lockDataDir(dir)
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), "by process") {
		t.Errorf("second lock = %v, want ErrDataDirInUse naming the holder", err)
	}
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()

	if os.Geteuid() != 0 {
		ro := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if _, err := lockDataDir(ro); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("lock of a read-only dir = %v, want 'not writable'", err)
		}
	}
}

func TestKeyPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		gvr  schema.GroupVersionResource
		want string
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "/registry/core/pods/"},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "/registry/apps/deployments/"},
	}
	for _, tc := range tests {
		if got := KeyPrefix(&registry.Resource{GVR: tc.gvr}); got != tc.want {
			t.Errorf("KeyPrefix(%v) = %q, want %q", tc.gvr, got, tc.want)
		}
	}
}

func TestClientHostPort(t *testing.T) {
	t.Parallel()
	addr := &net.TCPAddr{IP: net.IPv4zero, Port: 6443}
	tests := []struct {
		listenHost, want string
	}{
		{"", "127.0.0.1:6443"},
		{"0.0.0.0", "127.0.0.1:6443"},
		{"::", "127.0.0.1:6443"},
		{"10.0.0.5", "10.0.0.5:6443"},
		{"::1", "[::1]:6443"},
		{"api.example.com", "api.example.com:6443"},
	}
	for _, tc := range tests {
		if got := clientHostPort(addr, tc.listenHost); got != tc.want {
			t.Errorf("clientHostPort(%q) = %q, want %q", tc.listenHost, got, tc.want)
		}
	}
}

// TestRunCancelledDuringStart checks that a stop request during start-up
// is a clean exit that releases the data dir.
func TestRunCancelledDuringStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	progress := &syncBuffer{}
	if err := Run(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger(t), Progress: progress}); err != nil {
		t.Errorf("Run with a cancelled context = %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err == nil {
		t.Errorf("kubeconfig written although the server never became ready")
	}
	l, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("data dir still locked after Run returned: %v", err)
	}
	l.Unlock()
}

// TestRunExternalEtcd runs the server on an etcd it did not start and
// checks where the objects land in it.
func TestRunExternalEtcd(t *testing.T) {
	t.Parallel()
	client, endpoints := etcdtest.StartEndpoints(t)
	dir := t.TempDir()
	progress := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0", EtcdServers: endpoints, EventTTL: 2 * time.Second, Logger: testLogger(t), Progress: progress})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned during start-up: %v\n%s", err, progress)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kubeconfig after 60s:\n%s", progress)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd")); err == nil {
		t.Errorf("an embedded etcd data dir was created although --etcd-servers was given")
	}
	want := "etcd ready (external, " + strings.Join(endpoints, ",") + ")"
	if !strings.Contains(progress.String(), want) {
		t.Errorf("progress lacks %q:\n%s", want, progress)
	}

	resp, err := client.Get(ctx, "/registry/core/namespaces/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	wantKeys := []string{
		"/registry/core/namespaces/default", "/registry/core/namespaces/kube-node-lease",
		"/registry/core/namespaces/kube-public", "/registry/core/namespaces/kube-system",
	}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("namespace keys in etcd (-want +got):\n%s", diff)
	}
	checkEventsExpire(ctx, t, client, filepath.Join(dir, "kubeconfig"))

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s of cancel")
	}
	// The external etcd is still usable: the server closed only its client.
	if _, err := client.Get(context.Background(), "health"); err != nil {
		t.Errorf("external etcd after the server stopped: %v", err)
	}
}

// checkIssuerDiscovery checks that a service account may read the token
// issuer's OpenID discovery document and key set, which name the issuer
// of its tokens and the key that signed them.
func checkIssuerDiscovery(ctx context.Context, t *testing.T, admin *rest.Config, cs kubernetes.Interface) {
	t.Helper()
	sa, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "oidc-reader"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a service account: %v", err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token: %v", err)
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tr.Status.Token
	reader, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body, err := reader.Discovery().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET /.well-known/openid-configuration as a service account: %v", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	// The keys are fetched from where pods reach the server: the
	// kubernetes service's endpoint (the advertised address), not a
	// loopback listen address.
	ep, err := cs.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(ep.Subsets) == 0 || len(ep.Subsets[0].Addresses) == 0 || len(ep.Subsets[0].Ports) == 0 {
		t.Fatalf("the kubernetes endpoints: %+v, %v", ep, err)
	}
	wantJWKS := "https://" + net.JoinHostPort(ep.Subsets[0].Addresses[0].IP, strconv.Itoa(int(ep.Subsets[0].Ports[0].Port))) + tokens.JWKSPath
	if doc.Issuer != tokens.DefaultIssuer || doc.JWKSURI != wantJWKS {
		t.Errorf("discovery document %s: want issuer %s and jwks_uri %s", body, tokens.DefaultIssuer, wantJWKS)
	}
	body, err = reader.Discovery().RESTClient().Get().AbsPath(tokens.JWKSPath).DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET %s as a service account: %v", tokens.JWKSPath, err)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("key set %s: %v", body, err)
	}
	header, _, _ := strings.Cut(tr.Status.Token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatalf("decoding the token header: %v", err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &hdr); err != nil || hdr.Kid != set.Keys[0].Kid {
		t.Errorf("token kid %q (%v), key set kid %q", hdr.Kid, err, set.Keys[0].Kid)
	}
}

// checkEventsExpire checks that events of both groups are written with an
// etcd lease and vanish once it runs out (the server runs with a 2 s event
// TTL), while other objects carry no lease.
func checkEventsExpire(ctx context.Context, t *testing.T, client *clientv3.Client, kubeconfig string) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("loading kubeconfig: %v", err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ref := corev1.ObjectReference{Kind: "ConfigMap", Namespace: "default", Name: "x", APIVersion: "v1"}
	now := metav1.NowMicro()
	if _, err := cs.CoreV1().Events("default").Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "core-event"}, InvolvedObject: ref, Reason: "Test", Message: "m", Type: corev1.EventTypeNormal,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a core/v1 event: %v", err)
	}
	if _, err := cs.EventsV1().Events("default").Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "events-event"}, Regarding: ref, Reason: "Test", Note: "m", Type: corev1.EventTypeNormal,
		EventTime: now, ReportingController: "skiff.dev/test", ReportingInstance: "test", Action: "Testing",
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating an events.k8s.io/v1 event: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a config map: %v", err)
	}
	lease := func(key string) int64 {
		resp, err := client.Get(ctx, key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("reading %s: %v, %d keys", key, err, len(resp.Kvs))
		}
		return resp.Kvs[0].Lease
	}
	if lease("/registry/core/events/default/core-event") == 0 || lease("/registry/core/events/default/events-event") == 0 {
		t.Error("an event was stored without a lease")
	}
	if lease("/registry/core/configmaps/default/kept") != 0 {
		t.Error("a config map was stored with a lease")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err1 := cs.CoreV1().Events("default").Get(ctx, "core-event", metav1.GetOptions{})
		_, err2 := cs.EventsV1().Events("default").Get(ctx, "events-event", metav1.GetOptions{})
		if apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events still there 30s after a 2s TTL: %v, %v", err1, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Errorf("the config map: %v", err)
	}
}

func TestAdvertiseAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		listenHost, configured string
		want                   string
		extra, fails           bool
	}{
		{listenHost: "10.1.2.3", want: "10.1.2.3"},
		{listenHost: "127.0.0.1", configured: "127.0.0.1", want: "127.0.0.1"},
		{listenHost: "0.0.0.0", configured: "10.9.9.9", want: "10.9.9.9"},
		{listenHost: "127.0.0.1", configured: "not-an-ip", fails: true},
	} {
		got, extra, err := advertiseAddress(tc.listenHost, tc.configured, ln, log)
		if extra != nil {
			extra.Close()
		}
		if (err != nil) != tc.fails || got != tc.want || (extra != nil) != tc.extra {
			t.Errorf("advertiseAddress(%q, %q) = %q, extra listener %v, %v; want %q, %v, fails %v",
				tc.listenHost, tc.configured, got, extra != nil, err, tc.want, tc.extra, tc.fails)
		}
	}
}
