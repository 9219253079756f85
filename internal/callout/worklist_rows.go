package callout

// WorklistRows is what the worklist shows of one page's rows beyond what
// the worklist query returns: read for the page's orders and reports only,
// by their ids, so its cost is bounded by the page, not the lab.
type WorklistRows struct {
	// Parameters are the reports' parameters, by report id.
	Parameters map[int64][]Parameter
	// ReferralPhone is each order's referral phone number, by order id.
	ReferralPhone map[int64]string
	// FailedDeliveries counts each order's failed email and fax copies.
	FailedDeliveries map[int64]int
	// LastDone is the newest done callout record of the page's reports,
	// by order id.
	LastDone map[int64]Record
}

// MaxWorklistRowParameters bounds the parameters read for one worklist
// page: an order of hundreds of tests still shows its first ones.
const MaxWorklistRowParameters = 2000
