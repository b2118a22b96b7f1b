package service

import (
	"context"

	"timd/internal/im"
)

// rebuildBatch is how many accounts one Apply call carries during a rebuild.
const rebuildBatch = 4096

// RebuildIndex feeds every stored account of every app to sink as Upsert
// changes, the same input the store's write path produces, and returns how
// many accounts it fed. Call it before serving.
func RebuildIndex(ctx context.Context, store im.Store, sink im.ChangeSink) (int, error) {
	apps, err := store.Apps(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, app := range apps {
		batch := make([]im.Change, 0, rebuildBatch)
		err := store.ScanProfiles(ctx, app.SDKAppID, func(p im.Profile) error {
			batch = append(batch, im.Change{App: app.SDKAppID, Op: im.ChangeUpsert, ID: p.Account.ID,
				Type: p.Account.Type, Ordinal: p.Account.Ordinal, Owner: p.Account.Owner, NewAttrs: p.Attrs, NewTags: p.Tags})
			if len(batch) == rebuildBatch {
				sink.Apply(batch)
				total += len(batch)
				batch = make([]im.Change, 0, rebuildBatch)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		sink.Apply(batch)
		total += len(batch)
	}
	return total, nil
}
