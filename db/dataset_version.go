package db

import (
	"context"
	"fmt"
)

const bumpDatasetVersionSQL = `UPDATE sensorhub.dataset_state SET version = version + 1, loaded_at = now()`

// BumpDatasetVersion moves the dataset version: every writer calls it in
// the transaction that changes readings, so the API's cache validators and
// response cache (told by migration 00014's NOTIFY) never outlive the data
// they describe.
func BumpDatasetVersion(ctx context.Context, q Execer) error {
	if _, err := q.Exec(ctx, bumpDatasetVersionSQL); err != nil {
		return fmt.Errorf("bump dataset version: %w", err)
	}
	return nil
}
