package store

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm/clause"

	"github.com/coupongate/coupongate/core"
)

func channelAD(merchantID uuid.UUID, ch core.Channel) []byte {
	return []byte("channels:" + merchantID.String() + ":" + string(ch))
}

// PutChannel implements core.ChannelStore: the whole settings are sealed, the public part is kept
// readable. A channel set again replaces the merchant's settings of it.
func (db *DB) PutChannel(ctx context.Context, c core.ChannelConfig) (core.ChannelConfig, error) {
	if db.sealer == nil {
		return core.ChannelConfig{}, errors.New("db: no sealer configured for channel secrets")
	}
	row := channelRow{
		MerchantID: c.MerchantID, Channel: string(c.Channel), Settings: c.Public,
		Secrets: db.sealer.Seal(c.Secret, channelAD(c.MerchantID, c.Channel)), UpdatedAt: c.UpdatedAt.UTC(),
	}
	err := db.gorm.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "merchant_id"}, {Name: "channel"}},
		DoUpdates: clause.AssignmentColumns([]string{"settings", "secrets", "updated_at"}),
	}).Create(&row).Error
	return c, err
}

// GetChannel implements core.ChannelStore.
func (db *DB) GetChannel(ctx context.Context, merchantID uuid.UUID, ch core.Channel) (core.ChannelConfig, error) {
	c := core.ChannelConfig{MerchantID: merchantID, Channel: ch}
	var r channelRow
	if err := db.gorm.WithContext(ctx).Take(&r, "merchant_id = ? AND channel = ?", merchantID, string(ch)).Error; err != nil {
		return c, notFound(err, core.ErrChannelNotFound)
	}
	c.Public, c.UpdatedAt = r.Settings, r.UpdatedAt.UTC()
	if db.sealer == nil {
		return c, errors.New("db: no sealer configured for channel secrets")
	}
	var err error
	c.Secret, err = db.sealer.Open(r.Secrets, channelAD(merchantID, ch))
	return c, err
}

// ChannelConfigured implements core.ChannelChecker.
func (db *DB) ChannelConfigured(ctx context.Context, merchantID uuid.UUID, ch core.Channel) (bool, error) {
	var n int64
	err := db.gorm.WithContext(ctx).Model(&channelRow{}).Where("merchant_id = ? AND channel = ?", merchantID, string(ch)).
		Limit(1).Count(&n).Error
	return n > 0, err
}

func toTemplateRow(t core.Template) templateRow {
	return templateRow{
		MerchantID: t.MerchantID, ID: t.ID, ListID: t.ListID, Channel: string(t.Channel), Subject: t.Subject, Text: t.Text,
		HTML: t.HTML, Title: t.Title, Body: t.Body, Locale: t.Locale, TimeZone: t.TimeZone,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(),
	}
}

