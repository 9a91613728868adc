package controller

import (
	"log/slog"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// Deps is what a controller's constructor receives. Constructors register
// the informers they need on Informers (so that starting the factory after
// every constructor has run starts them all) and keep the rest.
type Deps struct {
	// Client writes through the API server.
	Client kubernetes.Interface
	// Informers is shared by every controller of the manager; objects read
	// from it must be deep-copied before they are changed.
	Informers informers.SharedInformerFactory
	// Recorder records events as this controller's component (for example
	// "replicaset-controller").
	Recorder record.EventRecorder
	// Logger is already named for the controller.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
}

// Clock returns d.Now, or time.Now when it is nil.
func (d Deps) Clock() func() time.Time {
	if d.Now == nil {
		return time.Now
	}
	return d.Now
}

// Log returns d.Logger, or a logger that discards when it is nil.
func (d Deps) Log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Events returns d.Recorder, or a recorder that drops events when it is
// nil.
func (d Deps) Events() record.EventRecorder {
	if d.Recorder == nil {
		return &record.FakeRecorder{}
	}
	return d.Recorder
}
