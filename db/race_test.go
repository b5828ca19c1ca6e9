package db

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
)

// TestLostRace checks which migration failures are tried again: conflicts
// with concurrent transactions, as goose wraps them, and nothing else.
func TestLostRace(t *testing.T) {
	partial := func(err error) error {
		return fmt.Errorf("migrate: %w", &goose.PartialError{Failed: &goose.MigrationResult{Source: &goose.Source{}}, Err: err})
	}
	cases := []struct {
		err  error
		want bool
	}{
		{partial(&pgconn.PgError{Code: "XX000", Message: "tuple concurrently deleted"}), true},
		{partial(&pgconn.PgError{Code: "XX000", Message: "tuple concurrently updated"}), true},
		{partial(&pgconn.PgError{Code: "40P01", Message: "deadlock detected"}), true},
		{partial(&pgconn.PgError{Code: "55P03", Message: "could not obtain lock"}), true},
		{partial(&pgconn.PgError{Code: "XX000", Message: "cache lookup failed for relation 123"}), false},
		{partial(&pgconn.PgError{Code: "42P01", Message: `relation "x" does not exist`}), false},
		{partial(errors.New("connection refused")), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := lostRace(c.err); got != c.want {
			t.Errorf("lostRace(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
