package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckCgroups(t *testing.T) {
	const root = "52 51 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	tests := []struct {
		name      string
		mountinfo string
		want      error
	}{
		{name: "cgroup v2", mountinfo: root + "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"},
		{name: "cgroup v1", mountinfo: root + "31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"},
		{name: "ip netns exec: sysfs only", mountinfo: root + "60 52 0:50 / /sys rw - sysfs skiff-e2e rw\n", want: errNoCgroups},
		{name: "a path named cgroup is not a mount of one", mountinfo: root + "61 52 0:51 / /cgroup rw - tmpfs cgroup rw\n", want: errNoCgroups},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "mountinfo")
			if err := os.WriteFile(p, []byte(tc.mountinfo), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := checkCgroups(p); !errors.Is(err, tc.want) {
				t.Errorf("checkCgroups() = %v, want %v", err, tc.want)
			}
		})
	}
	if err := checkCgroups(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("checkCgroups of a missing file = nil, want an error")
	}
}
