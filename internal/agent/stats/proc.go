package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/internal/meminfo"
)

// userHZ is the unit of the CPU times in /proc/stat. Linux fixes USER_HZ at
// 100 on every architecture we run on.
const userHZ = 100

// nodeCPU is the node's cumulative CPU time and boot time from /proc/stat.
type nodeCPU struct {
	busyNanos uint64
	boot      time.Time
}

// parseStat reads /proc/stat's aggregate "cpu" line: busy time is user +
// nice + system + irq + softirq + steal (idle and iowait are not busy;
// guest time is already inside user).
func parseStat(data []byte) (nodeCPU, error) {
	var out nodeCPU
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "cpu":
			if len(f) < 8 {
				return out, fmt.Errorf("stats: /proc/stat cpu line has %d fields", len(f))
			}
			var jiffies uint64
			// user nice system idle iowait irq softirq steal
			for _, i := range []int{1, 2, 3, 6, 7} {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					return out, fmt.Errorf("stats: parsing /proc/stat: %w", err)
				}
				jiffies += v
			}
			if len(f) > 8 {
				v, err := strconv.ParseUint(f[8], 10, 64)
				if err != nil {
					return out, fmt.Errorf("stats: parsing /proc/stat: %w", err)
				}
				jiffies += v
			}
			out.busyNanos = jiffies * (uint64(time.Second) / userHZ)
			found = true
		case "btime":
			if len(f) == 2 {
				if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					out.boot = time.Unix(v, 0)
				}
			}
		}
	}
	if !found {
		return out, fmt.Errorf("stats: /proc/stat has no cpu line")
	}
	return out, nil
}

// memInfo is what the node's memory stats need from /proc/meminfo.
type memInfo struct {
	total, free, available, anon uint64
}

func parseMeminfo(data []byte) (memInfo, error) {
	kv := meminfo.Parse(data)
	m := memInfo{total: kv["MemTotal"], free: kv["MemFree"], available: kv["MemAvailable"], anon: kv["AnonPages"]}
	if m.total == 0 {
		return m, fmt.Errorf("stats: /proc/meminfo has no MemTotal")
	}
	if _, ok := kv["MemAvailable"]; !ok {
		// Kernels before 3.14: approximate with free + page cache.
		m.available = kv["MemFree"] + kv["Cached"] + kv["Buffers"]
	}
	m.available = min(m.available, m.total)
	return m, nil
}

// parseLoadavg returns the number of threads from /proc/loadavg's fourth
// field ("running/total").
func parseLoadavg(data []byte) (int64, error) {
	f := strings.Fields(string(data))
	if len(f) < 4 {
		return 0, fmt.Errorf("stats: /proc/loadavg has %d fields", len(f))
	}
	_, total, ok := strings.Cut(f[3], "/")
	if !ok {
		return 0, fmt.Errorf("stats: /proc/loadavg field %q", f[3])
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stats: parsing /proc/loadavg: %w", err)
	}
	return n, nil
}

// fsInfo is a filesystem's size from statfs.
type fsInfo struct {
	capacity, available, used, inodes, inodesFree uint64
}

func statFS(path string) (fsInfo, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return fsInfo{}, fmt.Errorf("stats: statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return fsInfo{
		capacity:   st.Blocks * bs,
		available:  st.Bavail * bs,
		used:       (st.Blocks - st.Bfree) * bs,
		inodes:     st.Files,
		inodesFree: st.Ffree,
	}, nil
}

func readProc(root, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return b, nil
}
