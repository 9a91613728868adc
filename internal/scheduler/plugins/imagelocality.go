package plugins

import (
	"context"
	"strings"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// ImageLocality prefers nodes that already have the pod's images,
// weighting each image by its size and by how widely it is spread (so
// that one node holding a rare image does not attract every pod).
type ImageLocality struct{}

var (
	_ framework.PreScorePlugin = ImageLocality{}
	_ framework.ScorePlugin    = ImageLocality{}
)

// Thresholds from upstream: below 23MB the score is 0, at 1000MB per
// container it is MaxNodeScore.
const (
	mb                   int64 = 1024 * 1024
	imageMinThreshold          = 23 * mb
	imageMaxPerContainer       = 1000 * mb
)

// Name implements framework.Plugin.
func (ImageLocality) Name() string { return ImageLocalityName }

// Score implements framework.ScorePlugin. It needs the snapshot's image
// counts, which it reads through the NodeInfo's snapshot handed to
// PreScore.
func (ImageLocality) Score(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	snap, _ := state.Read(imageLocalityKey).(*framework.Snapshot)
	if snap == nil || len(node.Node().Status.Images) == 0 {
		return 0, nil
	}
	total := snap.NumNodes()
	var sum int64
	containers := 0
	for _, img := range containerImages(pod) {
		{
			containers++
			name := normalizedImageName(img)
			for _, have := range node.Node().Status.Images {
				if raw, ok := matchName(have.Names, name); ok {
					spread := float64(snap.ImageNodes[raw]) / float64(total)
					sum += int64(float64(have.SizeBytes) * spread)
					break
				}
			}
		}
	}
	max := imageMaxPerContainer * int64(containers)
	switch {
	case sum < imageMinThreshold:
		sum = imageMinThreshold
	case sum > max:
		sum = max
	}
	if max <= imageMinThreshold {
		return 0, nil
	}
	return framework.MaxNodeScore * (sum - imageMinThreshold) / (max - imageMinThreshold), nil
}

const imageLocalityKey = "ImageLocality/snapshot"

// PreScore implements framework.PreScorePlugin: it keeps the snapshot
// for the image spread counts. When no node reports an image, every
// score would be 0 (an image's weight is the share of nodes holding it),
// so it skips.
func (ImageLocality) PreScore(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, snap *framework.Snapshot, _ []*framework.NodeInfo) *framework.Status {
	if len(snap.ImageNodes) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(imageLocalityKey, snap)
	return nil
}

func containerImages(pod *framework.PodInfo) []string {
	out := make([]string, 0, len(pod.Pod.Spec.Containers))
	for i := range pod.Pod.Spec.Containers {
		out = append(out, pod.Pod.Spec.Containers[i].Image)
	}
	return out
}

func matchName(names []string, name string) (string, bool) {
	for _, n := range names {
		if n == name || normalizedImageName(n) == name {
			return n, true
		}
	}
	return "", false
}

// normalizedImageName adds ":latest" to an image without a tag or digest.
func normalizedImageName(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	last := name[strings.LastIndex(name, "/")+1:]
	if !strings.Contains(last, ":") {
		return name + ":latest"
	}
	return name
}
