package cri

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	podA := SandboxConfig{Name: "a", Namespace: "ns", UID: "uid-a", Labels: map[string]string{"pod": "a"}}
	podB := SandboxConfig{Name: "b", Namespace: "ns", UID: "uid-b", HostNetwork: true}
	busybox := ContainerConfig{Name: "main", Image: "busybox"}
	// Each step returns an error or nil; wantErrs holds, per step, "" for
	// success or a substring of the error (a "notfound:" prefix also
	// demands IsNotFound).
	tests := []struct {
		name     string
		steps    func(f *Fake) []error
		wantErrs []string
		wantDump string
	}{
		{
			name: "lifecycle",
			steps: func(f *Fake) []error {
				sb, err1 := f.RunSandbox(ctx, podA)
				c, err2 := f.CreateContainer(ctx, sb, podA, busybox)
				err3 := f.StartContainer(ctx, c)
				ok := f.Exit(c, 0, "")
				var err4 error
				if !ok {
					err4 = errString("Exit: not running")
				}
				return []error{err1, err2, err3, err4}
			},
			wantErrs: []string{"", "", "", ""},
			wantDump: "POD ID\tSTATE\tNAME\tNAMESPACE\tATTEMPT\n" +
				"sandbox-1\tREADY\ta\tns\t0\n" +
				"CONTAINER\tIMAGE\tSTATE\tNAME\tATTEMPT\tPOD ID\tEXIT\n" +
				"container-2\tbusybox\tExited\tmain\t0\tsandbox-1\t0 Completed\n",
		},
		{
			name: "invariants",
			steps: func(f *Fake) []error {
				sb, err1 := f.RunSandbox(ctx, podA)
				_, err2 := f.RunSandbox(ctx, podA)
				_, err3 := f.CreateContainer(ctx, sb, podA, ContainerConfig{Name: "x", Image: "absent"})
				_, err4 := f.CreateContainer(ctx, "nope", podA, busybox)
				c, err5 := f.CreateContainer(ctx, sb, podA, busybox)
				_, err6 := f.CreateContainer(ctx, sb, podA, busybox)
				_, err7 := f.ExecSync(ctx, c, []string{"true"}, 0)
				err8 := f.StartContainer(ctx, c)
				err9 := f.StartContainer(ctx, c)
				_, err10 := f.RunSandbox(ctx, SandboxConfig{Name: "h", HostNetwork: true, Hostname: "h"})
				_, err11 := f.ContainerStatus(ctx, "nope")
				return []error{err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11}
			},
			wantErrs: []string{"", "name is reserved", "notfound:absent", "notfound:nope", "", "name is reserved",
				"not running", "", "not Created", "hostname", "notfound:nope"},
			wantDump: "POD ID\tSTATE\tNAME\tNAMESPACE\tATTEMPT\n" +
				"sandbox-1\tREADY\ta\tns\t0\n" +
				"CONTAINER\tIMAGE\tSTATE\tNAME\tATTEMPT\tPOD ID\tEXIT\n" +
				"container-2\tbusybox\tRunning\tmain\t0\tsandbox-1\t\n",
		},
		{
			name: "stop and remove",
			steps: func(f *Fake) []error {
				a, err1 := f.RunSandbox(ctx, podA)
				c, err2 := f.CreateContainer(ctx, a, podA, busybox)
				err3 := f.StartContainer(ctx, c)
				b, err4 := f.RunSandbox(ctx, podB)
				d, err5 := f.CreateContainer(ctx, b, podB, busybox)
				err6 := f.StopSandbox(ctx, a)
				_, err7 := f.CreateContainer(ctx, a, podA, ContainerConfig{Name: "late", Image: "busybox"})
				err8 := f.RemoveSandbox(ctx, b) // ready: removed with its container
				_, err9 := f.ContainerStatus(ctx, d)
				err10 := f.RemoveSandbox(ctx, b)
				err11 := f.StopContainer(ctx, "nope", time.Second)
				return []error{err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11}
			},
			wantErrs: []string{"", "", "", "", "", "", "not ready", "", "notfound:", "", ""},
			wantDump: "POD ID\tSTATE\tNAME\tNAMESPACE\tATTEMPT\n" +
				"sandbox-1\tNOTREADY\ta\tns\t0\n" +
				"CONTAINER\tIMAGE\tSTATE\tNAME\tATTEMPT\tPOD ID\tEXIT\n" +
				"container-2\tbusybox\tExited\tmain\t0\tsandbox-1\t137 Error\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := NewFake("busybox")
			f.Now = func() time.Time { return time.Unix(1, 0) }
			errs := tt.steps(f)
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("%d steps, %d expectations", len(errs), len(tt.wantErrs))
			}
			for i, err := range errs {
				want := tt.wantErrs[i]
				switch {
				case want == "" && err != nil:
					t.Errorf("step %d: %v", i+1, err)
				case want != "" && err == nil:
					t.Errorf("step %d: no error, want %q", i+1, want)
				case strings.HasPrefix(want, "notfound:"):
					if !IsNotFound(err) || !strings.Contains(err.Error(), strings.TrimPrefix(want, "notfound:")) {
						t.Errorf("step %d: %v, want a not-found error with %q", i+1, err, want)
					}
				case want != "" && !strings.Contains(err.Error(), want):
					t.Errorf("step %d: %v, want one containing %q", i+1, err, want)
				}
			}
			if diff := cmp.Diff(tt.wantDump, f.Dump()); diff != "" {
				t.Errorf("Dump (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFakeRuntimeHandlers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		handlers []string // Fake.Handlers
		handler  string
		wantErr  string
	}{
		{name: "default", handler: ""},
		{name: "runc by default", handler: "runc"},
		{name: "unknown", handler: "kata", wantErr: `cri: running sandbox "ns/a": failed to get sandbox runtime: no runtime for "kata" is configured`},
		{name: "configured", handlers: []string{"runc", "kata"}, handler: "kata"},
		{name: "runc not configured", handlers: []string{"kata"}, handler: "runc", wantErr: `no runtime for "runc" is configured`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := NewFake()
			f.Handlers = tt.handlers
			id, err := f.RunSandbox(ctx, SandboxConfig{Name: "a", Namespace: "ns", UID: "u", RuntimeHandler: tt.handler})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RunSandbox: %v, want an error with %q", err, tt.wantErr)
				}
				if sbs, _ := f.ListSandboxes(ctx, nil); len(sbs) != 0 {
					t.Errorf("a failed RunSandbox left sandboxes: %+v", sbs)
				}
				return
			}
			if err != nil {
				t.Fatalf("RunSandbox: %v", err)
			}
			sb, err := f.SandboxStatus(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			sbs, err := f.ListSandboxes(ctx, nil)
			if err != nil || len(sbs) != 1 {
				t.Fatalf("ListSandboxes: %v, %v", sbs, err)
			}
			if sb.RuntimeHandler != tt.handler || sbs[0].RuntimeHandler != tt.handler {
				t.Errorf("handler: status %q, list %q, want %q", sb.RuntimeHandler, sbs[0].RuntimeHandler, tt.handler)
			}
		})
	}
}

