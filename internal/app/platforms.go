package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/worker"
)

// platforms routes the worker's connection work (pushes, reconciliation, disconnects) to the
// connection's platform.
type platforms struct {
	conns interface {
		GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
	}
	pushers       map[string]worker.PushRunner
	reconcilers   map[string]worker.Reconciler
	disconnectors map[string]worker.Disconnector
}

// of returns the platform of a connection; found is false for one that is gone.
func (p platforms) of(ctx context.Context, merchantID, connectionID uuid.UUID) (string, bool, error) {
	c, err := p.conns.GetConnection(ctx, merchantID, connectionID)
	if errors.Is(err, core.ErrConnectionNotFound) {
		return "", false, nil
	}
	return c.Platform, err == nil, err
}

// RunPush implements worker.PushRunner.
func (p platforms) RunPush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error {
	platform, found, err := p.of(ctx, merchantID, connectionID)
	if err != nil || !found {
		return err
	}
	r, ok := p.pushers[platform]
	if !ok {
		return fmt.Errorf("no pusher for platform %q", platform)
	}
	return r.RunPush(ctx, merchantID, listID, connectionID)
}

// Reconcile implements worker.Reconciler.
func (p platforms) Reconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	platform, found, err := p.of(ctx, merchantID, connectionID)
	if err != nil || !found {
		return err
	}
	r, ok := p.reconcilers[platform]
	if !ok {
		return fmt.Errorf("no reconciler for platform %q", platform)
	}
	return r.Reconcile(ctx, merchantID, connectionID)
}

// ReconcileAll implements worker.Reconciler: every platform's connections.
func (p platforms) ReconcileAll(ctx context.Context) error {
	var errs []error
	for _, r := range p.reconcilers {
		errs = append(errs, r.ReconcileAll(ctx))
	}
	return errors.Join(errs...)
}

// Disconnect implements worker.Disconnector.
func (p platforms) Disconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	platform, found, err := p.of(ctx, merchantID, connectionID)
	if err != nil || !found {
		return err
	}
	d, ok := p.disconnectors[platform]
	if !ok {
		return fmt.Errorf("no disconnector for platform %q", platform)
	}
	return d.Disconnect(ctx, merchantID, connectionID)
}
