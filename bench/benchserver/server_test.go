package benchserver

import (
	"os"
	"os/exec"
	"testing"
)

// Memory and MemoryParts read this test's own process: every value is
// set, and the parts add up to the resident total.
func TestMemoryReadsProcStatus(t *testing.T) {
	c := &Server{cmd: &exec.Cmd{Process: &os.Process{Pid: os.Getpid()}}}
	rss, hwm, err := c.Memory()
	if err != nil {
		t.Fatal(err)
	}
	anon, file, err := c.MemoryParts()
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || hwm < rss || anon <= 0 || file <= 0 {
		t.Fatalf("rss %d, hwm %d, anon %d, file %d KiB", rss, hwm, anon, file)
	}
	// VmRSS = RssAnon + RssFile + RssShmem, read a moment apart.
	if d := rss - anon - file; d < -4096 || d > 4096 {
		t.Errorf("rss %d KiB is not anon %d + file %d", rss, anon, file)
	}
}
