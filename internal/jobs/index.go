package jobs

import (
	"context"

	"github.com/riverqueue/river"
)

// Indexer syncs an order's reports to the search index.
type Indexer interface {
	IndexBill(ctx context.Context, labID, billID int64) error
}

type indexWorker struct {
	river.WorkerDefaults[IndexBillArgs]
	index Indexer
}

func (w *indexWorker) Work(ctx context.Context, job *river.Job[IndexBillArgs]) error {
	return w.index.IndexBill(ctx, job.Args.LabID, job.Args.BillID)
}
