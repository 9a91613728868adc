package pull

// Error is a failure to make an image present that pod status reports as
// a container's waiting reason.
type Error struct {
	// Reason is ErrImagePull, ImagePullBackOff, ErrImageNeverPull or
	// InvalidImageName.
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Reason + ": " + e.Message }
