package shopify

import (
	"context"
	"errors"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/integrations/shopify/admin"
)

// maxThrottleWaits bounds how many THROTTLED answers in a row a call waits out in-process
// before it gives the error back (the task then retries after the wait it names).
const maxThrottleWaits = 20

// shopCaller makes a connection's Admin API calls: it takes the access token from Tokens
// (refreshing it after a 401), paces calls by the cost bucket the shop reported so that
// THROTTLED is the exception, and waits out THROTTLED when it comes anyway.
type shopCaller struct {
	app          App
	tokens       *Tokens
	merchantID   uuid.UUID
	connectionID uuid.UUID
	shop         string

	token  string
	client *admin.Client
	// bucket as last reported, and when
	status   admin.ThrottleStatus
	statusAt time.Time
	known    bool
	sleep    func(context.Context, time.Duration) error
	now      func() time.Time
	// Waited sums the time spent waiting for the bucket.
	Waited time.Duration
}

func newShopCaller(app App, tokens *Tokens, merchantID, connectionID uuid.UUID, shop string) *shopCaller {
	return &shopCaller{app: app, tokens: tokens, merchantID: merchantID, connectionID: connectionID, shop: shop,
		sleep: sleepCtx, now: time.Now}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call runs op, which should request about cost points.
func (s *shopCaller) call(ctx context.Context, cost float64, op func(graphql.Client) error) error {
	refreshed, throttled := false, 0
	for {
		if s.client == nil {
			token, err := s.tokens.Access(ctx, s.merchantID, s.connectionID, s.shop, "")
			if err != nil {
				return err
			}
			s.token = token
			s.client = admin.NewClient(s.app.ShopURL(s.shop), s.app.APIVersion, token, s.app.HTTP)
		}
		if err := s.pace(ctx, cost); err != nil {
			return err
		}
		err := op(s.client)
		if st, ok := s.client.ThrottleStatus(); ok {
			s.status, s.statusAt, s.known = st, s.now(), true
		}
		var te *admin.ThrottledError
		switch {
		case errors.Is(err, admin.ErrUnauthorized) && !refreshed:
			refreshed = true
			token, terr := s.tokens.Access(ctx, s.merchantID, s.connectionID, s.shop, s.token)
			if terr != nil {
				return terr
			}
			s.token = token
			s.client = admin.NewClient(s.app.ShopURL(s.shop), s.app.APIVersion, token, s.app.HTTP)
			continue
		case errors.As(err, &te) && throttled < maxThrottleWaits:
			throttled++
			s.Waited += te.Wait
			if err := s.sleep(ctx, te.Wait); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// pace waits until the bucket, as last reported and restored since, holds cost points.
func (s *shopCaller) pace(ctx context.Context, cost float64) error {
	if !s.known || s.status.RestoreRate <= 0 {
		return nil
	}
	elapsed := s.now().Sub(s.statusAt).Seconds()
	available := min(s.status.MaximumAvailable, s.status.CurrentlyAvailable+elapsed*s.status.RestoreRate)
	if available >= cost {
		return nil
	}
	wait := time.Duration((cost - available) / s.status.RestoreRate * float64(time.Second))
	s.Waited += wait
	return s.sleep(ctx, wait)
}
