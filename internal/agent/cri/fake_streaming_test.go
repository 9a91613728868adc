package cri_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

func TestFakeStreaming(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := cri.NewFakeStreaming(cri.NewFake("img"), "http://127.0.0.1:1234")
	sb := cri.SandboxConfig{Name: "p", Namespace: "ns", UID: "u"}
	sbID, err := f.RunSandbox(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	running, err := f.CreateContainer(ctx, sbID, sb, cri.ContainerConfig{Name: "a", Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.StartContainer(ctx, running); err != nil {
		t.Fatal(err)
	}
	created, err := f.CreateContainer(ctx, sbID, sb, cri.ContainerConfig{Name: "b", Image: "img"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		call    func() (string, error)
		want    string
		wantErr string
	}{
		{"exec", func() (string, error) {
			return f.Exec(ctx, cri.ExecRequest{ContainerID: running, Cmd: []string{"sh"}, Stdin: true, Stdout: true})
		}, "http://127.0.0.1:1234/exec/1", ""},
		{"attach", func() (string, error) {
			return f.Attach(ctx, cri.AttachRequest{ContainerID: running, TTY: true, Stdout: true})
		}, "http://127.0.0.1:1234/attach/2", ""},
		{"port-forward", func() (string, error) { return f.PortForward(ctx, sbID, []int32{80}) }, "http://127.0.0.1:1234/portforward/3", ""},
		{"exec in a created container", func() (string, error) {
			return f.Exec(ctx, cri.ExecRequest{ContainerID: created, Cmd: []string{"sh"}, Stdout: true})
		}, "", `cri: exec in container "container-3": container is not running`},
		{"exec in a missing container", func() (string, error) {
			return f.Exec(ctx, cri.ExecRequest{ContainerID: "nope", Cmd: []string{"sh"}, Stdout: true})
		}, "", `cri: exec in container "nope": cri: not found`},
		{"exec without streams", func() (string, error) {
			return f.Exec(ctx, cri.ExecRequest{ContainerID: running, Cmd: []string{"sh"}})
		}, "", `cri: exec in container "container-2": one of stdin, stdout or stderr must be set`},
		{"exec with tty and stderr", func() (string, error) {
			return f.Exec(ctx, cri.ExecRequest{ContainerID: running, Cmd: []string{"sh"}, TTY: true, Stdout: true, Stderr: true})
		}, "", `cri: exec in container "container-2": tty and stderr cannot both be set`},
		{"exec without a command", func() (string, error) {
			return f.Exec(ctx, cri.ExecRequest{ContainerID: running, Stdout: true})
		}, "", `cri: exec in container "container-2": no command`},
		{"port-forward to a missing sandbox", func() (string, error) { return f.PortForward(ctx, "nope", nil) },
			"", `cri: port-forward to sandbox "nope": cri: not found`},
	}
	for _, tc := range tests {
		got, err := tc.call()
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tc.want || gotErr != tc.wantErr {
			t.Errorf("%s = %q, %q; want %q, %q", tc.name, got, gotErr, tc.want, tc.wantErr)
		}
	}
	want := []cri.StreamingEntry{
		{URL: "http://127.0.0.1:1234/exec/1", Exec: &cri.ExecRequest{ContainerID: running, Cmd: []string{"sh"}, Stdin: true, Stdout: true}},
		{URL: "http://127.0.0.1:1234/attach/2", Attach: &cri.AttachRequest{ContainerID: running, TTY: true, Stdout: true}},
		{URL: "http://127.0.0.1:1234/portforward/3", PortForward: &cri.PortForwardEntry{SandboxID: sbID, Ports: []int32{80}}},
	}
	if diff := cmp.Diff(want, f.Sessions()); diff != "" {
		t.Errorf("Sessions (-want +got):\n%s", diff)
	}
	f.SetStreamingURL("")
	if _, err := f.PortForward(ctx, sbID, nil); err == nil {
		t.Errorf("PortForward without a streaming server: no error")
	}
	f.SetStreamingURL("http://127.0.0.1:1234")
	if err := f.StopSandbox(ctx, sbID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.PortForward(ctx, sbID, nil); err == nil {
		t.Errorf("PortForward to a stopped sandbox: no error")
	}
}
