// Command couponctl is the operator's tool: create merchants, invite people to their dashboards,
// rotate their keys, apply migrations.
//
//	couponctl merchant create --name NAME [--owner-email EMAIL] [--json]
//	couponctl user invite --merchant ID --email EMAIL --role owner|staff [--json]
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
  couponctl merchant create --name NAME [--owner-email EMAIL] [--json]
                                                    create a merchant; prints its keys once, and
                                                    with --owner-email the owner's invite link
  couponctl user invite --merchant ID --email EMAIL --role owner|staff [--json]
                                                    invite someone to the merchant's dashboard;
                                                    prints the link (it works once, for 72 hours)
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
	case len(args) >= 2 && args[0] == "user" && args[1] == "invite":
		return userInvite(ctx, cfg, log, args[2:], out)
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
	ownerEmail := fs.String("owner-email", "", "the owner to invite to the dashboard")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if *name == "" {
		return usageError("--name is required")
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument " + fs.Arg(0))
	}
	email := ""
	if *ownerEmail != "" {
		var err error
		if email, err = core.NormalizeEmail("owner-email", *ownerEmail); err != nil {
			return usageError("--owner-email must be an email address such as name@example.com")
		}
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
	if email != "" {
		// Refuse before making a merchant whose owner could not be invited.
		if _, taken, err := db.LoginOf(ctx, email); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("%s: %s", email, core.ErrEmailTaken.Message)
		}
	}
	m, keys, err := core.NewMerchants(db).Create(ctx, *name)
	if err != nil {
		return err
	}
	inviteURL := ""
	if email != "" {
		_, token, err := dashboardUsers(db, log).Invite(ctx, m.ID, core.InviteInput{Email: email, Role: core.RoleOwner})
		if err != nil {
			return fmt.Errorf("merchant %s was created (api_key %s, storefront_key %s), but its owner could not be invited (run couponctl user invite): %w",
				m.ID, keys.APIKey, keys.StorefrontKey, err)
		}
		inviteURL = core.InviteLink(cfg.AppURL, token)
	}
	if *asJSON {
		answer := map[string]string{
			"merchant_id": m.ID.String(), "api_key": keys.APIKey, "storefront_key": keys.StorefrontKey,
		}
		if inviteURL != "" {
			answer["invite_url"] = inviteURL
		}
		return json.NewEncoder(out).Encode(answer)
	}
	fmt.Fprintf(out, "merchant %q created\n  merchant_id:    %s\n  api_key:        %s\n  storefront_key: %s\nThe keys are shown once; store them now.\n",
		m.Name, m.ID, keys.APIKey, keys.StorefrontKey)
	if inviteURL != "" {
		fmt.Fprintf(out, "Send this link to %s to set a password for the dashboard (it works once, for 72 hours):\n  %s\n", email, inviteURL)
	}
	return nil
}

// dashboardUsers is core's user service for invites; couponctl signs nobody in, so it needs no
// sign-in throttle.
func dashboardUsers(db *store.DB, log *slog.Logger) *core.Users {
	return core.NewUsers(db, noSignIns{}, core.DefaultPasswordParams, log)
}

// noSignIns is the sign-in throttle of a process that never signs anyone in.
type noSignIns struct{}

func (noSignIns) Blocked(context.Context, uuid.UUID, string) (time.Duration, error) { return 0, nil }
func (noSignIns) Fail(context.Context, uuid.UUID, string) error                     { return nil }

func userInvite(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("user invite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	merchant := fs.String("merchant", "", "the merchant's id")
	email := fs.String("email", "", "who to invite")
	role := fs.String("role", "", "owner or staff")
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
	if _, err := core.NormalizeEmail("email", *email); err != nil {
		return usageError("--email must be an email address such as name@example.com")
	}
	if *role != string(core.RoleOwner) && *role != string(core.RoleStaff) {
		return usageError("--role must be owner or staff")
	}
	if err := store.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, 2, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.GetMerchant(ctx, id); err != nil {
		if core.IsKind(err, core.KindUnauthorized) || errors.Is(err, core.ErrMerchantNotFound) {
			return fmt.Errorf("no merchant has the id %s", id)
		}
		return err
	}
	u, token, err := dashboardUsers(db, log).Invite(ctx, id, core.InviteInput{Email: *email, Role: core.Role(*role)})
	if err != nil {
		var ce *core.Error
		if errors.As(err, &ce) {
			return errors.New(ce.Message)
		}
		return err
	}
	link := core.InviteLink(cfg.AppURL, token)
	if *asJSON {
		return json.NewEncoder(out).Encode(map[string]string{"user_id": u.ID.String(), "invite_url": link})
	}
	fmt.Fprintf(out, "%s invited as %s\n  user_id:    %s\n  invite_url: %s\nThe link works once, for 72 hours; send it to them now.\n", u.Email, u.Role, u.ID, link)
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
