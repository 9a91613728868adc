// Package pull makes container images present on the node before the pod
// sync creates containers from them: the upstream kubelet's image manager.
//
// Inputs: a container's image and imagePullPolicy, the pod's
// imagePullSecrets (read from the API server with the client: secrets of
// type kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg, matched
// to the image's registry host and repository path, Docker Hub known by
// all its names), and the runtime's image service (ImageStatus and
// PullImageWithAuth through the CRI). Outputs: pulls through the runtime,
// events on the pod (Pulling, Pulled, Failed, BackOff, ErrImageNeverPull,
// InspectFailed, FailedToRetrieveImagePullSecret), and *Error values whose
// Reason the pod status shows as the container's waiting reason.
//
// State: a back-off per pod and image after failed pulls (10 s doubling
// to 5 min, forgotten after 10 min without failures) and the pulls under
// way, which concurrent callers share. It never writes to the API server
// and never removes images.
//
// # Usage
//
//	p := pull.New(runtime, client, recorder, logger)
//	ref, err := p.Ensure(ctx, pod, &pod.Spec.Containers[i])
//	var perr *pull.Error
//	if errors.As(err, &perr) {
//		// waiting reason perr.Reason, message perr.Message; retry later
//	}
package pull
