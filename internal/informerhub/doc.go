// Package informerhub owns Hub: one informer per resource for every
// component that runs inside the skiff server's process (the API server's
// own authorizers and admission, the scheduler, the controller manager,
// cluster DNS, the flow-control configuration).
//
// Each of those components used to build its own informer factory, so an
// idle server kept about ninety in-process watches, forty of them
// duplicates: every pod event was decoded and cached three times, and each
// watch cost eight goroutines and its buffers. Through a Hub they share one
// watch and one cache per resource.
//
// It reads the API through the client it is given (the server's own
// loopback identity) and writes nothing. Components still write as their own
// users; only their reads go through the shared cache. Components run on
// their own (`skiff scheduler`, `skiff controller-manager`) keep a factory of
// their own under their own identity.
//
// # Lifetimes
//
// The hub's informers run until the context given to New is done, however
// often a component starts and stops (a leader-elected component restarts
// on every term). A component takes a Scope for one run: a
// SharedInformerFactory whose Start starts informers under the hub's
// context, not the caller's, and whose Shutdown removes the event handlers
// the run added instead of stopping the informers.
//
//	hub := informerhub.New(serverCtx, adminClient, 12*time.Hour)
//	f := hub.Scope()                 // for one run of one component
//	pods := f.Core().V1().Pods()     // the hub's pod informer
//	pods.Informer().AddEventHandler(h)
//	f.StartWithContext(runCtx)       // starts it under serverCtx
//	f.WaitForCacheSync(runCtx.Done())
//	<-runCtx.Done()
//	f.Shutdown()                     // h gets no more events
//
// Objects in the cache are shared by every component: none may mutate
// them (the rule of any shared informer). Indexers are shared too: an
// index name is claimed by the first component that adds it, and a later
// AddIndexers with the same name is taken to be the same function and
// skipped, so names must say whose index it is.
package informerhub
