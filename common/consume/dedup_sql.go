package consume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SQLDedup keeps event ids in an SQL table, for stacks without Redis (the
// local stack falls back to it and says so). The row is inserted as the
// claim; a claim older than ClaimTTL is taken over (its worker crashed).
//
//	CREATE TABLE processed_events (
//	  event_id   VARCHAR(64) PRIMARY KEY,
//	  state      VARCHAR(16) NOT NULL,   -- applying | done
//	  updated_at BIGINT      NOT NULL
//	);
//
// Applied ids are kept until deleted; prune rows older than the retention
// the broker keeps events for.
type SQLDedup struct {
	DB       *sql.DB
	ClaimTTL time.Duration // default 1 minute
	// Now stamps claims and tells a stale one (nil: time.Now); tests set it
	// to age a claim without waiting.
	Now func() time.Time
}

// SQLDedupSchema creates the table (MySQL and SQLite alike).
const SQLDedupSchema = `CREATE TABLE IF NOT EXISTS processed_events (
  event_id   VARCHAR(64) PRIMARY KEY,
  state      VARCHAR(16) NOT NULL,
  updated_at BIGINT      NOT NULL
)`

func (d SQLDedup) claimTTL() time.Duration {
	if d.ClaimTTL <= 0 {
		return time.Minute
	}
	return d.ClaimTTL
}

func (d SQLDedup) now() int64 {
	if d.Now == nil {
		return time.Now().UnixMilli()
	}
	return d.Now().UnixMilli()
}

func (d SQLDedup) Begin(ctx context.Context, id string) (Claim, error) {
	now := d.now()
	// Insert the claim unless a row exists; portable across MySQL and SQLite.
	result, err := d.DB.ExecContext(ctx, `INSERT INTO processed_events (event_id, state, updated_at)
		SELECT ?, ?, ? FROM (SELECT 1 AS one) AS single WHERE NOT EXISTS (SELECT 1 FROM processed_events WHERE event_id = ?)`,
		id, claimValue, now, id)
	if err != nil {
		return Busy, fmt.Errorf("claiming event %s: %w", id, err)
	}
	if n, _ := result.RowsAffected(); n == 1 {
		return Claimed, nil
	}
	// Take over a stale claim.
	result, err = d.DB.ExecContext(ctx, `UPDATE processed_events SET updated_at = ? WHERE event_id = ? AND state = ? AND updated_at < ?`,
		now, id, claimValue, now-d.claimTTL().Milliseconds())
	if err != nil {
		return Busy, err
	}
	if n, _ := result.RowsAffected(); n == 1 {
		return Claimed, nil
	}
	var state string
	switch err := d.DB.QueryRowContext(ctx, `SELECT state FROM processed_events WHERE event_id = ?`, id).Scan(&state); {
	case errors.Is(err, sql.ErrNoRows):
		return d.Begin(ctx, id) // aborted meanwhile
	case err != nil:
		return Busy, err
	case state == doneValue:
		return Applied, nil
	default:
		return Busy, nil
	}
}

func (d SQLDedup) Done(ctx context.Context, id string) error {
	_, err := d.DB.ExecContext(ctx, `UPDATE processed_events SET state = ?, updated_at = ? WHERE event_id = ?`, doneValue, d.now(), id)
	return err
}

func (d SQLDedup) Abort(ctx context.Context, id string) error {
	_, err := d.DB.ExecContext(ctx, `DELETE FROM processed_events WHERE event_id = ? AND state = ?`, id, claimValue)
	return err
}
