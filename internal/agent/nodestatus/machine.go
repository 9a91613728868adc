package nodestatus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/skiff-dev/skiff/internal/meminfo"
)

// machine is what the node reports about its hardware and OS. Gathered
// once by readMachine; fields that cannot be read are left zero.
type machine struct {
	cpus                           int64
	memoryBytes                    int64 // MemTotal
	storageBytes                   int64 // size of the file system holding RootDir
	machineID, systemUUID, bootID  string
	kernelVersion, osImage, osName string
	arch                           string
}

// machineFiles are the files readMachine reads; tests point them elsewhere.
type machineFiles struct {
	meminfo, machineID, productUUID, bootID, osRelease, osrelease string
}

var hostFiles = machineFiles{
	meminfo:     "/proc/meminfo",
	machineID:   "/etc/machine-id",
	productUUID: "/sys/class/dmi/id/product_uuid",
	bootID:      "/proc/sys/kernel/random/boot_id",
	osRelease:   "/etc/os-release",
	osrelease:   "/proc/sys/kernel/osrelease",
}

// readMachine gathers the machine's facts. Only memory and storage are
// required: without them the node would advertise nothing to schedule on.
func readMachine(files machineFiles, rootDir string) (machine, error) {
	m := machine{
		cpus:   int64(runtime.NumCPU()),
		osName: runtime.GOOS,
		arch:   runtime.GOARCH,
	}
	var err error
	if m.memoryBytes, err = memTotal(files.meminfo); err != nil {
		return machine{}, err
	}
	if m.storageBytes, err = fsSize(rootDir); err != nil {
		return machine{}, err
	}
	m.machineID = readTrimmed(files.machineID)
	m.systemUUID = readTrimmed(files.productUUID)
	m.bootID = readTrimmed(files.bootID)
	m.kernelVersion = readTrimmed(files.osrelease)
	m.osImage = prettyName(files.osRelease)
	return m, nil
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// memTotal returns MemTotal of a /proc/meminfo file, in bytes.
func memTotal(path string) (int64, error) {
	m, err := meminfo.Read(path)
	if err != nil {
		return 0, fmt.Errorf("reading memory size: %w", err)
	}
	n, ok := m["MemTotal"]
	if !ok {
		return 0, fmt.Errorf("reading memory size: no MemTotal in %s", path)
	}
	return int64(n), nil
}

// fsSize returns the size of the file system holding dir, or its nearest
// existing parent (the agent's root may not exist yet).
func fsSize(dir string) (int64, error) {
	dir = filepath.Clean(dir)
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return int64(st.Blocks) * int64(st.Bsize), nil
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, fs.ErrNotExist) || parent == dir {
			return 0, fmt.Errorf("reading the size of the file system of %s: %w", dir, err)
		}
		dir = parent
	}
}

// prettyName returns PRETTY_NAME of an os-release file, "Linux" without
// one.
func prettyName(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "Linux"
	}
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			return u
		}
		return strings.Trim(v, `"'`)
	}
	return "Linux"
}
