// Command couponctl is the operator's tool: create merchants, rotate their keys, apply migrations.
//
//	couponctl merchant create --name NAME [--json]
//	couponctl keys rotate --merchant ID --kind admin|storefront [--grace 24h] [--json]
//	couponctl migrate
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/app"
	"github.com/coupongate/coupongate/store"
)

const usage = `usage:
  couponctl merchant create --name NAME [--json]   create a merchant; prints its keys once
  couponctl keys rotate --merchant ID --kind admin|storefront [--grace 24h] [--json]
                                                    replace a key; prints the new one once; the old
                                                    one works for --grace (default 0, at most 720h)
  couponctl migrate                                 create the database if missing and apply migrations`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "couponctl:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	cfg.LogFormat = "text"
	if cfg.LogLevel == "info" {
		cfg.LogLevel = "warn" // keep stdout clean for --json; migrations still log when asked
	}
	log := app.NewLogger(cfg)
	switch {
	case len(args) >= 2 && args[0] == "merchant" && args[1] == "create":
		return merchantCreate(ctx, cfg, log, args[2:], out)
	case len(args) >= 2 && args[0] == "keys" && args[1] == "rotate":
		return keysRotate(ctx, cfg, log, args[2:], out)
	case len(args) == 1 && args[0] == "migrate":
		if err := store.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
		if err := store.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
			return err
		}
		fmt.Fprintln(out, "migrations applied")
		return nil
	}
	return usageError("unknown command")
}

func merchantCreate(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("merchant create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the merchant's name")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if *name == "" {
		return usageError("--name is required")
	}
	if err := store.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	if err := store.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, 2, log)
	if err != nil {
		return err
	}
	defer db.Close()
	m, keys, err := core.NewMerchants(db).Create(ctx, *name)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(out).Encode(map[string]string{
			"merchant_id": m.ID.String(), "api_key": keys.APIKey, "storefront_key": keys.StorefrontKey,
		})
	}
	fmt.Fprintf(out, "merchant %q created\n  merchant_id:    %s\n  api_key:        %s\n  storefront_key: %s\nThe keys are shown once; store them now.\n",
		m.Name, m.ID, keys.APIKey, keys.StorefrontKey)
	return nil
}

func keysRotate(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	merchant := fs.String("merchant", "", "the merchant's id")
	kind := fs.String("kind", "", "admin or storefront")
	grace := fs.Duration("grace", 0, "how long the replaced key keeps working (0 to 720h)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument " + fs.Arg(0))
	}
	id, err := uuid.Parse(*merchant)
	if err != nil {
		return usageError("--merchant must be a merchant id (a uuid)")
	}
	k, err := core.ParseKeyKind(*kind)
	if err != nil {
		return usageError("--kind must be admin or storefront")
	}
	if *grace < 0 || *grace > core.MaxKeyGrace {
		return usageError("--grace must be from 0 to 720h (30 days)")
	}
	if err := store.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, 2, log)
	if err != nil {
		return err
	}
	defer db.Close()
	rotated, err := core.NewMerchants(db).RotateKey(ctx, id, k, *grace)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(out).Encode(map[string]string{
			"merchant_id": id.String(), "kind": string(rotated.Kind), "key": rotated.Key,
			"previous_key_expires_at": rotated.PreviousExpiresAt.Format(time.RFC3339Nano),
		})
	}
	fmt.Fprintf(out, "%s key of merchant %s rotated\n  key: %s\n  the previous key works until %s\nThe key is shown once; store it now.\n",
		rotated.Kind, id, rotated.Key, rotated.PreviousExpiresAt.Format(time.RFC3339))
	return nil
}
