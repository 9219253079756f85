package hl7

import "fmt"

// Numbering says which of an order's numbers is the Order ID a lab knows
// its orders by.
type Numbering string

// The numberings a lab can choose.
const (
	// NumberPlacer uses the placer order number (ORC-2, else OBR-2): the
	// number of the system that ordered the test.
	NumberPlacer Numbering = "placer"
	// NumberFiller uses the filler order number (ORC-3, else OBR-3): the
	// lab's own accession number.
	NumberFiller Numbering = "filler"
	// NumberAuto uses the placer number when the order has one, else the
	// filler number: many senders leave ORC-2 and OBR-2 empty for orders
	// the lab itself created.
	NumberAuto Numbering = "auto"
)

// ParseNumbering reads "placer", "filler" or "auto".
func ParseNumbering(s string) (Numbering, error) {
	switch n := Numbering(s); n {
	case NumberPlacer, NumberFiller, NumberAuto:
		return n, nil
	}
	return "", fmt.Errorf("order numbering %q: want placer, filler or auto", clip(s, 20))
}

// OrderNumber returns the order's Order ID under numbering n, and the other
// number, which Callout keeps as the accession number. Under NumberAuto an
// order without placer number has the filler number as Order ID and no
// other number. An unknown n is taken as NumberPlacer.
func (o *ORUOrder) OrderNumber(n Numbering) (id, other string) {
	switch {
	case n == NumberFiller:
		return o.FillerOrderNumber, o.PlacerOrderNumber
	case n == NumberAuto && o.PlacerOrderNumber == "":
		return o.FillerOrderNumber, ""
	}
	return o.PlacerOrderNumber, o.FillerOrderNumber
}

// CheckOrderNumbers returns a *ParseError (101, required field missing)
// locating the first order that has no Order ID under numbering n: ORC-2 or
// OBR-2 for NumberPlacer, ORC-3 or OBR-3 for NumberFiller. It never fails
// for NumberAuto, because ParseORU refuses orders without any number.
func (o *ORU) CheckOrderNumbers(n Numbering) error {
	for i := range o.Orders {
		order := &o.Orders[i]
		if id, _ := order.OrderNumber(n); id != "" {
			continue
		}
		field, name := 2, "placer order number (ORC-2/OBR-2)"
		if n == NumberFiller {
			field, name = 3, "filler order number (ORC-3/OBR-3)"
		}
		at := order.OBR.At(field)
		if order.ORC.Segment != "" {
			at = order.ORC.At(field)
		}
		return refuse(at, CodeRequiredFieldMissing, "order %d (test %s) has no %s, which this lab uses as the Order ID",
			i+1, clip(order.TestID, 40), name)
	}
	return nil
}
