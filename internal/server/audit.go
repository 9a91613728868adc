package server

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/skiff-dev/skiff/internal/audit"
)

// Audit log defaults: on, at Metadata, in the data dir, 100 MB x 3.
const (
	AuditLogFileName       = "audit.log"
	DefaultAuditMaxSizeMB  = 100
	DefaultAuditMaxBackups = 3
)

// AuditConfig is the audit log part of Config, embedded in it. The zero
// value logs at Metadata to DataDir/audit.log, rotated at 100 MB with 3
// backups (the issue asks for metadata by default; upstream logs nothing
// unless given a path).
type AuditConfig struct {
	// AuditLogPath is the log file; empty means DataDir/audit.log and
	// "-" standard output.
	AuditLogPath string
	// AuditLevel is the most a request gets (see internal/audit); empty
	// means Metadata, None turns the log off.
	AuditLevel audit.Level
	// AuditMaxSizeMB rotates the file at this size; 0 means
	// DefaultAuditMaxSizeMB, negative never rotates.
	AuditMaxSizeMB int
	// AuditMaxBackups is how many rotated files are kept; 0 means
	// DefaultAuditMaxBackups, negative none.
	AuditMaxBackups int
}

// newAuditLogger opens the audit log c describes, or returns nil when
// the level is None. The caller closes it after the API server stopped
// (Close on a nil Logger is a no-op).
func newAuditLogger(dataDir string, c AuditConfig, logger *slog.Logger) (*audit.Logger, error) {
	level := c.AuditLevel
	if level == "" {
		level = audit.LevelMetadata
	}
	if level == audit.LevelNone {
		return nil, nil
	}
	path := c.AuditLogPath
	if path == "" {
		path = filepath.Join(dataDir, AuditLogFileName)
	}
	size := c.AuditMaxSizeMB
	switch {
	case size == 0:
		size = DefaultAuditMaxSizeMB
	case size < 0:
		size = 0
	}
	backups := c.AuditMaxBackups
	switch {
	case backups == 0:
		backups = DefaultAuditMaxBackups
	case backups < 0:
		backups = 0
	}
	l, err := audit.New(audit.Config{Path: path, Level: level, MaxSizeMB: size, MaxBackups: backups, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return l, nil
}
