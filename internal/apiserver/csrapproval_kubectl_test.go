package apiserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/server"
	"github.com/skiff-dev/skiff/internal/testserver"
)

func csrRequest(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "someone"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func newCSR(t *testing.T, name, signer string) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: csrRequest(t), SignerName: signer,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
}

func conditionTypes(csr *certificatesv1.CertificateSigningRequest) []string {
	var out []string
	for _, c := range csr.Status.Conditions {
		out = append(out, string(c.Type)+"="+string(c.Status))
	}
	return out
}

// kubectlBins finds the stock kubectl 1.27 and 1.33 beside the one on PATH.
func kubectlBins(t *testing.T) []string {
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	var out []string
	for _, v := range []string{"1.27", "1.33"} {
		if p := filepath.Join(filepath.Dir(path), "kubectl."+v); csrTestFileExists(p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = []string{path}
	}
	return out
}

func csrTestFileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestCSRApprovalSubresource checks certificatesigningrequests/approval
// with client-go, stock kubectl (certificate approve/deny PUT
// .../approval) and discovery.
func TestCSRApprovalSubresource(t *testing.T) {
	approverCfg := make(chan *rest.Config, 1)
	admin := testserver.Start(t, testserver.Options{Components: []server.Component{{
		Name:     "approver",
		Identity: &server.Identity{CertName: "approver", User: "approver"},
		Run: func(ctx context.Context, env server.Env) error {
			approverCfg <- env.Config
			<-ctx.Done()
			return nil
		},
	}}})
	client := testserver.Client(t, admin)
	api := client.CertificatesV1().CertificateSigningRequests()
	ctx := t.Context()

	t.Run("discovery", func(t *testing.T) {
		list, err := client.Discovery().ServerResourcesForGroupVersion("certificates.k8s.io/v1")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list.APIResources {
			if r.Name == "certificatesigningrequests/approval" {
				return
			}
		}
		t.Errorf("certificates.k8s.io/v1 lacks certificatesigningrequests/approval: %+v", list.APIResources)
	})

	t.Run("client-go", func(t *testing.T) {
		csr, err := api.Create(ctx, newCSR(t, "cg", "example.com/signer"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Through /approval the conditions and metadata change, not the
		// spec nor the certificate (upstream's approval strategy).
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: "True", Reason: "Test",
		})
		csr.Status.Certificate = []byte("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n")
		csr.Spec.SignerName = "example.com/other"
		csr.Labels = map[string]string{"sneaked": "in"}
		out, err := api.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("UpdateApproval: %v", err)
		}
		if got := conditionTypes(out); strings.Join(got, ",") != "Approved=True" {
			t.Errorf("conditions = %v, want Approved=True", got)
		}
		c := out.Status.Conditions[0]
		if c.LastUpdateTime.IsZero() || c.LastTransitionTime.IsZero() {
			t.Errorf("condition timestamps not filled in: %+v", c)
		}
		if len(out.Status.Certificate) != 0 || out.Spec.SignerName != "example.com/signer" || out.Labels["sneaked"] != "in" {
			t.Errorf("approval: spec or certificate changed, or labels not: %+v", out)
		}
		// Approved cannot turn into Denied, nor be removed.
		out.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: "True"}}
		if _, err := api.UpdateApproval(ctx, out.Name, out, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) ||
			!strings.Contains(err.Error(), `updates may not remove a condition of type "Approved"`) {
			t.Errorf("replacing Approved by Denied: err = %v, want Invalid", err)
		}
		if _, err := api.UpdateApproval(ctx, "missing", out, metav1.UpdateOptions{}); err == nil {
			t.Error("approving a missing CSR succeeded")
		}
	})

	t.Run("patch", func(t *testing.T) {
		csr, err := api.Create(ctx, newCSR(t, "patched", "example.com/signer"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := api.Patch(ctx, csr.Name, types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"patched":"true"}},"spec":{"signerName":"example.com/other"},"status":{"conditions":[{"type":"Approved","status":"True","reason":"e2e"}]}}`),
			metav1.PatchOptions{}, "approval")
		if err != nil {
			t.Fatalf("patching /approval: %v", err)
		}
		if got := conditionTypes(out); strings.Join(got, ",") != "Approved=True" || out.Status.Conditions[0].LastUpdateTime.IsZero() {
			t.Errorf("conditions = %+v, want Approved=True with timestamps", out.Status.Conditions)
		}
		if out.Annotations["patched"] != "true" || out.Spec.SignerName != "example.com/signer" {
			t.Errorf("patched CSR: annotations %v, signer %s; want the annotation, the signer unchanged", out.Annotations, out.Spec.SignerName)
		}
		if _, err := api.Patch(ctx, csr.Name, types.MergePatchType, []byte(`{"status":{"conditions":[{"type":"Denied","status":"True"}]}}`),
			metav1.PatchOptions{}, "approval"); !apierrors.IsInvalid(err) {
			t.Errorf("patching Approved into Denied: err = %v, want Invalid", err)
		}
		// The status subresource may not approve.
		if out, err := api.Patch(ctx, "patched", types.MergePatchType, []byte(`{"status":{"conditions":[{"type":"Failed","status":"True","reason":"x"}]}}`),
			metav1.PatchOptions{}, "status"); err != nil || strings.Join(conditionTypes(out), ",") != "Approved=True,Failed=True" {
			t.Errorf("status patch: %v, %v", conditionTypes(out), err)
		}
	})

	t.Run("signer permission", func(t *testing.T) {
		cfg := <-approverCfg
		// approver may update certificatesigningrequests/approval but may
		// approve only for example.com/* signers.
		rb := client.RbacV1()
		if _, err := rb.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "test-approver"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests", "certificatesigningrequests/approval"}, Verbs: []string{"get", "update"}},
				{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"}, ResourceNames: []string{"example.com/*"}, Verbs: []string{"approve"}},
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := rb.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "test-approver"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "test-approver"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "approver"}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		mine, err := api.Create(ctx, newCSR(t, "mine", "example.com/a"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := api.Create(ctx, newCSR(t, "theirs", "other.io/a"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		as := kubernetes.NewForConfigOrDie(cfg).CertificatesV1().CertificateSigningRequests()
		approve := func(csr *certificatesv1.CertificateSigningRequest) error {
			csr = csr.DeepCopy()
			csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: "True"}}
			_, err := as.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
			return err
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			err := approve(mine)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("approving example.com/a: %v", err)
			}
			select { // the authorizer's cache catches up with the new role
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		err = approve(theirs)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `user not permitted to approve requests with signerName "other.io/a"`) {
			t.Errorf("approving other.io/a: err = %v, want Forbidden naming the signer", err)
		}
	})

	bins := kubectlBins(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := pki.WriteKubeconfig(kubeconfig, admin.Host, admin.CAData, admin.CertData, admin.KeyData); err != nil {
		t.Fatal(err)
	}
	for _, bin := range bins {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			run := func(args ...string) string {
				t.Helper()
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(cctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", t.TempDir(), "-v=6"}, args...)...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
				}
				return out.String()
			}
			name := strings.ReplaceAll(filepath.Base(bin), ".", "-")
			for _, verb := range []string{"approve", "deny"} {
				n := name + "-" + verb
				if _, err := api.Create(ctx, newCSR(t, n, "example.com/signer"), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				out := run("certificate", verb, n)
				if !strings.Contains(out, "PUT") || !strings.Contains(out, "/certificatesigningrequests/"+n+"/approval") {
					t.Errorf("kubectl certificate %s did not PUT .../approval:\n%s", verb, out)
				}
				got, err := api.Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]string{"approve": "Approved=True", "deny": "Denied=True"}[verb]
				if strings.Join(conditionTypes(got), ",") != want {
					t.Errorf("after kubectl certificate %s: conditions %v, want %s", verb, conditionTypes(got), want)
				}
			}
			if out := run("get", "csr", name+"-approve"); !strings.Contains(out, "Approved") {
				t.Errorf("kubectl get csr does not show Approved:\n%s", out)
			}
		})
	}
}
