package admission

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
)

// recorder is a plugin that logs its calls.
type recorder struct {
	name    string
	log     *[]string
	fail    error
	mutates bool
}

func (p *recorder) Name() string { return p.name }

type recMutator struct{ *recorder }

func (p recMutator) Admit(_ context.Context, r *Request) error {
	*p.log = append(*p.log, "admit:"+p.name)
	if pod, ok := r.Object.(*corev1.Pod); ok && p.mutates {
		pod.Labels = map[string]string{"by": p.name}
	}
	return p.fail
}

type recValidator struct{ *recorder }

func (p recValidator) Validate(_ context.Context, r *Request) error {
	*p.log = append(*p.log, "validate:"+p.name)
	return p.fail
}

type recBoth struct{ *recorder }

func (p recBoth) Admit(ctx context.Context, r *Request) error {
	return recMutator{p.recorder}.Admit(ctx, r)
}
func (p recBoth) Validate(ctx context.Context, r *Request) error {
	return recValidator{p.recorder}.Validate(ctx, r)
}

func TestChainOrder(t *testing.T) {
	t.Parallel()
	var log []string
	c := NewChain(
		recValidator{&recorder{name: "v1", log: &log}},
		recBoth{&recorder{name: "b", log: &log}},
		recMutator{&recorder{name: "m1", log: &log, mutates: true}},
		&recorder{name: "neither", log: &log},
		recValidator{&recorder{name: "v2", log: &log}},
	)
	pod := testPod("x")
	if err := c.Admit(context.Background(), podCreate("ns", pod)); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	want := []string{"admit:b", "admit:m1", "validate:v1", "validate:b", "validate:v2"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("call order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"v1", "b", "m1", "v2"}, c.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	if pod.Labels["by"] != "m1" {
		t.Errorf("mutation lost: labels %v", pod.Labels)
	}

	log = nil
	if err := c.Mutate(context.Background(), podCreate("ns", pod)); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(context.Background(), podCreate("ns", pod)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("Mutate then Validate (-want +got):\n%s", diff)
	}
}

func TestChainStopsAtFirstError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		plugins func(log *[]string) []Plugin
		wantLog []string
		wantErr string
	}{
		{
			name: "mutator error stops before validators and becomes 500",
			plugins: func(log *[]string) []Plugin {
				return []Plugin{
					recMutator{&recorder{name: "m1", log: log, fail: errors.New("boom")}},
					recMutator{&recorder{name: "m2", log: log}},
					recValidator{&recorder{name: "v", log: log}},
				}
			},
			wantLog: []string{"admit:m1"},
			wantErr: `500 Internal error occurred: admission plugin "m1" failed: boom`,
		},
		{
			name: "validator status error is kept",
			plugins: func(log *[]string) []Plugin {
				return []Plugin{
					recValidator{&recorder{name: "v1", log: log, fail: forbidden(podCreate("ns", testPod("x")), errors.New("nope"))}},
					recValidator{&recorder{name: "v2", log: log}},
				}
			},
			wantLog: []string{"validate:v1"},
			wantErr: `403 pods "x" is forbidden: nope`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var log []string
			err := NewChain(tt.plugins(&log)...).Admit(context.Background(), podCreate("ns", testPod("x")))
			if diff := cmp.Diff(tt.wantErr, errText(t, err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLog, log); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNilChainAdmits(t *testing.T) {
	t.Parallel()
	var c *Chain
	for name, f := range map[string]func(context.Context, *Request) error{"Admit": c.Admit, "Mutate": c.Mutate, "Validate": c.Validate} {
		if err := f(context.Background(), podCreate("ns", testPod("x"))); err != nil {
			t.Errorf("nil chain %s: %v", name, err)
		}
	}
}

func TestForbiddenName(t *testing.T) {
	t.Parallel()
	pod := testPod("")
	pod.GenerateName = "web-"
	r := podCreate("ns", pod)
	if got, want := errText(t, forbidden(r, errors.New("x"))), `403 pods "web-" is forbidden: x`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	r.Object = nil
	if got, want := errText(t, forbidden(r, errors.New("x"))), `403 pods is forbidden: x`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDefaultOrder(t *testing.T) {
	t.Parallel()
	client := newClient()
	c := Default(informers.NewSharedInformerFactory(client, 0), client)
	if diff := cmp.Diff(DefaultPluginNames(), c.Names()); diff != "" {
		t.Errorf("Default plugins (-want +got):\n%s", diff)
	}
}

func TestChainWithout(t *testing.T) {
	var calls []string
	c := NewChain(recMutator{&recorder{name: "A", log: &calls}}, recValidator{&recorder{name: "B", log: &calls}})
	got := c.Without("A").Names()
	if len(got) != 1 || got[0] != "B" {
		t.Fatalf("Without(A).Names() = %v, want [B]", got)
	}
}

type recConnect struct{ *recorder }

func (p recConnect) Validate(ctx context.Context, r *Request) error {
	return recValidator{p.recorder}.Validate(ctx, r)
}
func (p recConnect) AdmitConnect(_ context.Context, r *Request) error {
	*p.log = append(*p.log, "connect:"+p.name)
	return p.fail
}

// TestChainAdmitConnect: only the plugins that opt in see a CONNECT, in
// chain order, and the first refusal stops it.
func TestChainAdmitConnect(t *testing.T) {
	t.Parallel()
	var log []string
	refused := errors.New("no")
	c := NewChain(
		recValidator{&recorder{name: "v", log: &log}},
		recConnect{&recorder{name: "c1", log: &log}},
		recMutator{&recorder{name: "m", log: &log}},
		recConnect{&recorder{name: "c2", log: &log, fail: refused}},
		recConnect{&recorder{name: "c3", log: &log}},
	)
	r := &Request{Operation: Connect, Object: &corev1.PodExecOptions{Command: []string{"ls"}}}
	if err := c.AdmitConnect(context.Background(), r); err == nil {
		t.Fatal("a refused connect was admitted")
	}
	if diff := cmp.Diff([]string{"connect:c1", "connect:c2"}, log); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if err := (*Chain)(nil).AdmitConnect(context.Background(), r); err != nil {
		t.Errorf("nil chain: %v", err)
	}
}
