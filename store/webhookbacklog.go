package store

import (
	"context"
	"fmt"
	"time"
)

// WebhookBacklog is one platform's webhook receipts received and not yet applied.
type WebhookBacklog struct {
	Platform string
	Count    int64
	// Oldest is the age of the oldest of them.
	Oldest time.Duration
}

// WebhookBacklogs reads every platform's backlog of received webhook receipts, across merchants, for
// the operators' metrics: one read of the received receipts only (a backlog, not the table).
// It takes no lock, so it stays outside the merchant_id rule for locking statements.
func (db *DB) WebhookBacklogs(ctx context.Context) ([]WebhookBacklog, error) {
	rows, err := db.pool.Query(ctx, `SELECT platform, count(*), EXTRACT(EPOCH FROM now() - min(received_at))::float8
		FROM webhook_deliveries WHERE status = 'received' GROUP BY platform ORDER BY platform`)
	if err != nil {
		return nil, fmt.Errorf("db: webhook backlogs: %w", err)
	}
	defer rows.Close()
	var out []WebhookBacklog
	for rows.Next() {
		var b WebhookBacklog
		var secs float64
		if err := rows.Scan(&b.Platform, &b.Count, &secs); err != nil {
			return nil, fmt.Errorf("db: webhook backlogs: %w", err)
		}
		b.Oldest = time.Duration(max(secs, 0) * float64(time.Second))
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: webhook backlogs: %w", err)
	}
	return out, nil
}
