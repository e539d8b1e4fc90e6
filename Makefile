# Coupongate. `make run` migrates, then starts gateway and worker; `make test` runs every test
# against the local PostgreSQL and Redis; `make bench` measures the hot paths beside the raw
# PostgreSQL limits.
GO        ?= go
BIN       := bin
PKGS      := ./...
BENCHTIME ?= 1x

.PHONY: run build test test-ha bench pgo lint lint-openapi fuzz generate clean testdb-clean screenshots

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## run: build, apply the migrations (couponctl migrate, which creates the database when missing),
## then start the worker and the gateway (Ctrl-C stops both); neither migrates by itself
run: build
	./$(BIN)/couponctl migrate
	@echo "gateway on $${HTTP_ADDR:-:8080}, worker alongside; Ctrl-C stops both"
	@./$(BIN)/worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' INT TERM EXIT; \
	./$(BIN)/gateway

## test: the whole suite (fuzz seed corpora included), against the real PostgreSQL and Redis
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -p 2 -timeout 14m $(PKGS)

## test-ha: the tests that start engines of their own beyond the local PostgreSQL and Redis (a Redis
## Cluster of three masters with a replica each, PostgreSQL with pg_auto_failover) and fail them over
test-ha:
	$(GO) test -count=1 -p 1 -tags ha -timeout 40m ./internal/hatest/...

## bench: the figures of the README's Benchmarks table (see bench/README.md)
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 90m -count 1 ./bench/

## pgo: profile-guided optimisation. Runs the hot-path benches with a CPU profile of every gateway
## and worker they start, and merges them into cmd/gateway/default.pgo and cmd/worker/default.pgo,
## which `go build` then optimises with (commit them; `BENCH_PGO=off make bench` measures without).
PGO_BENCHES ?= Benchmark(Allocate|Validate|PaidOrders|ShopifyIntake|WooCommerceIntake|BulkEmail100k|Import1M|WooCommercePush100k|RedeemLinks)$$
pgo:
	rm -rf .pgo && mkdir -p .pgo
	BENCH_CPU_PROFILE_DIR=$(CURDIR)/.pgo BENCH_RUNS=1 BENCH_ALLOCATIONS=60000 BENCH_WEBHOOKS=20000 \
	BENCH_WOO_WEBHOOKS=20000 BENCH_EMAILS=20000 BENCH_WOO_PUSH_CODES=50000 \
	$(GO) test -run '^$$' -bench '$(PGO_BENCHES)' -benchtime 1x -timeout 60m -count 1 ./bench/
	$(GO) tool pprof -proto .pgo/gateway-*.pprof > cmd/gateway/default.pgo
	$(GO) tool pprof -proto .pgo/worker-*.pprof > cmd/worker/default.pgo
	rm -rf .pgo

## screenshots: the README's pictures (docs/screenshots/*.png), taken by the dashboard's browser journeys
screenshots:
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestJourney' ./internal/dashboardtest/

## fuzz: run every fuzz target for a while (FUZZTIME, default 30s); `make test` runs their seed corpora
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$target in $$pkg"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $${FUZZTIME:-30s} $$pkg || exit 1; \
		done; \
	done

## generate: regenerate generated code (the genqlient Shopify Admin client)
generate:
	$(GO) generate ./integrations/...

## k8s-schemas: the JSON schemas deploy/kubernetes is validated against (kubeconform, offline, in
## deploy/deploy_test.go), made from the OpenAPI of Kubernetes K8S_VERSION (module k8s.io/kubernetes)
K8S_VERSION ?= v1.34.4
k8s-schemas:
	rm -f deploy/kubernetes/schemas/*.json
	$(GO) run ./deploy/schemagen -kubernetes $(K8S_VERSION) -manifests deploy/kubernetes -out deploy/kubernetes/schemas

## lint: gofmt, go vet, and the layering rule (core imports no adapter)
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet $(PKGS)
	@! $(GO) list -deps ./core/... | grep -E 'gin-gonic|gorm.io|hibiken/asynq|coupongate/(integrations|store|api|worker)' || (echo "core must not import adapters"; exit 1)

## lint-openapi: lint api/openapi.yaml with Redocly's recommended rules (redocly.yaml); needs npx
REDOCLY_CLI ?= @redocly/cli@2.77.0
lint-openapi:
	npx --yes $(REDOCLY_CLI) lint --format=stylish api/openapi.yaml

clean:
	rm -rf $(BIN)

## testdb-clean: drop the idle test databases and templates that killed test runs left behind
testdb-clean:
	psql "$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}" -Atc \
	  "SELECT datname FROM pg_database d WHERE (datname LIKE 'cg\_test\_%' OR datname LIKE 'cg\_template\_%') \
	   AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)" | \
	while read -r db; do \
	  psql "$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}" -qc "ALTER DATABASE \"$$db\" IS_TEMPLATE false" -c "DROP DATABASE IF EXISTS \"$$db\""; \
	done
