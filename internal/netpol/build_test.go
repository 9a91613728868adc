package netpol

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/knftables"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files testdata/*.nft")

const testNode = "node-a"

// loadObjects decodes the YAML documents of file.
func loadObjects(t *testing.T, file string) snapshot {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{node: testNode}
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(data), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s: decoding %q: %v", file, doc, err)
		}
		switch o := obj.(type) {
		case *corev1.Pod:
			s.pods = append(s.pods, o)
		case *corev1.Namespace:
			s.namespaces = append(s.namespaces, o)
		case *networkingv1.NetworkPolicy:
			s.policies = append(s.policies, o)
		default:
			t.Fatalf("%s: unexpected %T", file, obj)
		}
	}
	return s
}

// loadCase is cluster.yaml plus the policies of testdata/<name>.yaml.
func loadCase(t *testing.T, name string) snapshot {
	t.Helper()
	s := loadObjects(t, filepath.Join("testdata", "cluster.yaml"))
	s.policies = loadObjects(t, filepath.Join("testdata", name+".yaml")).policies
	return s
}

func caseNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".yaml"); name != "cluster" {
			names = append(names, name)
		}
	}
	return names
}

func applyFresh(t *testing.T, s snapshot) *knftables.Fake {
	t.Helper()
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	a := &applier{nft: fake}
	if err := a.apply(context.Background(), build(s)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return fake
}

// TestGolden writes each case's table from scratch and compares it with
// testdata/<case>.nft (go test -rewrite updates those).
func TestGolden(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			got := applyFresh(t, loadCase(t, name)).Dump()
			golden := filepath.Join("testdata", name+".nft")
			if *rewrite {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("table (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIncremental checks that going from any case to any other by
// difference gives the table the other writes from scratch.
func TestIncremental(t *testing.T) {
	names := caseNames(t)
	for _, from := range names {
		for _, to := range names {
			t.Run(from+"->"+to, func(t *testing.T) {
				fake := knftables.NewFake(knftables.InetFamily, TableName)
				a := &applier{nft: fake}
				for _, s := range []snapshot{loadCase(t, from), loadCase(t, to)} {
					if err := a.apply(context.Background(), build(s)); err != nil {
						t.Fatalf("apply: %v", err)
					}
				}
				want := sortElements(applyFresh(t, loadCase(t, to)).Dump())
				if diff := cmp.Diff(want, sortElements(fake.Dump())); diff != "" {
					t.Errorf("table (-fresh +incremental):\n%s", diff)
				}
			})
		}
	}
}

// sortElements sorts the element lines of a dump, which the fake lists in
// the order they were added.
func sortElements(dump string) string {
	var other, elems []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "add element ") {
			elems = append(elems, l)
		} else {
			other = append(other, l)
		}
	}
	slices.Sort(elems)
	return strings.Join(append(other, elems...), "\n")
}

// TestPodChangesOnlyTouchSets checks that pods coming, going and changing
// labels change set elements and no rule or chain.
func TestPodChangesOnlyTouchSets(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *snapshot)
		want   []string // the transaction's lines
	}{
		{
			name: "new client pod on node-b",
			change: func(s *snapshot) {
				p := s.pods[0].DeepCopy()
				p.Name, p.Namespace, p.Labels = "client-2", "shop", map[string]string{"app": "client"}
				p.Spec.NodeName, p.Status.PodIP = "node-b", "10.42.1.77"
				s.pods = append(s.pods, p)
			},
			want: []string{"add element inet skiff-netpol in/shop/web/0/peers { 10.42.1.77 }"},
		},
		{
			name: "new web pod on node-a",
			change: func(s *snapshot) {
				p := s.pods[0].DeepCopy()
				p.Name, p.Status.PodIP = "web-3", "10.42.0.99"
				s.pods = append(s.pods, p)
			},
			want: []string{
				"add element inet skiff-netpol ingress-isolated { 10.42.0.99 }",
				"add element inet skiff-netpol sel/shop/web { 10.42.0.99 }",
				"add element inet skiff-netpol self { 10.42.0.99 . 10.42.0.99 }",
			},
		},
		{
			name: "client relabelled",
			change: func(s *snapshot) {
				for i, p := range s.pods {
					if p.Name == "client" {
						p = p.DeepCopy()
						p.Labels = map[string]string{"app": "other"}
						s.pods[i] = p
					}
				}
			},
			want: []string{"delete element inet skiff-netpol in/shop/web/0/peers { 10.42.0.11 }"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadCase(t, "allow-by-label")
			before := build(s)
			tt.change(&s)
			tx := knftables.NewFake(knftables.InetFamily, TableName).NewTransaction()
			plan(tx, before, build(s))
			got := strings.Split(strings.TrimSpace(tx.String()), "\n")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("transaction (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyUnchanged checks that applying the same ruleset twice runs no
// second transaction.
func TestApplyUnchanged(t *testing.T) {
	s := loadCase(t, "egress")
	tx := knftables.NewFake(knftables.InetFamily, TableName).NewTransaction()
	plan(tx, build(s), build(s))
	if n := tx.NumOperations(); n != 0 {
		t.Errorf("operations = %d, want 0:\n%s", n, tx.String())
	}
}

// BenchmarkSync builds and plans a table for 5,000 pods (500 on this node)
// in 100 namespaces with two policies each, after one pod changed.
func BenchmarkSync(b *testing.B) {
	s := snapshot{node: testNode}
	for n := range 100 {
		ns := fmt.Sprintf("ns-%d", n)
		s.namespaces = append(s.namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": fmt.Sprint(n % 10)}}})
		s.policies = append(s.policies,
			&networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: ns},
				Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
			},
			&networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
				Spec: networkingv1.NetworkPolicySpec{
					PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Ingress: []networkingv1.NetworkPolicyIngressRule{{
						From: []networkingv1.NetworkPolicyPeer{
							{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}},
							{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "3"}}},
						},
						Ports: []networkingv1.NetworkPolicyPort{{Port: &intstr.IntOrString{Type: intstr.String, StrVal: "http"}}},
					}},
				},
			})
		for i := range 50 {
			app := []string{"web", "client", "db"}[i%3]
			s.pods = append(s.pods, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: ns, Labels: map[string]string{"app": app}},
				Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", i%10), Containers: []corev1.Container{{
					Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.%d.%d.%d", 40+i%10, n, i)},
			})
		}
	}
	s.node = "node-0"
	before := build(s)
	s.pods = s.pods[1:]
	b.ResetTimer()
	for b.Loop() {
		tx := knftables.NewFake(knftables.InetFamily, TableName).NewTransaction()
		plan(tx, before, build(s))
	}
}
