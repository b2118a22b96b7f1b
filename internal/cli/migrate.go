package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"timd/internal/config"
	"timd/internal/store/postgres"
	"timd/internal/store/sqlite"
)

// migrate runs `timd migrate`: it brings the store's schema up to this
// build's and exits. On PostgreSQL it runs the embedded migrations not yet
// run (under an advisory lock, so that it is safe beside starting nodes)
// and names them; `timd serve` runs the same migrations at start-up, so
// this is for deployments that migrate before they roll out nodes. On a
// SQLite directory it opens the store, which migrates it, and closes it.
func migrate(ctx context.Context, env Env, args []string) error {
	fs := newFlags("migrate")
	store := fs.String("store", firstSet(env.Getenv("TIMD_STORE"), "./timd-data"),
		"the store: a SQLite directory `DIR` or a postgres:// URL")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if err := config.CheckStore(*store); err != nil {
		return errUsage{fmt.Errorf("--store: %w", err)}
	}
	name := config.StoreName(*store)
	if config.IsPostgres(*store) {
		applied, err := postgres.Migrate(ctx, *store, postgres.Options{})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if len(applied) == 0 {
			fmt.Fprintf(env.Stdout, "%s: schema is current; nothing to run\n", name)
			return nil
		}
		fmt.Fprintf(env.Stdout, "%s: ran %s\n", name, strings.Join(applied, ", "))
		return nil
	}
	unlock, err := sqlite.Lock(*store)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	defer unlock()
	st, err := sqlite.Open(ctx, *store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	if err := st.Close(); err != nil {
		return errors.Join(fmt.Errorf("migrate %s: close", name), err)
	}
	fmt.Fprintf(env.Stdout, "%s: schema is current\n", name)
	return nil
}