func (r templateRow) toCore() core.Template {
	return core.Template{
		MerchantID: r.MerchantID, ID: r.ID, ListID: r.ListID, Channel: core.Channel(r.Channel), Subject: r.Subject, Text: r.Text,
		HTML: r.HTML, Title: r.Title, Body: r.Body, Locale: r.Locale, TimeZone: r.TimeZone,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// CreateTemplate implements core.TemplateStore.
func (db *DB) CreateTemplate(ctx context.Context, t core.Template) error {
	row := toTemplateRow(t)
	return db.gorm.WithContext(ctx).Create(&row).Error
}

// GetTemplate implements core.TemplateStore.
func (db *DB) GetTemplate(ctx context.Context, merchantID, id uuid.UUID) (core.Template, error) {
	var r templateRow
	if err := db.gorm.WithContext(ctx).Take(&r, "merchant_id = ? AND id = ?", merchantID, id).Error; err != nil {
		return core.Template{}, notFound(err, core.ErrTemplateNotFound)
	}
	return r.toCore(), nil
}

// ListTemplates implements core.TemplateStore: newest first, one index range of the list's
// templates (templates_list_recent).
func (db *DB) ListTemplates(ctx context.Context, merchantID, listID uuid.UUID, page core.Page) ([]core.Template, string, error) {
	before, err := newestFirst(page.Cursor)
	if err != nil {
		return nil, "", err
	}
	var rows []templateRow
	if err := db.gorm.WithContext(ctx).Where("merchant_id = ? AND list_id = ? AND (created_at, id) < (?, ?)", merchantID, listID, before.At, before.ID).
		Order("created_at DESC, id DESC").Limit(page.Limit + 1).Find(&rows).Error; err != nil {
		return nil, "", err
	}
	out := make([]core.Template, len(rows))
	for i, r := range rows {
		out[i] = r.toCore()
	}
	out, next := trimPage(out, page.Limit, func(t core.Template) timePosition { return timePosition{At: t.CreatedAt, ID: t.ID} })
	return out, next, nil
}

// UpdateTemplate implements core.TemplateStore: the texts, locale and time zone (a template keeps
// its list and channel).
func (db *DB) UpdateTemplate(ctx context.Context, t core.Template) error {
	res := db.gorm.WithContext(ctx).Model(&templateRow{}).Where("merchant_id = ? AND id = ?", t.MerchantID, t.ID).
		Updates(map[string]any{
			"subject": t.Subject, "text": t.Text, "html": t.HTML, "title": t.Title, "body": t.Body, "locale": t.Locale,
			"time_zone": t.TimeZone, "updated_at": t.UpdatedAt.UTC(),
		})
	if res.Error == nil && res.RowsAffected == 0 {
		return core.ErrTemplateNotFound
	}
	return res.Error
}

// DeleteTemplate implements core.TemplateStore: the template row is locked while its unsent
// deliveries and unfinished jobs are looked for (a partial index each way).
func (db *DB) DeleteTemplate(ctx context.Context, merchantID, id uuid.UUID) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		var inUse bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries d WHERE d.merchant_id = t.merchant_id AND d.template_id = t.id
				AND d.status IN ('queued', 'sending', 'waiting'))
			OR EXISTS (SELECT 1 FROM delivery_jobs j WHERE j.merchant_id = t.merchant_id AND j.list_id = t.list_id AND j.template_id = t.id
				AND j.status IN ('uploading', 'queued', 'running'))
			FROM templates t WHERE t.merchant_id = $1 AND t.id = $2 FOR UPDATE OF t`, merchantID, id).Scan(&inUse)
		if err != nil {
			return notFound(err, core.ErrTemplateNotFound)
		}
		if inUse {
			return core.ErrTemplateInUse
		}
		_, err = tx.Exec(ctx, `DELETE FROM templates WHERE merchant_id = $1 AND id = $2`, merchantID, id)
		return err
	})
}

const deliveryColumns = `merchant_id, id, list_id, job_id, channel, template_id, campaign, recipient, status, coalesce(seq, 0),
	coalesce(code, ''), error, attempts, provider_id, created_at, sent_at`

// scanDelivery reads the deliveryColumns of a row, then into extra any columns that follow them.
func scanDelivery(row pgx.Row, extra ...any) (core.Delivery, error) {
	var d core.Delivery
	var ch string
	var recipient []byte
	err := row.Scan(append([]any{&d.MerchantID, &d.ID, &d.ListID, &d.JobID, &ch, &d.TemplateID, &d.Campaign, &recipient, &d.Status, &d.Seq,
		&d.Code, &d.Error, &d.Attempts, &d.ProviderID, &d.CreatedAt, &d.SentAt}, extra...)...)
	if err != nil {
		return d, err
	}
	d.Channel = core.Channel(ch)
	d.CreatedAt = d.CreatedAt.UTC()
	if d.SentAt != nil {
		t := d.SentAt.UTC()
		d.SentAt = &t
	}
	return d, json.Unmarshal(recipient, &d.Recipient)
}

// CreateDelivery implements core.DeliveryStore.
func (db *DB) CreateDelivery(ctx context.Context, d core.Delivery) (core.Delivery, bool, error) {
	recipient, err := json.Marshal(d.Recipient)
	if err != nil {
		return core.Delivery{}, false, err
	}
	var seq *int64
	var code *string
	if d.Status != core.DeliveryWaiting {
		seq, code = &d.Seq, &d.Code
	}
	key := core.DeliveryKey(d.Recipient)
	out, err := scanDelivery(db.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO deliveries (merchant_id, id, list_id, job_id, channel, template_id, campaign, recipient_key, recipient, status, seq, code, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (merchant_id, list_id, channel, recipient_key, campaign) DO NOTHING
			RETURNING `+deliveryColumns+`)
		SELECT * FROM ins
		UNION ALL
		SELECT `+deliveryColumns+` FROM deliveries WHERE merchant_id = $1 AND list_id = $3 AND channel = $5 AND recipient_key = $8
			AND campaign = $7 AND NOT EXISTS (SELECT 1 FROM ins)`,
		d.MerchantID, d.ID, d.ListID, d.JobID, string(d.Channel), d.TemplateID, d.Campaign, key, recipient, d.Status, seq, code, d.CreatedAt))
	if errors.Is(err, pgx.ErrNoRows) {
		// A concurrent request inserted the same delivery after this statement's snapshot.
		out, err = scanDelivery(db.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries
			WHERE merchant_id = $1 AND list_id = $2 AND channel = $3 AND recipient_key = $4 AND campaign = $5`,
			d.MerchantID, d.ListID, string(d.Channel), key, d.Campaign))
	}
	if err != nil {
		return core.Delivery{}, false, err
	}
	return out, out.ID == d.ID, nil
}

// FindDelivery implements core.DeliveryStore.
func (db *DB) FindDelivery(ctx context.Context, merchantID, listID uuid.UUID, ch core.Channel, r core.MessageRecipient, campaign string) (core.Delivery, bool, error) {
	d, err := scanDelivery(db.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE merchant_id = $1 AND list_id = $2 AND channel = $3 AND recipient_key = $4 AND campaign = $5`,
		merchantID, listID, string(ch), core.DeliveryKey(r), campaign))
	if errors.Is(err, pgx.ErrNoRows) {
		return core.Delivery{}, false, nil
	}
	return d, err == nil, err
}

