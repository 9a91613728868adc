package clusterroleaggregation

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs and the work queue.
const Name = "clusterrole-aggregation-controller"

// Controller keeps aggregated cluster roles' rules equal to the union of
// the rules of the cluster roles their selectors match. Run it once.
type Controller struct {
	client kubernetes.Interface
	log    *slog.Logger
	roles  rbaclisters.ClusterRoleLister
	synced []cache.InformerSynced
	loop   *reconcile.Loop
}

// New returns the controller and registers the clusterroles informer on
// deps.Informers; start the factory after calling it, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	inf := deps.Informers.Rbac().V1().ClusterRoles()
	c := &Controller{
		client: deps.Client,
		log:    log.With("controller", Name),
		roles:  inf.Lister(),
		synced: []cache.InformerSynced{inf.Informer().HasSynced},
	}
	c.loop = reconcile.New(Name, c.sync, log)
	// Any cluster role may start or stop matching any selector, so every
	// change queues every aggregated role (as upstream does).
	if _, err := inf.Informer().AddEventHandler(c.loop.HandlerFor(c.aggregatedKeys)); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	return c
}

// aggregatedKeys returns the names of all aggregated cluster roles.
func (c *Controller) aggregatedKeys(any) []string {
	roles, err := c.roles.List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, r := range roles {
		if r.AggregationRule != nil {
			keys = append(keys, r.Name)
		}
	}
	return keys
}

// Run waits for the cache, runs workers workers and blocks until ctx is
// done. It returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// sync sets the rules of the aggregated cluster role named key to the
// union of the rules of the cluster roles its selectors match, in name
// order, without duplicates. Idempotent; it writes only on a change.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	role, err := c.roles.Get(key)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting cluster role %s: %w", key, err)
	}
	if role.AggregationRule == nil {
		return 0, nil
	}
	selectors, err := selectorsOf(role)
	if err != nil {
		// Validation rejects bad selectors; retrying would not help.
		c.log.Info("invalid aggregation rule", "clusterrole", key, "err", err)
		return 0, nil
	}
	rules, err := c.union(role.Name, selectors)
	if err != nil {
		return 0, err
	}
	if equality.Semantic.DeepEqual(rules, role.Rules) {
		return 0, nil
	}
	updated := role.DeepCopy()
	updated.Rules = rules
	if _, err := c.client.RbacV1().ClusterRoles().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		// A conflict means the cache is behind; the update event will
		// queue the role again, and the error retries it meanwhile.
		return 0, fmt.Errorf("updating cluster role %s: %w", key, err)
	}
	return 0, nil
}

// selectorsOf parses an aggregated role's selectors.
func selectorsOf(role *rbacv1.ClusterRole) ([]labels.Selector, error) {
	var selectors []labels.Selector
	for i := range role.AggregationRule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&role.AggregationRule.ClusterRoleSelectors[i])
		if err != nil {
			return nil, fmt.Errorf("selector %d: %w", i, err)
		}
		selectors = append(selectors, sel)
	}
	return selectors, nil
}

// union returns the rules of the cluster roles other than name that one
// of selectors matches, in name order, deduplicated; the rules are copies.
func (c *Controller) union(name string, selectors []labels.Selector) ([]rbacv1.PolicyRule, error) {
	all, err := c.roles.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing cluster roles: %w", err)
	}
	slices.SortFunc(all, func(x, y *rbacv1.ClusterRole) int { return strings.Compare(x.Name, y.Name) })
	rules := []rbacv1.PolicyRule{}
	for _, r := range all {
		if r.Name == name {
			continue
		}
		set := labels.Set(r.Labels)
		if !slices.ContainsFunc(selectors, func(s labels.Selector) bool { return s.Matches(set) }) {
			continue
		}
		for _, rule := range r.Rules {
			if !slices.ContainsFunc(rules, func(x rbacv1.PolicyRule) bool { return equality.Semantic.DeepEqual(x, rule) }) {
				rules = append(rules, *rule.DeepCopy())
			}
		}
	}
	return rules, nil
}
