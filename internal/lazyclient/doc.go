// Package lazyclient owns Clientset, a kubernetes.Interface whose API
// group clients are built on first use instead of all at once.
//
// kubernetes.NewForConfig builds a REST client for each of the fifty-odd
// group versions client-go knows. The controller manager gives each
// controller a client of its own (its user agent names the controller in
// audit logs, as upstream's does), and a controller uses two or three
// groups: built lazily, the thirty-odd clientsets of a server cost about
// a tenth of the memory.
//
// It reads a rest.Config and writes nothing; requests go wherever the
// config points (for in-process components, the API server's handler).
//
//	c, err := lazyclient.New(cfg)
//	pods, err := c.CoreV1().Pods(ns).List(ctx, opts)
package lazyclient