// FindDeliveries implements core.DeliveryStore.
func (db *DB) FindDeliveries(ctx context.Context, merchantID, listID uuid.UUID, ch core.Channel, campaign string, rs []core.MessageRecipient) (map[string]core.Delivery, error) {
	keys := make([]string, len(rs))
	for i, r := range rs {
		keys[i] = core.DeliveryKey(r)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+`, recipient_key FROM deliveries
		WHERE merchant_id = $1 AND list_id = $2 AND channel = $3 AND recipient_key = ANY($4) AND campaign = $5`,
		merchantID, listID, string(ch), keys, campaign)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]core.Delivery)
	for rows.Next() {
		var key string
		d, err := scanDelivery(rows, &key)
		if err != nil {
			return nil, err
		}
		out[key] = d
	}
	return out, rows.Err()
}

// RetryDelivery implements core.DeliveryStore.
func (db *DB) RetryDelivery(ctx context.Context, merchantID, id uuid.UUID) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = 'queued', error = '', updated_at = now()
		WHERE merchant_id = $1 AND id = $2 AND status = 'failed' AND code IS NOT NULL`, merchantID, id)
	return err == nil && tag.RowsAffected() == 1, err
}

// RequeueDelivery implements core.DeliveryStore.
func (db *DB) RequeueDelivery(ctx context.Context, merchantID, id uuid.UUID, reason string) error {
	_, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = 'queued', error = $3, updated_at = now()
		WHERE merchant_id = $1 AND id = $2 AND status = 'sending'`, merchantID, id, truncateText(reason, 1000))
	return err
}

