package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// errNoCgroups says why the agent cannot run containers where no cgroup
// file system is mounted, and the usual cause.
var errNoCgroups = errors.New("agent: no cgroup file system is mounted (runc needs one at /sys/fs/cgroup, or no container can start); " +
	"\"ip netns exec\" remounts /sys without it: to run an agent in a network namespace enter that namespace alone (nsenter --net=/run/netns/NAME skiff agent ...)")

// checkCgroups fails when the mount table at path (/proc/self/mountinfo)
// holds no cgroup or cgroup2 file system.
func checkCgroups(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("agent: reading the mount table: %w", err)
	}
	if !hasCgroupMount(string(b)) {
		return errNoCgroups
	}
	return nil
}

// hasCgroupMount reports whether a mountinfo text lists a cgroup or
// cgroup2 file system. The type is the first field after the " - "
// separator.
func hasCgroupMount(mountinfo string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		_, after, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		if f := strings.Fields(after); len(f) > 0 && (f[0] == "cgroup2" || f[0] == "cgroup") {
			return true
		}
	}
	return false
}
