package main

import (
	"context"
	"fmt"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"callout/internal/search"
)

// reindexCmd rebuilds the search index from the database: every report of
// every order. Documents carry versions, so running it beside a live service
// (with Elasticsearch) never puts an older state over a newer one.
func reindexCmd(ctx context.Context, e *env, args []string) error {
	fs, db := flags(e, "reindex", "reindex [--db URL]")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	index, err := openIndex(ctx, e, st, *db)
	if err != nil {
		return err
	}
	defer index.Close()
	bills, err := st.AllBills(ctx)
	if err != nil {
		return err
	}
	// A progress bar when a person watches; plain lines for logs and pipes.
	var bar *progressbar.ProgressBar
	if f, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(len(bills), progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("indexing orders"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	sync := &search.Sync{Store: st, Index: index}
	reports := 0
	for i, b := range bills {
		if err := ctx.Err(); err != nil {
			return err
		}
		bill, err := st.Bill(ctx, b.LabID, b.BillID)
		if err != nil {
			return err
		}
		if err := sync.Index.Upsert(ctx, search.Docs(b.LabID, bill)); err != nil {
			return fmt.Errorf("index order %d: %w", b.BillID, err)
		}
		reports += len(bill.Reports)
		if bar != nil {
			_ = bar.Add(1)
		} else if (i+1)%1000 == 0 {
			fmt.Fprintf(e.stderr, "indexed %d of %d orders\n", i+1, len(bills))
		}
	}
	fmt.Fprintf(e.stdout, "indexed %d reports of %d orders\n", reports, len(bills))
	return nil
}
