package csrapproving

import (
	"context"
	"fmt"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/server"
	"github.com/skiff-dev/skiff/internal/testserver"
)

func condition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i := range csr.Status.Conditions {
		if csr.Status.Conditions[i].Type == t {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

// users starts an API server with the components' identities and returns
// a client configuration for each of them (client certificates issued by
// the cluster CA), keyed by user name.
func users(t *testing.T, ids ...server.Identity) map[string]*rest.Config {
	t.Helper()
	got := make(chan *rest.Config, len(ids))
	var comps []server.Component
	for _, id := range ids {
		comps = append(comps, server.Component{
			Name: id.CertName, Identity: &id,
			Run: func(ctx context.Context, env server.Env) error {
				c := rest.CopyConfig(env.Config)
				c.Username = id.User // label only; the certificate authenticates
				got <- c
				<-ctx.Done()
				return nil
			},
		})
	}
	testserver.Start(t, testserver.Options{Components: comps})
	out := map[string]*rest.Config{}
	for range ids {
		select {
		case c := <-got:
			out[c.Username] = c
			c.Username = ""
			c.QPS = -1
		case <-time.After(30 * time.Second):
			t.Fatal("components did not start")
		}
	}
	return out
}

func TestController(t *testing.T) {
	const (
		bootstrapper = "system:bootstrap:abcdef"
		node         = "system:node:n1"
		other        = "system:node:n2"
	)
	cfgs := users(t,
		server.Identity{CertName: "boot", User: bootstrapper, Groups: []string{bootstrappersGroup}},
		server.Identity{CertName: "n1", User: node, Groups: []string{nodesGroup}},
		server.Identity{CertName: "n2", User: other, Groups: []string{nodesGroup}},
		server.Identity{CertName: "ctl", User: "controller", Groups: []string{"system:masters"}},
	)
	ctlClient := kubernetes.NewForConfigOrDie(cfgs["controller"])
	factory := informers.NewSharedInformerFactory(ctlClient, 0)
	c := New(controller.Deps{Client: ctlClient, Informers: factory, Recorder: record.NewFakeRecorder(100), Logger: controllertest.Logger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})

	// create submits a request for system:node:n1 as user; the spec's
	// claimed requester must be ignored by the API server.
	var tryCreate func(t *testing.T, user, name string) error
	create := func(t *testing.T, user, name string) {
		t.Helper()
		if err := tryCreate(t, user, name); err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
	}
	tryCreate = func(t *testing.T, user, name string) error {
		api := kubernetes.NewForConfigOrDie(cfgs[user]).CertificatesV1().CertificateSigningRequests()
		_, err := api.Create(t.Context(), &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:    makeRequest(t, reqOpts{cn: node, org: []string{nodesGroup}}),
				SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
				Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
				Username:   bootstrapper, Groups: []string{bootstrappersGroup},
			},
		}, metav1.CreateOptions{})
		return err
	}
	api := ctlClient.CertificatesV1().CertificateSigningRequests()
	approved := func(name string) func() error {
		return func() error {
			csr, err := api.Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cond := condition(csr, certificatesv1.CertificateApproved)
			if cond == nil {
				return fmt.Errorf("not approved yet: %+v", csr.Status.Conditions)
			}
			if cond.Reason != ReasonAutoApproved || cond.Status != "True" {
				return fmt.Errorf("approved condition %+v, want reason %s status True", cond, ReasonAutoApproved)
			}
			return nil
		}
	}
	pending := func(t *testing.T, name, wantUser string) {
		t.Helper()
		if _, err := c.sync(t.Context(), name); err != nil {
			t.Fatalf("sync: %v", err)
		}
		csr, err := api.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if csr.Spec.Username != wantUser {
			t.Errorf("spec.username = %q, want the requester %q", csr.Spec.Username, wantUser)
		}
		if len(csr.Status.Conditions) != 0 {
			t.Errorf("conditions = %+v, want none", csr.Status.Conditions)
		}
	}

	t.Run("a bootstrapper's node client request is approved", func(t *testing.T) {
		create(t, bootstrapper, "join")
		controllertest.Eventually(t, approved("join"))
	})
	t.Run("the node's own renewal is approved", func(t *testing.T) {
		create(t, node, "renew")
		controllertest.Eventually(t, approved("renew"))
	})
	t.Run("another node's request is refused or stays pending", func(t *testing.T) {
		// With node admission the server itself refuses a node's request
		// for another node's name; without, the controller must not
		// approve it.
		err := tryCreate(t, other, "other-node")
		if apierrors.IsForbidden(err) {
			return
		}
		if err != nil {
			t.Fatalf("creating: %v", err)
		}
		pending(t, "other-node", other)
	})
	t.Run("another user's request stays pending", func(t *testing.T) {
		create(t, "controller", "stranger")
		pending(t, "stranger", "controller")
	})
}
