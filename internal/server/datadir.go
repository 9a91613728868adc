package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the lock that keeps two servers off one data dir.
const lockFileName = "skiff.lock"

// ErrDataDirInUse is returned (wrapped) by Run when another process holds
// the data dir's lock.
var ErrDataDirInUse = errors.New("data dir in use")

// dataDirLock is an exclusive flock on DIR/skiff.lock, held for the life
// of the server. The kernel drops it when the process dies, so a crash
// never leaves a stale lock behind.
type dataDirLock struct {
	f *os.File
}

// lockDataDir creates dir (0700) when missing, checks it is a writable
// directory, and takes its lock without waiting.
func lockDataDir(dir string) (*dataDirLock, error) {
	if dir == "" {
		return nil, errors.New("no data dir given (--data-dir)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("checking data dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data dir %s is not a directory", dir)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("data dir %s is not writable: %w", dir, err)
		}
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = " by process " + pid
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is locked%s: another skiff server is using it: %w", dir, holder, ErrDataDirInUse)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// Record who holds the lock, for the message above. A write failure here
	// means the directory is not really writable (e.g. a full disk).
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	return &dataDirLock{f: f}, nil
}

// Unlock releases the lock. The file stays; its content is stale from then.
func (l *dataDirLock) Unlock() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("releasing data dir lock: %w", err)
	}
	return nil
}