func TestFakeLists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := NewFake("busybox")
	f.Now = func() time.Time { return time.Unix(1, 0) }
	f.Exec = func(id string, cmd []string) ExecResult {
		return ExecResult{Stdout: []byte(id + ":" + strings.Join(cmd, " ")), ExitCode: 3}
	}
	cfg := SandboxConfig{Name: "a", Namespace: "ns", UID: "u", Labels: map[string]string{"pod": "a"}}
	sb, err := f.RunSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.RunSandbox(ctx, SandboxConfig{Name: "b", Namespace: "ns", UID: "v"}); err != nil {
		t.Fatal(err)
	}
	c, err := f.CreateContainer(ctx, sb, cfg, ContainerConfig{Name: "main", Image: "busybox", Labels: map[string]string{"c": "main"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.StartContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	sbs, err := f.ListSandboxes(ctx, map[string]string{"pod": "a"})
	if err != nil {
		t.Fatal(err)
	}
	wantSB := []Sandbox{{ID: sb, Name: "a", Namespace: "ns", UID: "u", State: SandboxReady, CreatedAt: time.Unix(1, 0), Labels: map[string]string{"pod": "a"}}}
	if diff := cmp.Diff(wantSB, sbs); diff != "" {
		t.Errorf("ListSandboxes (-want +got):\n%s", diff)
	}
	tests := []struct {
		name   string
		filter ContainerFilter
		want   int
	}{
		{name: "all", filter: ContainerFilter{}, want: 1},
		{name: "by sandbox", filter: ContainerFilter{SandboxID: sb}, want: 1},
		{name: "other sandbox", filter: ContainerFilter{SandboxID: "sandbox-2"}, want: 0},
		{name: "running", filter: ContainerFilter{State: ContainerRunning}, want: 1},
		{name: "exited", filter: ContainerFilter{State: ContainerExited}, want: 0},
		{name: "label", filter: ContainerFilter{Labels: map[string]string{"c": "main"}}, want: 1},
		{name: "other label", filter: ContainerFilter{Labels: map[string]string{"c": "side"}}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.ListContainers(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("ListContainers(%+v) = %d containers, want %d", tt.filter, len(got), tt.want)
			}
		})
	}
	res, err := f.ExecSync(ctx, c, []string{"echo", "hi"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ExecResult{Stdout: []byte(c + ":echo hi"), ExitCode: 3}, res); diff != "" {
		t.Errorf("ExecSync (-want +got):\n%s", diff)
	}
	if img, err := f.ImageStatus(ctx, "absent"); img != nil || err != nil {
		t.Errorf("ImageStatus(absent) = %v, %v; want nil, nil", img, err)
	}
	if _, err := f.PullImage(ctx, "absent"); err == nil {
		t.Errorf("PullImage(absent): no error")
	}
}

// errString is an error made of a message.
type errString string

func (e errString) Error() string { return string(e) }
