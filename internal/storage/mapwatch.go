package storage

import (
	"errors"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// MapWatch returns a watch of in's events passed through convert (views of
// a resource in another version convert each object). When convert fails,
// the watch ends with an Error event carrying the failure's Status (a 500
// unless it is an API error): the events after it would otherwise be
// missing unnoticed. Stopping the returned watch stops in.
func MapWatch(in watch.Interface, convert func(watch.Event) (watch.Event, error)) watch.Interface {
	w := &mapWatch{in: in, out: make(chan watch.Event), stop: make(chan struct{})}
	go w.run(convert)
	return w
}

type mapWatch struct {
	in   watch.Interface
	out  chan watch.Event // closed by run
	stop chan struct{}    // closed by Stop
	once sync.Once
}

func (w *mapWatch) Stop() { w.once.Do(func() { close(w.stop) }) }

func (w *mapWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *mapWatch) run(convert func(watch.Event) (watch.Event, error)) {
	defer close(w.out)
	defer w.in.Stop()
	for {
		var e watch.Event
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.in.ResultChan():
			if !ok {
				return
			}
			e = ev
		}
		out, err := convert(e)
		last := err != nil
		if last {
			out = watch.Event{Type: watch.Error, Object: errorStatus(err)}
		}
		select {
		case <-w.stop:
			return
		case w.out <- out:
		}
		if last {
			return
		}
	}
}

// errorStatus is the Status of err for a watch's Error event.
func errorStatus(err error) *metav1.Status {
	var apiStatus apierrors.APIStatus
	var st metav1.Status
	if errors.As(err, &apiStatus) {
		st = apiStatus.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	return &st
}
