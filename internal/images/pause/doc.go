// Command pause is the process of skiff's pod sandbox image
// (skiff-test/pause:3.10): it holds the pod's namespaces open, reaps the
// zombies re-parented to it when it is PID 1 of a shared PID namespace, and
// exits 0 on SIGINT or SIGTERM.
//
// It reads nothing and writes nothing but exit status; it must stay a tiny,
// static binary (CGO_ENABLED=0) with no dependencies outside the standard
// library, since the images package copies it into an image.
package main
