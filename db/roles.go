package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Group roles the migrations grant to; login users are made members of them.
const (
	ReaderRole = "sensorhub_reader"
	WriterRole = "sensorhub_writer"
)

// The statement is built by PostgreSQL's format() so that the name and the
// password are quoted by the server, never by string concatenation here.
const (
	loginExistsSQL = `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`
	createLoginSQL = `SELECT format('CREATE ROLE %I LOGIN IN ROLE %I', $1::text, $2::text)`
	grantLoginSQL  = `SELECT format('GRANT %I TO %I', $2::text, $1::text)`
	passwordSQL    = `SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)`
)

// EnsureLogin makes user a LOGIN role that is a member of group (ReaderRole
// or WriterRole), and sets its password when one is given. Deployments call it
// through the migrate command so that the API and ingest connect with roles
// that can do only their own work.
func EnsureLogin(ctx context.Context, dsn, user, password, group string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("ensure login %s: connect: %w", user, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, loginExistsSQL, user).Scan(&exists); err != nil {
		return fmt.Errorf("ensure login %s: %w", user, err)
	}
	stmts := []string{grantLoginSQL}
	if !exists {
		stmts = []string{createLoginSQL}
	}
	if password != "" {
		stmts = append(stmts, passwordSQL)
	}
	for _, q := range stmts {
		var ddl string
		args := []any{user, group}
		if q == passwordSQL {
			args = []any{user, password}
		}
		if err := conn.QueryRow(ctx, q, args...).Scan(&ddl); err != nil {
			return fmt.Errorf("ensure login %s: %w", user, err)
		}
		if _, err := conn.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("ensure login %s in %s: %w", user, group, err)
		}
	}
	return nil
}
