// Package store is Coupongate's PostgreSQL adapter: it implements core's store ports on one pgx
// pool (pgxpool), shared by gorm (through database/sql, see Open) and by pgx statements. Every
// statement that locks or changes rows names merchant_id, the tenant and the distribution column
// on Citus; migrations/citus_locks_test.go reads this package's SQL and gorm chains and fails on
// one that does not. The goose migrations in migrations/ own the schema: nothing here runs
// AutoMigrate.
//
// # gorm: plain CRUD
//
// The tables a merchant edits row by row go through the gorm models of models.go, which name each
// column and the primary key and so document those tables:
//
//   - merchants (merchants.go): create, get.
//   - code_lists' plain fields (lists.go): create (with the counter shards and a fixed list's
//     code in the same transaction), get, oldest-first paging, update and archive under the row
//     lock (clause.Locking); the counts beside them are summed from list_counters.
//   - batches (batches.go): get, paging by number.
//   - templates (messaging.go): create, get, newest-first paging, update.
//   - channels (messaging.go): upsert (ON CONFLICT on the primary key), get, configured.
//   - webhook_endpoints (outbound.go): get, list, delete with the endpoint's pending messages.
//   - redeem_links (redeemlinks.go): create with the counter shards, get and list with the
//     hand-out count, by slug, update under the row lock, delete.
//   - dashboard_users and dashboard_sessions (users.go): the sign-in route's user, a user, the
//     team, a session with its user; create, touch and delete a session.
//
// Each call takes the caller's context (db.gorm.WithContext(ctx)); nothing keeps a context.
// "Not found" is gorm.ErrRecordNotFound, mapped by notFound to the same core error as pgx's
// ErrNoRows, and times are read back in UTC.
//
// # pgx: hot paths, and what decides under locks
//
// These stay pgx, each for the benchmark in bench/ that measures it (make bench, README's
// Benchmarks table):
//
//   - Allocation (allocation.go): a group of hand-outs of one list in one transaction of two
//     round trips, decided by core.AllocationLedger.Decide; BenchmarkAllocate. Redeem links'
//     hand-outs: BenchmarkRedeemLinks.
//   - Validation look-ups (codelookup.go): grouped into one statement by groupcommit;
//     BenchmarkValidate.
//   - Redemption (redemption.go): the paid-order path; BenchmarkPaidOrders.
//   - Imports and generation (codeinsert.go, imports.go, CreateBatch in batches.go): COPY FROM
//     and set-based inserts; BenchmarkImport1M, BenchmarkImport10M, BenchmarkGenerate1M.
//   - Exports and the code search (ExportCodes and the searches in codes.go, ExportBatch in
//     batches.go): COPY TO streamed to the client, index-ordered keyset reads; BenchmarkExport1M,
//     BenchmarkDashboard10M.
//   - Platform webhooks: the intake and the batches that apply them (webhooks.go, webhookbatch.go,
//     woocommerce.go); BenchmarkShopifyIntake, BenchmarkWooCommerceIntake.
//   - Pushes of codes to the shops (pushes.go): BenchmarkShopifyPush100k,
//     BenchmarkWooCommercePush100k.
//   - Bulk sends and message deliveries (messaging.go's deliveries and bulk sends;
//     deliverychunk.go, a chunk of a bulk send in one transaction decided by core.DecideChunk):
//     BenchmarkBulkEmail100k.
//
// Plain tables keep pgx where a function decides under row locks or makes a guarded update,
// which reads more plainly as the one SQL statement it is:
//
//   - DeleteList (lists.go): it checks connections, templates and pushed codes under the list's
//     lock before removing every row of the list from sixteen tables.
//   - RotateMerchantKey (merchants.go): one UPDATE moves each current key hash to the previous
//     columns.
//   - DeleteTemplate (messaging.go): the template is locked while its unsent deliveries and
//     unfinished bulk sends are looked for.
//   - CreateEndpoint and EnableEndpoint (outbound.go): they move the merchant's event cursor in
//     the same transaction with the dispatcher's statements; enabling is guarded (state =
//     'disabled').
//   - InviteUser, AcceptInvite and RemoveUser (users.go), and the scanner's settings
//     (scanner.go): each locks rows (the sign-in route, the invite, the merchant's owners) and
//     decides under the locks.
//
// The rest (connections, compliance, outgoing webhook dispatch, sweeps, secrets) is pgx written
// before this split; convert a plain read or write to gorm when you change it.
package store