// FailWaiting implements core.DeliveryStore.
func (db *DB) FailWaiting(ctx context.Context, merchantID, listID uuid.UUID, reason string) error {
	_, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = 'failed', error = $3, updated_at = now()
		WHERE merchant_id = $1 AND list_id = $2 AND status = 'waiting'`, merchantID, listID, truncateText(reason, 1000))
	return err
}

// ListsWithWaitingDeliveries returns lists that have waiting deliveries, across merchants (the
// sweeper resumes them: codes may have become free without a change that told them).
func (db *DB) ListsWithWaitingDeliveries(ctx context.Context, limit int) ([]core.ListRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT merchant_id, list_id FROM deliveries WHERE status = 'waiting' LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.ListRef, error) {
		var l core.ListRef
		return l, r.Scan(&l.MerchantID, &l.ID)
	})
}

// ListDeliveries implements core.DeliveryStore: newest first, one index range of the list's
// deliveries.
func (db *DB) ListDeliveries(ctx context.Context, merchantID, listID uuid.UUID, page core.Page) ([]core.Delivery, string, error) {
	before, err := newestFirst(page.Cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE merchant_id = $1 AND list_id = $2 AND (created_at, id) < ($3, $4)
		ORDER BY created_at DESC, id DESC LIMIT $5`, merchantID, listID, before.At, before.ID, page.Limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, "", err
	}
	out, next := trimPage(out, page.Limit, func(d core.Delivery) timePosition { return timePosition{At: d.CreatedAt, ID: d.ID} })
	return out, next, nil
}

// GetDelivery implements core.DeliveryStore.
func (db *DB) GetDelivery(ctx context.Context, merchantID, listID, id uuid.UUID) (core.Delivery, error) {
	d, err := scanDelivery(db.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE merchant_id = $1 AND id = $2 AND list_id = $3`,
		merchantID, id, listID))
	if err != nil {
		return core.Delivery{}, notFound(err, core.ErrDeliveryNotFound)
	}
	return d, nil
}

// ClaimDelivery implements core.DeliveryStore: the claim and the reads of the delivery, its
// list's name, its code's expiry and its template's version are one statement. When the delivery is not queued the second
// branch reads it as it is (from the statement's snapshot: a concurrent claim shows it still
// queued), with whether a batch claimed it lately (InBatch).
func (db *DB) ClaimDelivery(ctx context.Context, merchantID, id uuid.UUID) (core.ClaimedDelivery, bool, error) {
	var out core.ClaimedDelivery
	var claimed bool
	var listName *string
	d, err := scanDelivery(db.pool.QueryRow(ctx, `WITH claimed AS (
			UPDATE deliveries SET status = 'sending', attempts = attempts + 1, batch_claimed = false, updated_at = now()
			WHERE merchant_id = $1 AND id = $2 AND status = 'queued'
			RETURNING `+deliveryColumns+`, true, false)
		SELECT d.*, l.name, cg_code_expires_at(l.expires_at, c.available_till, c.delivered_at, l.valid_for), t.updated_at FROM (
			SELECT * FROM claimed
			UNION ALL
			SELECT `+deliveryColumns+`, false, `+inBatch()+` FROM deliveries d
			 WHERE merchant_id = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM claimed)
		) d (merchant_id, id, list_id, job_id, channel, template_id, campaign, recipient, status, seq)
		LEFT JOIN code_lists l ON l.merchant_id = d.merchant_id AND l.id = d.list_id
		LEFT JOIN codes c ON c.merchant_id = d.merchant_id AND c.list_id = d.list_id AND c.seq = d.seq
		LEFT JOIN templates t ON t.merchant_id = d.merchant_id AND t.id = d.template_id`, merchantID, id),
		&claimed, &out.InBatch, &listName, &out.ExpiresAt, &out.TemplateUpdatedAt)
	if err != nil {
		return core.ClaimedDelivery{}, false, notFound(err, core.ErrDeliveryNotFound)
	}
	out.Delivery, out.ListName, out.ExpiresAt, out.TemplateUpdatedAt = d, deref(listName), ptrUTC(out.ExpiresAt), ptrUTC(out.TemplateUpdatedAt)
	return out, claimed, nil
}

// AssignDeliveryCode implements core.DeliveryStore.
func (db *DB) AssignDeliveryCode(ctx context.Context, merchantID, id uuid.UUID, seq int64, code string) error {
	_, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = 'queued', seq = $3, code = $4, updated_at = now()
		WHERE merchant_id = $1 AND id = $2 AND status = 'waiting'`, merchantID, id, seq, code)
	return err
}

