// Package logs reads container logs in the CRI log format, which
// containerd writes for every container the agent starts: one record a
// line,
//
//	<RFC3339Nano time> <stdout|stderr> <P|F>[:<more tags>] <content>
//
// where F ends a line of the container's output and P is a piece of a
// longer line that the next record of the same stream continues.
//
// Read serves one `kubectl logs` request from one file: the last TailLines
// lines, the lines since SinceTime, with or without the time of each line,
// at most LimitBytes, and with Follow the lines written later, until the
// container has exited and everything it wrote was sent, or the context
// ends. It follows the file across CRI log rotation (the file renamed and
// a new one created at the path) and truncation.
//
// Inputs: the log file and a stillRunning callback. Outputs: the log text
// on the writer. It never writes or removes log files; which file belongs
// to which container (current or previous) is the caller's business.
//
// # Usage
//
//	err := logs.Read(ctx, ctr.LogPath, logs.Options{Follow: true, Timestamps: true}, w,
//		func() bool { return stillRunning(ctx, ctr.ID) })
package logs
