package aggregator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// servingCert is a CA and a serving certificate for name signed by it.
func servingCert(t *testing.T, name string) (tls.Certificate, []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
}

// seen is what the fake extension server saw of a request.
type seen struct {
	user, auth, proxyCN string
	groups              []string
}

// TestAggregation runs a fake extension API server (trusting the proxy
// through the published front-proxy CA) behind a selector-less service
// and an APIService: the API server proxies the group version there with
// the caller's identity, discovery lists its resources, the APIService
// becomes Available, and deleting it stops the proxying.
func TestAggregation(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := testserver.Client(t, cfg)
	ctx := context.Background()

	// Extension servers learn how to trust the proxy from this config map.
	var cm *corev1.ConfigMap
	controllertest.Eventually(t, func() error {
		var err error
		cm, err = client.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		return err
	})
	if cm.Data["requestheader-allowed-names"] != `["front-proxy-client"]` || cm.Data["requestheader-username-headers"] != `["X-Remote-User"]` ||
		cm.Data["client-ca-file"] == "" {
		t.Fatalf("extension-apiserver-authentication: %v", cm.Data)
	}
	if _, err := client.RbacV1().Roles("kube-system").Get(ctx, "extension-apiserver-authentication-reader", metav1.GetOptions{}); err != nil {
		t.Errorf("reader role: %v", err)
	}
	proxyCAs := x509.NewCertPool()
	if !proxyCAs.AppendCertsFromPEM([]byte(cm.Data["requestheader-client-ca-file"])) {
		t.Fatal("no front-proxy CA in the config map")
	}

	var last atomic.Pointer[seen]
	cert, caBundle := servingCert(t, "wardle.default.svc")
	ext := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &seen{user: r.Header.Get("X-Remote-User"), groups: r.Header.Values("X-Remote-Group"), auth: r.Header.Get("Authorization")}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			s.proxyCN = r.TLS.VerifiedChains[0][0].Subject.CommonName
		}
		if r.URL.Path == "/apis/wardle.example.com/v1alpha1/namespaces/default/flunders" {
			// What a client's request carried, not the aggregator's
			// own discovery and availability checks.
			last.Store(s)
		}
		if s.proxyCN != "front-proxy-client" {
			http.Error(w, "not the front proxy", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/apis/wardle.example.com/v1alpha1":
			_ = json.NewEncoder(w).Encode(&metav1.APIResourceList{
				TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
				GroupVersion: "wardle.example.com/v1alpha1",
				APIResources: []metav1.APIResource{
					{Name: "flunders", SingularName: "flunder", Namespaced: true, Kind: "Flunder", Verbs: []string{"get", "list"}, ShortNames: []string{"fl"}},
					{Name: "flunders/status", Namespaced: true, Kind: "Flunder", Verbs: []string{"get"}},
				},
			})
		case "/openapi/v3/apis/wardle.example.com/v1alpha1":
			fmt.Fprint(w, wardleOpenAPI)
		case "/apis/wardle.example.com/v1alpha1/namespaces/default/flunders":
			fmt.Fprintf(w, `{"apiVersion":"wardle.example.com/v1alpha1","kind":"FlunderList","metadata":{},"items":[{"apiVersion":"wardle.example.com/v1alpha1","kind":"Flunder","metadata":{"name":"for-%s"}}]}`, s.user)
		default:
			http.NotFound(w, r)
		}
	}))
	ext.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: proxyCAs, ClientAuth: tls.RequireAndVerifyClientCert}
	ext.StartTLS()
	defer ext.Close()
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(ext.URL, "https://"))
	port, _ := strconv.Atoi(portStr)

	// A service without a selector and its endpoint slice, as an
	// extension server's deployment would have them.
	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "wardle"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(int32(port))}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "wardle-1", Labels: map[string]string{
			discoveryv1.LabelServiceName: "wardle", discoveryv1.LabelManagedBy: "test"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(port))}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	apiServices := dyn.Resource(apiregistrationv1.SchemeGroupVersion.WithResource("apiservices"))
	if _, err := apiServices.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1alpha1.wardle.example.com"},
		"spec": map[string]any{
			"group": "wardle.example.com", "version": "v1alpha1",
			"groupPriorityMinimum": int64(2000), "versionPriority": int64(200),
			"caBundle": caBundle,
			"service":  map[string]any{"namespace": "default", "name": "wardle", "port": int64(443)},
		},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the APIService: %v", err)
	}

	// Proxied with the caller's identity, never its credentials or a
	// client-supplied X-Remote-User.
	controllertest.Eventually(t, func() error {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/apis/wardle.example.com/v1alpha1/namespaces/default/flunders").
			SetHeader("X-Remote-User", "mallory").SetHeader("Authorization", "Bearer not-for-the-extension-server").DoRaw(ctx)
		if err != nil {
			return err
		}
		if !strings.Contains(string(body), `"name":"for-`) || strings.Contains(string(body), "mallory") {
			return fmt.Errorf("proxied list: %s", body)
		}
		return nil
	})
	s := last.Load()
	if s.user == "" || s.user == "mallory" || s.auth != "" || !slices.Contains(s.groups, "system:masters") {
		t.Errorf("the extension server saw user %q groups %v authorization %q", s.user, s.groups, s.auth)
	}

	// Available through the proxy.
	controllertest.Eventually(t, func() error {
		u, err := apiServices.Get(ctx, "v1alpha1.wardle.example.com", metav1.GetOptions{})
		if err != nil {
			return err
		}
		a := &apiregistrationv1.APIService{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, a); err != nil {
			return err
		}
		for _, c := range a.Status.Conditions {
			if c.Type == apiregistrationv1.Available && c.Status == apiregistrationv1.ConditionTrue && c.Reason == "Passed" {
				return nil
			}
		}
		return fmt.Errorf("APIService status %+v", a.Status)
	})

	// Discovery lists the group and its resources (aggregated documents
	// too, which kubectl reads).
	disc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	controllertest.Eventually(t, func() error {
		_, lists, err := disc.ServerGroupsAndResources()
		if err != nil {
			return err
		}
		for _, l := range lists {
			if l.GroupVersion != "wardle.example.com/v1alpha1" {
				continue
			}
			for _, r := range l.APIResources {
				if r.Name == "flunders" && r.Namespaced && slices.Contains(r.ShortNames, "fl") {
					return nil
				}
			}
			return fmt.Errorf("wardle resources %+v", l.APIResources)
		}
		return fmt.Errorf("no wardle.example.com/v1alpha1 in discovery")
	})

	// Its OpenAPI v3 document is listed and served (kubectl explain).
	controllertest.Eventually(t, func() error {
		url, err := v3URL(ctx, client.Discovery().RESTClient(), "apis/wardle.example.com/v1alpha1")
		if err != nil || url == "" {
			return fmt.Errorf("index: %q %v", url, err)
		}
		body, err := client.Discovery().RESTClient().Get().AbsPath(url).DoRaw(ctx)
		if err != nil || string(body) != wardleOpenAPI {
			return fmt.Errorf("GET %s: %v %s", url, err, body)
		}
		return nil
	})

	// Without the APIService, nothing is proxied.
	if err := apiServices.Delete(ctx, "v1alpha1.wardle.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, func() error {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/apis/wardle.example.com/v1alpha1/namespaces/default/flunders").DoRaw(ctx)
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("after the APIService's delete: %v", err)
		}
		if url, err := v3URL(ctx, client.Discovery().RESTClient(), "apis/wardle.example.com/v1alpha1"); err != nil || url != "" {
			return fmt.Errorf("OpenAPI v3 index after the delete: %q %v", url, err)
		}
		return nil
	})
}

const wardleOpenAPI = `{"openapi":"3.0.0","info":{"title":"wardle","version":"v1alpha1"},"paths":{},"components":{"schemas":{"com.example.wardle.v1alpha1.Flunder":{"type":"object"}}}}`

// v3URL returns the server-relative URL the /openapi/v3 index gives for
// key, "" if it lists none.
func v3URL(ctx context.Context, rc rest.Interface, key string) (string, error) {
	body, err := rc.Get().AbsPath("/openapi/v3").DoRaw(ctx)
	if err != nil {
		return "", err
	}
	var index struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &index); err != nil {
		return "", err
	}
	u := index.Paths[key].ServerRelativeURL
	path, _, _ := strings.Cut(u, "?")
	return path, nil
}
