package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// ConnectionGetter reads a merchant's platform connection.
type ConnectionGetter interface {
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
}

// PlatformRouter routes the worker's connection work (pushes, reconciliation, disconnects) to the
// connection's platform: it is the PushRunner, Reconciler and Disconnector of Deps, each platform's
// own under it, keyed by platform name ("shopify", "woocommerce").
type PlatformRouter struct {
	Connections   ConnectionGetter
	Pushers       map[string]PushRunner
	Reconcilers   map[string]Reconciler
	Disconnectors map[string]Disconnector
}

// of returns the platform of a connection; found is false for one that is gone.
func (p PlatformRouter) of(ctx context.Context, merchantID, connectionID uuid.UUID) (string, bool, error) {
	c, err := p.Connections.GetConnection(ctx, merchantID, connectionID)
	if errors.Is(err, core.ErrConnectionNotFound) {
		return "", false, nil
	}
	return c.Platform, err == nil, err
}

// RunPush implements PushRunner.
func (p PlatformRouter) RunPush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error {
	platform, found, err := p.of(ctx, merchantID, connectionID)
	if err != nil || !found {
		return err
	}
	r, ok := p.Pushers[platform]
	if !ok {
		return fmt.Errorf("no pusher for platform %q", platform)
	}
	return r.RunPush(ctx, merchantID, listID, connectionID)
}

// Reconcile implements Reconciler.
func (p PlatformRouter) Reconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	platform, found, err := p.of(ctx, merchantID, connectionID)
	if err != nil || !found {
		return err
	}
	r, ok := p.Reconcilers[platform]
	if !ok {
		return fmt.Errorf("no reconciler for platform %q", platform)
	}
	return r.Reconcile(ctx, merchantID, connectionID)
}

// ReconcileAll implements Reconciler: every platform's connections.
func (p PlatformRouter) ReconcileAll(ctx context.Context) error {
	var errs []error
	for _, r := range p.Reconcilers {
		errs = append(errs, r.ReconcileAll(ctx))
	}
	return errors.Join(errs...)
}

// Disconnect implements Disconnector.
func (p PlatformRouter) Disconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	platform, found, err := p.of(ctx, merchantID, connectionID)
	if err != nil || !found {
		return err
	}
	d, ok := p.Disconnectors[platform]
	if !ok {
		return fmt.Errorf("no disconnector for platform %q", platform)
	}
	return d.Disconnect(ctx, merchantID, connectionID)
}
