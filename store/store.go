// The store's connection: Open makes the pgx pool and the gorm handle over it (see doc.go for
// which functions use which), and the helpers every file shares (transactions, not found, unique
// violations).

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/coupongate/coupongate/internal/groupcommit"
)

// connectTimeout bounds a new connection to PostgreSQL when DATABASE_URL sets no connect_timeout.
const connectTimeout = 5 * time.Second

// DB is the store: one pgx pool shared by gorm and the pgx fast paths.
type DB struct {
	pool *pgxpool.Pool
	sql  *sql.DB
	gorm *gorm.DB
	log  *slog.Logger
	// conflicts remembers lists that just had duplicate codes (see insertCodes).
	conflicts conflictMemory
	// sealer seals connection credentials at rest (see UseSealer).
	sealer *Sealer
	// lookups queues the code look-ups that share a statement (see lookupCode).
	lookups *groupcommit.Batcher[struct{}, *codeLookup]
	// webhookLocks bounds the connections webhook locks hold (LockMerchantWebhooks) to half the
	// pool, so the holders always find connections for their work; localWebhookLocks are the
	// locks of a pool of one connection, which cannot spare one (sync.Mutex by merchant).
	webhookLocks      chan struct{}
	localWebhookLocks sync.Map
}

// Open connects to PostgreSQL with a pool of maxConns connections.
func Open(ctx context.Context, databaseURL string, maxConns int, log *slog.Logger) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.MaxConns = int32(maxConns)
	cfg.MinConns = 1
	cfg.MaxConnIdleTime = 5 * time.Minute
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A server that does not answer at all (a dead host, a dropped route) fails a connect in
		// seconds, so the request answers 503 instead of hanging; connect_timeout in the URL wins.
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		registerUUID(conn)
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open gorm: %w", err)
	}
	db := &DB{pool: pool, sql: sqlDB, gorm: g, log: log, webhookLocks: make(chan struct{}, maxConns/2)}
	db.lookups = newCodeLookups(db)
	return db, nil
}

// Close releases the pool.
func (db *DB) Close() {
	_ = db.sql.Close()
	db.pool.Close()
}

// Pool is the pgx pool, for benchmarks and tests that measure raw PostgreSQL beside the store.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks that PostgreSQL answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// tx runs fn in a pgx transaction.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, fn)
}

// notFound maps "no rows" to the given core error and wraps everything else.
func notFound(err error, nf error) error {
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, sql.ErrNoRows) {
		return nf
	}
	return fmt.Errorf("db: %w", err)
}

// isUniqueViolation reports a unique-key violation (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