// FinishDelivery implements core.DeliveryStore.
func (db *DB) FinishDelivery(ctx context.Context, merchantID, id uuid.UUID, status, providerID, reason string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = $3, provider_id = $4, error = $5,
			sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END, updated_at = now()
		WHERE merchant_id = $1 AND id = $2 AND status IN ('queued', 'sending')`, merchantID, id, status, providerID, truncateText(reason, 1000))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// WaitingDeliveries implements core.DeliveryStore.
func (db *DB) WaitingDeliveries(ctx context.Context, merchantID, listID uuid.UUID, limit int) ([]core.Delivery, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE merchant_id = $1 AND list_id = $2 AND status = 'waiting' ORDER BY created_at, id LIMIT $3`, merchantID, listID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.Delivery, error) { return scanDelivery(r) })
}

// StalledDeliveries returns queued deliveries untouched since before (their send task was lost),
// and deliveries left sending by a worker that stopped (they are failed, not sent again).
func (db *DB) StalledDeliveries(ctx context.Context, before time.Time, limit int) ([]core.WebhookRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT merchant_id, id FROM (
			(SELECT merchant_id, id, updated_at FROM deliveries WHERE status = 'queued' AND updated_at < $1 ORDER BY updated_at LIMIT $2)
			UNION ALL
			(SELECT merchant_id, id, updated_at FROM deliveries WHERE status = 'sending' AND updated_at < $1 ORDER BY updated_at LIMIT $2)
		) stalled ORDER BY updated_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.WebhookRef, error) {
		var w core.WebhookRef
		return w, r.Scan(&w.MerchantID, &w.ID)
	})
}

// CreateBulkSend implements core.BulkSendStore.
func (db *DB) CreateBulkSend(ctx context.Context, j core.BulkSend) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO delivery_jobs (merchant_id, id, list_id, channel, template_id, campaign, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, j.MerchantID, j.ID, j.ListID, string(j.Channel), j.TemplateID, j.Campaign, j.Status, j.CreatedAt)
	return err
}

// WriteBulkSendFile implements core.BulkSendStore.
func (db *DB) WriteBulkSendFile(ctx context.Context, merchantID, jobID uuid.UUID, r io.Reader, limit int64) (int64, error) {
	return db.writeChunks(ctx, `INSERT INTO delivery_job_chunks (merchant_id, job_id, n, data) VALUES ($1, $2, $3, $4)`, merchantID, jobID, r, limit)
}

// BulkSendFile implements core.BulkSendStore.
func (db *DB) BulkSendFile(ctx context.Context, merchantID, jobID uuid.UUID) (io.ReadCloser, error) {
	return &chunkReader{ctx: ctx, db: db, merchantID: merchantID, importID: jobID, size: -1,
		query: `SELECT data FROM delivery_job_chunks WHERE merchant_id = $1 AND job_id = $2 AND n = $3`}, nil
}

