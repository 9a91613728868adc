package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseImagesFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    imagesImportFlags
		wantErr string
	}{
		{name: "ok", args: []string{"--data-dir", "/d", "a.tar", "b.tar"}, want: imagesImportFlags{dataDir: "/d", archives: []string{"a.tar", "b.tar"}}},
		{name: "no data dir", args: []string{"a.tar"}, wantErr: "--data-dir is required"},
		{name: "no archive", args: []string{"--data-dir", "/d"}, wantErr: "no archive to import"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			got, err := parseImagesImportFlags(tt.args, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(imagesImportFlags{})); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunImagesExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "no subcommand", args: nil, want: exitUsage},
		{name: "unknown", args: []string{"frob"}, want: exitUsage},
		{name: "help", args: []string{"help"}, want: exitOK},
		{name: "build-test without out", args: []string{"build-test"}, want: exitUsage},
		{name: "import without containerd", args: []string{"import", "--data-dir", t.TempDir(), "x.tar"}, want: exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if got := runImages(tt.args, &stdout, &stderr); got != tt.want {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
		})
	}
}

func TestRunImagesBuildTest(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipping: /bin/busybox is absent (apt-get install busybox-static)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: no go command on PATH")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := runImages([]string{"build-test", "--out", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	want := "skiff-test/busybox:1.35\t" + filepath.Join(out, "busybox.tar") + "\n" +
		"skiff-test/pause:3.10\t" + filepath.Join(out, "pause.tar") + "\n" +
		"skiff-test/testserver:1\t" + filepath.Join(out, "testserver.tar") + "\n"
	if diff := cmp.Diff(want, stdout.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
