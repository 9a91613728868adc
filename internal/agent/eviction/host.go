package eviction

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/skiff-dev/skiff/internal/meminfo"
)

// HostUsage returns a Config.Usage that reads this machine: memory from
// /proc/meminfo (working set = MemTotal - MemFree - Inactive(file), as
// upstream computes memory.available), the node file system from statfs of
// rootDir (the agent's root) and the image file system from statfs of
// imageDir (the runtime's root; the same file system is fine). A directory
// that does not exist yet is measured at its nearest existing parent.
func HostUsage(rootDir, imageDir string) func(context.Context) (Usage, error) {
	return func(context.Context) (Usage, error) {
		return readUsage("/proc/meminfo", rootDir, imageDir)
	}
}

func readUsage(meminfo, rootDir, imageDir string) (Usage, error) {
	var u Usage
	mem, err := readMeminfo(meminfo)
	if err != nil {
		return Usage{}, err
	}
	total, free, inactiveFile := mem["MemTotal"], mem["MemFree"], mem["Inactive(file)"]
	workingSet := total - min(free, total)
	workingSet -= min(inactiveFile, workingSet)
	u.MemoryCapacityBytes, u.MemoryAvailableBytes = total, total-workingSet

	node, err := statfs(rootDir)
	if err != nil {
		return Usage{}, err
	}
	bsize := uint64(node.Bsize)
	u.NodeFSCapacityBytes, u.NodeFSAvailableBytes = node.Blocks*bsize, node.Bavail*bsize
	u.NodeFSInodes, u.NodeFSInodesFree = node.Files, node.Ffree

	img, err := statfs(imageDir)
	if err != nil {
		return Usage{}, err
	}
	bsize = uint64(img.Bsize)
	u.ImageFSCapacityBytes, u.ImageFSAvailableBytes = img.Blocks*bsize, img.Bavail*bsize
	return u, nil
}

// readMeminfo returns the fields of a /proc/meminfo file in bytes.
func readMeminfo(path string) (map[string]uint64, error) {
	out, err := meminfo.Read(path)
	if err != nil {
		return nil, fmt.Errorf("eviction: reading memory usage: %w", err)
	}
	if out["MemTotal"] == 0 {
		return nil, fmt.Errorf("eviction: reading memory usage: no MemTotal in %s", path)
	}
	return out, nil
}

// statfs returns the statfs of dir's file system, or its nearest existing
// parent's.
func statfs(dir string) (syscall.Statfs_t, error) {
	dir = filepath.Clean(dir)
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		if err == nil {
			return st, nil
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, fs.ErrNotExist) || parent == dir {
			return syscall.Statfs_t{}, fmt.Errorf("eviction: statfs %s: %w", dir, err)
		}
		dir = parent
	}
}
