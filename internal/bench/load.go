package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// stats is what one measurement saw.
type stats struct {
	ok, errors int
	latencies  []time.Duration // of successful callouts
	start      time.Time
	elapsed    time.Duration
	firstErr   error
}

// load runs clients goroutines for d: each calls do on its own orders in
// turn (client i takes orders i, i+clients, …, so two clients rarely meet on
// one order) and times every call. A call started before d ends is let
// finish; only the end of ctx cuts calls short.
func load(ctx context.Context, clients int, d time.Duration, orders int, do func(ctx context.Context, order int) error) stats {
	per := make([]stats, clients)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		mine := ownOrders(c, clients, orders)
		wg.Go(func() {
			s := &per[c]
			for k := 0; ctx.Err() == nil; k++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				err := do(ctx, mine[k%len(mine)])
				lat := time.Since(t0)
				switch {
				case err == nil:
					s.ok++
					s.latencies = append(s.latencies, lat)
				case ctx.Err() != nil:
					return // cut short by the caller, not a failure of the system
				default:
					s.errors++
					if s.firstErr == nil {
						s.firstErr = err
					}
				}
			}
		})
	}
	wg.Wait()
	total := stats{start: start, elapsed: time.Since(start)}
	for _, s := range per {
		total.ok += s.ok
		total.errors += s.errors
		total.latencies = append(total.latencies, s.latencies...)
		if total.firstErr == nil {
			total.firstErr = s.firstErr
		}
	}
	slices.Sort(total.latencies)
	return total
}

// ownOrders lists the orders client c of clients takes, by index.
func ownOrders(c, clients, orders int) []int {
	var mine []int
	for i := c; i < orders; i += clients {
		mine = append(mine, i)
	}
	if len(mine) == 0 { // fewer orders than clients: share
		mine = []int{c % orders}
	}
	return mine
}

func (s stats) result(engine string, size, clients int, mode string) Result {
	r := Result{Engine: engine, Reports: size, Clients: clients, Mode: mode, Done: s.ok, Errors: s.errors,
		P50ms: ms(percentile(s.latencies, 0.50)), P99ms: ms(percentile(s.latencies, 0.99))}
	if s.elapsed > 0 {
		r.PerSecond = float64(s.ok) / s.elapsed.Seconds()
	}
	return r
}

// percentile returns the nearest-rank p-quantile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
