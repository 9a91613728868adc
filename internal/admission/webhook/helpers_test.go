package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	admissionregistrationv1listers "k8s.io/client-go/listers/admissionregistration/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	discoveryv1listers "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission"
	"github.com/skiff-dev/skiff/internal/auth"
)

func indexer(t testing.TB, objs ...any) cache.Indexer {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		if err := idx.Add(o); err != nil {
			t.Fatalf("adding to the indexer: %v", err)
		}
	}
	return idx
}

func mutatingLister(t testing.TB, cfgs ...*admissionregistrationv1.MutatingWebhookConfiguration) admissionregistrationv1listers.MutatingWebhookConfigurationLister {
	objs := make([]any, len(cfgs))
	for i, c := range cfgs {
		objs[i] = c
	}
	return admissionregistrationv1listers.NewMutatingWebhookConfigurationLister(indexer(t, objs...))
}

func validatingLister(t testing.TB, cfgs ...*admissionregistrationv1.ValidatingWebhookConfiguration) admissionregistrationv1listers.ValidatingWebhookConfigurationLister {
	objs := make([]any, len(cfgs))
	for i, c := range cfgs {
		objs[i] = c
	}
	return admissionregistrationv1listers.NewValidatingWebhookConfigurationLister(indexer(t, objs...))
}

func namespaceLister(t testing.TB, nss ...*corev1.Namespace) corev1listers.NamespaceLister {
	objs := make([]any, len(nss))
	for i, n := range nss {
		objs[i] = n
	}
	return corev1listers.NewNamespaceLister(indexer(t, objs...))
}

func serviceLister(t testing.TB, svcs ...*corev1.Service) corev1listers.ServiceLister {
	objs := make([]any, len(svcs))
	for i, s := range svcs {
		objs[i] = s
	}
	return corev1listers.NewServiceLister(indexer(t, objs...))
}

func sliceLister(t testing.TB, slices ...*discoveryv1.EndpointSlice) discoveryv1listers.EndpointSliceLister {
	objs := make([]any, len(slices))
	for i, s := range slices {
		objs[i] = s
	}
	return discoveryv1listers.NewEndpointSliceLister(indexer(t, objs...))
}

func namespace(name string, lbls map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

// reviewFunc answers one AdmissionRequest; the server sets the uid.
type reviewFunc func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse

// newWebhookServer starts a TLS webhook answering with fn, in the
// AdmissionReview version it was sent. It returns the URL and the CA
// bundle that verifies it.
func newWebhookServer(t testing.TB, fn reviewFunc) (string, []byte) {
	t.Helper()
	return newRawServer(t, reviewHandler(fn, nil))
}

// reviewHandler answers AdmissionReviews with fn; it stores the version
// of each review it is sent in version when that is not nil.
func reviewHandler(fn reviewFunc, version *atomic.Value) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var rev admissionv1.AdmissionReview // v1beta1 has the same JSON
		if err := json.Unmarshal(body, &rev); err != nil || rev.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		if version != nil {
			version.Store(rev.APIVersion)
		}
		resp := fn(rev.Request)
		resp.UID = rev.Request.UID
		out := admissionv1.AdmissionReview{TypeMeta: rev.TypeMeta, Response: resp}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&out)
	}
}

// newCert returns a self-signed serving certificate for dnsNames and
// 127.0.0.1, and its PEM.
func newCert(t testing.TB, dnsNames ...string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating a key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "webhook"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              dnsNames,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating a certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newServerWithCert starts a TLS server with handler and cert.
func newServerWithCert(t testing.TB, handler http.HandlerFunc, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// newRawServer starts a TLS server with handler; it returns its URL and
// the CA bundle (its certificate, PEM) that verifies it.
func newRawServer(t testing.TB, handler http.HandlerFunc) (string, []byte) {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, certPEM(srv)
}

func certPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

var (
	podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	podGVK  = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
)

func allowAll(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true}
}

// podRules matches every operation on pods.
func podRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
}

// allRules matches every operation on every resource.
func allRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*/*"}},
	}}
}

func mutatingHook(name, url string, ca []byte, mods ...func(*admissionregistrationv1.MutatingWebhook)) admissionregistrationv1.MutatingWebhook {
	h := admissionregistrationv1.MutatingWebhook{
		Name:                    name,
		ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url), CABundle: ca},
		Rules:                   podRules(),
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          ptr.To[int32](5),
		AdmissionReviewVersions: []string{"v1"},
		ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
	}
	for _, m := range mods {
		m(&h)
	}
	return h
}

func validatingHook(name, url string, ca []byte, mods ...func(*admissionregistrationv1.ValidatingWebhook)) admissionregistrationv1.ValidatingWebhook {
	h := admissionregistrationv1.ValidatingWebhook{
		Name:                    name,
		ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url), CABundle: ca},
		Rules:                   podRules(),
		FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          ptr.To[int32](5),
		AdmissionReviewVersions: []string{"v1"},
	}
	for _, m := range mods {
		m(&h)
	}
	return h
}

func mutatingConfig(name string, hooks ...admissionregistrationv1.MutatingWebhook) *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("m-" + name), ResourceVersion: "1"},
		Webhooks:   hooks,
	}
}

func validatingConfig(name string, hooks ...admissionregistrationv1.ValidatingWebhook) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("v-" + name), ResourceVersion: "1"},
		Webhooks:   hooks,
	}
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func podCreate(pod *corev1.Pod) *admission.Request {
	return &admission.Request{
		Operation: admission.Create,
		User:      auth.User{Name: "alice", Groups: []string{"system:authenticated"}},
		Namespace: pod.Namespace,
		Name:      pod.Name,
		Resource:  podsGVR,
		Kind:      podGVK,
		Object:    pod,
	}
}