// SetBulkSend implements core.BulkSendStore; a finished job's file goes.
func (db *DB) SetBulkSend(ctx context.Context, merchantID, jobID uuid.UUID, status string, rowsDone, invalid int64, reason string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE delivery_jobs SET status = $3, rows_done = $4, invalid = $5, error = $6, updated_at = now()
			WHERE merchant_id = $1 AND id = $2`, merchantID, jobID, status, rowsDone, invalid, truncateText(reason, 500)); err != nil {
			return err
		}
		if status == core.JobDone || status == core.JobFailed {
			_, err := tx.Exec(ctx, `DELETE FROM delivery_job_chunks WHERE merchant_id = $1 AND job_id = $2`, merchantID, jobID)
			return err
		}
		return nil
	})
}

// bulkSendColumns are a job's columns and its deliveries' counts by status, from j and the
// shard rows of its counts c (delivery_job_counts, kept by triggers on deliveries: migrations/00024).
const bulkSendColumns = `j.merchant_id, j.id, j.list_id, j.channel, j.template_id, j.campaign, j.status, j.rows_done, j.invalid, j.error, j.created_at,
	coalesce(sum(c.queued), 0), coalesce(sum(c.sent), 0), coalesce(sum(c.failed), 0), coalesce(sum(c.waiting), 0)`

func scanBulkSend(row pgx.Row) (core.BulkSend, error) {
	var j core.BulkSend
	var ch string
	err := row.Scan(&j.MerchantID, &j.ID, &j.ListID, &ch, &j.TemplateID, &j.Campaign, &j.Status, &j.RowsDone, &j.Invalid, &j.Error, &j.CreatedAt,
		&j.Queued, &j.Sent, &j.Failed, &j.Waiting)
	j.Channel = core.Channel(ch)
	j.CreatedAt = j.CreatedAt.UTC()
	return j, err
}

// GetBulkSend implements core.BulkSendStore: the counts are the job's few shard rows.
func (db *DB) GetBulkSend(ctx context.Context, merchantID, listID, jobID uuid.UUID) (core.BulkSend, error) {
	j, err := scanBulkSend(db.pool.QueryRow(ctx, `SELECT `+bulkSendColumns+` FROM delivery_jobs j
		LEFT JOIN delivery_job_counts c ON c.merchant_id = j.merchant_id AND c.job_id = j.id
		WHERE j.merchant_id = $1 AND j.id = $2 AND j.list_id = $3 GROUP BY j.merchant_id, j.id`, merchantID, jobID, listID))
	if err != nil {
		return core.BulkSend{}, notFound(err, core.ErrBulkSendMissing)
	}
	return j, nil
}

// ListBulkSends implements core.BulkSendStore: newest first, each job with its counts.
func (db *DB) ListBulkSends(ctx context.Context, merchantID, listID uuid.UUID, page core.Page) ([]core.BulkSend, string, error) {
	before, err := newestFirst(page.Cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+bulkSendColumns+` FROM (
			SELECT * FROM delivery_jobs WHERE merchant_id = $1 AND list_id = $2 AND (created_at, id) < ($3, $4)
			ORDER BY created_at DESC, id DESC LIMIT $5) j
		LEFT JOIN delivery_job_counts c ON c.merchant_id = j.merchant_id AND c.job_id = j.id
		GROUP BY j.merchant_id, j.id, j.list_id, j.channel, j.template_id, j.campaign, j.status, j.rows_done, j.invalid, j.error, j.created_at
		ORDER BY j.created_at DESC, j.id DESC`, merchantID, listID, before.At, before.ID, page.Limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.BulkSend, error) { return scanBulkSend(r) })
	if err != nil {
		return nil, "", err
	}
	out, next := trimPage(out, page.Limit, func(j core.BulkSend) timePosition { return timePosition{At: j.CreatedAt, ID: j.ID} })
	return out, next, nil
}

// BulkSendByID implements core.BulkSendStore.
func (db *DB) BulkSendByID(ctx context.Context, merchantID, jobID uuid.UUID) (core.BulkSend, error) {
	j, err := scanBulkSend(db.pool.QueryRow(ctx, `SELECT `+bulkSendColumns+` FROM delivery_jobs j
		LEFT JOIN delivery_job_counts c ON c.merchant_id = j.merchant_id AND c.job_id = j.id
		WHERE j.merchant_id = $1 AND j.id = $2 GROUP BY j.merchant_id, j.id`, merchantID, jobID))
	if err != nil {
		return core.BulkSend{}, notFound(err, core.ErrBulkSendMissing)
	}
	return j, nil
}

// StalledBulkSends implements core.SweepStore.
func (db *DB) StalledBulkSends(ctx context.Context, before time.Time, limit int) ([]core.WebhookRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT merchant_id, id FROM delivery_jobs WHERE status IN ('queued', 'running') AND updated_at < $1
		ORDER BY updated_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.WebhookRef, error) {
		var w core.WebhookRef
		return w, r.Scan(&w.MerchantID, &w.ID)
	})
}
