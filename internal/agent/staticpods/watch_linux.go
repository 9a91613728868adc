package staticpods

import (
	"encoding/binary"
	"log/slog"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// dirWatcher calls notify soon after inotify reports a change in dir. It
// is best effort: the periodic pass catches whatever it misses (changes
// behind symlinks to other directories, a directory that does not exist
// yet). ensure and close are called from Run's loop only.
type dirWatcher struct {
	dir    string
	notify func()
	log    *slog.Logger

	cur   *inotify // nil when not watching
	noted string   // the last failure logged, to log each once
}

// inotify is one inotify instance watching the directory.
type inotify struct {
	f     *os.File
	alive atomic.Bool // false once the reader stopped (dir gone, closed)
}

const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// ensure starts watching when not watching (at first, and again after the
// directory was removed or recreated).
func (w *dirWatcher) ensure() {
	if w.cur != nil && w.cur.alive.Load() {
		return
	}
	w.close()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		w.failed("inotify unavailable; polling only", err)
		return
	}
	if _, err := unix.InotifyAddWatch(fd, w.dir, watchMask); err != nil {
		unix.Close(fd)
		w.failed("cannot watch the manifest directory; polling only", err)
		return
	}
	w.noted = ""
	// A non-blocking descriptor makes a File that the runtime's poller
	// serves, so close unblocks the reader.
	in := &inotify{f: os.NewFile(uintptr(fd), "inotify:"+w.dir)}
	in.alive.Store(true)
	w.cur = in
	go w.read(in)
}

func (w *dirWatcher) failed(msg string, err error) {
	if err.Error() != w.noted {
		w.noted = err.Error()
		w.log.Info(msg, "dir", w.dir, "err", err)
	}
}

func (w *dirWatcher) read(in *inotify) {
	defer in.alive.Store(false)
	buf := make([]byte, 64*1024)
	for {
		n, err := in.f.Read(buf)
		if err != nil || n < unix.SizeofInotifyEvent {
			return
		}
		gone := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			// struct inotify_event: wd, mask, cookie, len, name[len].
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := binary.NativeEndian.Uint32(buf[off+12:])
			if mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
				gone = true
			}
			off += unix.SizeofInotifyEvent + int(nameLen)
		}
		w.notify()
		if gone {
			return
		}
	}
}

func (w *dirWatcher) close() {
	if w.cur != nil {
		w.cur.f.Close()
		w.cur = nil
	}
}
