package fhir_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/require"
)

// The validators below check produced JSON against the R4 structure: every
// element must exist in the generated R4 model (decoding refuses unknown
// fields, so a misspelled element fails), codes of required bindings are
// decoded by the model's enums, and the rest is checked here by hand from the
// R4 specification: required elements, code systems and value sets of coded
// elements, primitive formats, and FHIR JSON's rule that no value is empty.

// R4 primitive formats (datatypes.html).
var (
	reID       = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	reInstant  = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)
	reDateTime = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)
	reLiteral  = regexp.MustCompile(`^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$`)
)

// Value sets (terminology.hl7.org, as bound in R4 Communication).
var (
	participationModes = []string{"ELECTRONIC", "PHYSICAL", "REMOTE", "VERBAL", "DICTATE", "FACE", "PHONE",
		"VIDEOCONF", "WRITTEN", "FAXWRIT", "HANDWRIT", "MAILWRIT", "ONLINEWRIT", "EMAILWRIT", "TYPEWRIT"}
	communicationCategories = []string{"alert", "notification", "reminder", "instruction"}
)

const (
	systemParticipationMode = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
	systemCategory          = "http://terminology.hl7.org/CodeSystem/communication-category"
)

// strict decodes raw, a resource of type typ, into v, refusing any element
// the R4 model does not have.
func strict(raw []byte, typ string, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	var rt string
	if err := json.Unmarshal(m["resourceType"], &rt); err != nil || rt != typ {
		return fmt.Errorf("resourceType is %q, want %q", rt, typ)
	}
	delete(m, "resourceType") // the model leaves it to its MarshalJSON
	rest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s is not R4: %w", typ, err)
	}
	return noEmptyValues(typ, raw)
}

// noEmptyValues enforces FHIR JSON: no null, no empty string, array or object.
func noEmptyValues(path string, raw []byte) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	var walk func(string, any) error
	walk = func(p string, v any) error {
		switch x := v.(type) {
		case nil:
			return fmt.Errorf("%s is null", p)
		case string:
			if strings.TrimSpace(x) == "" {
				return fmt.Errorf("%s is an empty string", p)
			}
		case []any:
			if len(x) == 0 {
				return fmt.Errorf("%s is an empty array", p)
			}
			for i, e := range x {
				if err := walk(fmt.Sprintf("%s[%d]", p, i), e); err != nil {
					return err
				}
			}
		case map[string]any:
			if len(x) == 0 {
				return fmt.Errorf("%s is an empty object", p)
			}
			for k, e := range x {
				if err := walk(p+"."+k, e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(path, v)
}

// checkCommunication validates raw as an R4 Communication and returns it.
func checkCommunication(raw []byte) (r4.Communication, error) {
	var c r4.Communication
	if err := strict(raw, "Communication", &c); err != nil {
		return c, err
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	// status is 1..1; the model would read a missing one as its first code.
	if _, ok := m["status"]; !ok {
		return c, fmt.Errorf("Communication.status is missing")
	}
	if c.Id == nil || !reID.MatchString(*c.Id) {
		return c, fmt.Errorf("Communication.id %v is not an id", c.Id)
	}
	if c.Meta != nil && c.Meta.LastUpdated != nil && !reInstant.MatchString(*c.Meta.LastUpdated) {
		return c, fmt.Errorf("meta.lastUpdated %q is not an instant", *c.Meta.LastUpdated)
	}
	if c.Sent != nil && !reDateTime.MatchString(*c.Sent) {
		return c, fmt.Errorf("sent %q is not a dateTime", *c.Sent)
	}
	// payload.content[x] is 1..1: exactly one of its three forms.
	var payloads []map[string]json.RawMessage
	_ = json.Unmarshal(m["payload"], &payloads)
	for i, p := range payloads {
		n := 0
		for _, k := range []string{"contentString", "contentAttachment", "contentReference"} {
			if _, ok := p[k]; ok {
				n++
			}
		}
		if n != 1 {
			return c, fmt.Errorf("payload[%d] has %d content[x], want 1", i, n)
		}
	}
	for i, mc := range c.Medium {
		if err := codedFrom(mc, systemParticipationMode, participationModes); err != nil {
			return c, fmt.Errorf("medium[%d]: %w", i, err)
		}
	}
	for i, cc := range c.Category {
		if err := codedFrom(cc, systemCategory, communicationCategories); err != nil {
			return c, fmt.Errorf("category[%d]: %w", i, err)
		}
	}
	if c.StatusReason != nil && c.StatusReason.Text == nil && len(c.StatusReason.Coding) == 0 {
		return c, fmt.Errorf("statusReason says nothing")
	}
	refs := map[string][]r4.Reference{"basedOn": c.BasedOn, "partOf": c.PartOf, "about": c.About, "recipient": c.Recipient}
	for _, one := range []struct {
		name string
		ref  *r4.Reference
	}{{"subject", c.Subject}, {"sender", c.Sender}} {
		if one.ref != nil {
			refs[one.name] = []r4.Reference{*one.ref}
		}
	}
	for name, rs := range refs {
		for i, r := range rs {
			if err := checkReference(r); err != nil {
				return c, fmt.Errorf("%s[%d]: %w", name, i, err)
			}
		}
	}
	for i, n := range c.Note {
		if n.Text == "" {
			return c, fmt.Errorf("note[%d].text is required", i)
		}
	}
	return c, nil
}

// codedFrom checks that every coding of cc is from system and its code one of codes.
func codedFrom(cc r4.CodeableConcept, system string, codes []string) error {
	if len(cc.Coding) == 0 {
		return fmt.Errorf("no coding")
	}
	for _, cd := range cc.Coding {
		if cd.System == nil || *cd.System != system {
			return fmt.Errorf("coding system %v is not %s", cd.System, system)
		}
		if cd.Code == nil || !slices.Contains(codes, *cd.Code) {
			return fmt.Errorf("code %v is not in %s", cd.Code, system)
		}
	}
	return nil
}

// checkReference checks a Reference: a literal one is Type/id with a resource
// type R4 knows, agreeing with Reference.type; every one says something.
func checkReference(r r4.Reference) error {
	if r.Reference == nil && r.Identifier == nil && r.Display == nil {
		return fmt.Errorf("empty reference")
	}
	var typ string
	if r.Reference != nil {
		m := reLiteral.FindStringSubmatch(*r.Reference)
		if m == nil {
			return fmt.Errorf("reference %q is not Type/id", *r.Reference)
		}
		typ = m[1]
	}
	if r.Type != nil {
		if typ != "" && *r.Type != typ {
			return fmt.Errorf("type %q disagrees with reference %q", *r.Type, *r.Reference)
		}
		typ = *r.Type
	}
	if typ != "" {
		var rt r4.ResourceType
		if err := json.Unmarshal([]byte(`"`+typ+`"`), &rt); err != nil {
			return fmt.Errorf("%q is not an R4 resource type", typ)
		}
	}
	return nil
}

// checkBundle validates raw as an R4 searchset Bundle of Communications and
// returns the entries' resources.
func checkBundle(raw []byte) (r4.Bundle, []r4.Communication, error) {
	var b r4.Bundle
	if err := strict(raw, "Bundle", &b); err != nil {
		return b, nil, err
	}
	if b.Type != r4.BundleTypeSearchset {
		return b, nil, fmt.Errorf("Bundle.type is %s, want searchset", b.Type.Code())
	}
	self := false
	for _, l := range b.Link {
		self = self || l.Relation == "self"
		if !strings.HasPrefix(l.Url, "http") {
			return b, nil, fmt.Errorf("link %s %q is not absolute", l.Relation, l.Url)
		}
	}
	if !self {
		return b, nil, fmt.Errorf("no self link")
	}
	var out []r4.Communication
	seen := map[string]bool{}
	for i, e := range b.Entry {
		c, err := checkCommunication(e.Resource)
		if err != nil {
			return b, nil, fmt.Errorf("entry[%d]: %w", i, err)
		}
		if e.FullUrl == nil || !strings.HasSuffix(*e.FullUrl, "/Communication/"+*c.Id) || seen[*e.FullUrl] {
			return b, nil, fmt.Errorf("entry[%d].fullUrl %v is not the resource's unique URL (bdl-7)", i, e.FullUrl)
		}
		seen[*e.FullUrl] = true
		if e.Search == nil || e.Search.Mode == nil || *e.Search.Mode != r4.SearchEntryModeMatch {
			return b, nil, fmt.Errorf("entry[%d].search.mode is not match", i)
		}
		out = append(out, c)
	}
	return b, out, nil
}

// checkOutcome validates raw as an R4 OperationOutcome.
func checkOutcome(raw []byte) (r4.OperationOutcome, error) {
	var o r4.OperationOutcome
	if err := strict(raw, "OperationOutcome", &o); err != nil {
		return o, err
	}
	if len(o.Issue) == 0 {
		return o, fmt.Errorf("an OperationOutcome has at least one issue")
	}
	return o, nil
}

// checkCapability validates raw as an R4 CapabilityStatement, with the
// invariants cpb-1, cpb-2 and cpb-14.
func checkCapability(raw []byte) (r4.CapabilityStatement, error) {
	var cs r4.CapabilityStatement
	if err := strict(raw, "CapabilityStatement", &cs); err != nil {
		return cs, err
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	for _, k := range []string{"status", "date", "kind", "fhirVersion", "format"} {
		if _, ok := m[k]; !ok {
			return cs, fmt.Errorf("CapabilityStatement.%s is required", k)
		}
	}
	if !reDateTime.MatchString(cs.Date) {
		return cs, fmt.Errorf("date %q is not a dateTime", cs.Date)
	}
	if len(cs.Rest) == 0 && len(cs.Messaging) == 0 && len(cs.Document) == 0 {
		return cs, fmt.Errorf("cpb-1: rest, messaging or document is required")
	}
	if cs.Kind == r4.CapabilityStatementKindInstance && cs.Implementation == nil {
		return cs, fmt.Errorf("cpb-14: an instance statement has an implementation")
	}
	return cs, nil
}

// TestValidatorsRefuseWhatR4Refuses keeps the validators honest: each
// mutation of a valid Communication must fail.
func TestValidatorsRefuseWhatR4Refuses(t *testing.T) {
	t.Parallel()
	valid := `{"resourceType":"Communication","id":"1","status":"completed",
		"medium":[{"coding":[{"system":"` + systemParticipationMode + `","code":"PHONE"}]}],
		"category":[{"coding":[{"system":"` + systemCategory + `","code":"alert"}]}],
		"subject":{"reference":"Patient/4","type":"Patient","display":"Maria"},
		"sent":"2026-03-10T09:00:00Z","payload":[{"contentString":"K 7.1"}],"note":[{"text":"Read back: no"}]}`
	_, err := checkCommunication([]byte(valid))
	require.NoError(t, err)
	for name, tc := range map[string]struct{ old, new string }{
		"misspelled element":   {`"subject"`, `"subjet"`},
		"unknown status code":  {`"completed"`, `"done"`},
		"missing status":       {`"status":"completed",`, ``},
		"medium code":          {`"PHONE"`, `"CALL"`},
		"medium system":        {`CodeSystem/v3-ParticipationMode`, `CodeSystem/v3-ParticipationType`},
		"category code":        {`"alert"`, `"urgent"`},
		"empty string":         {`"display":"Maria"`, `"display":""`},
		"payload content":      {`{"contentString":"K 7.1"}`, `{}`},
		"two payload contents": {`{"contentString":"K 7.1"}`, `{"contentString":"K","contentReference":{"display":"x"}}`},
		"sent format":          {`2026-03-10T09:00:00Z`, `2026-03-10 09:00`},
		"reference type":       {`"type":"Patient"`, `"type":"Patients"`},
		"resourceType":         {`"resourceType":"Communication"`, `"resourceType":"Communications"`},
		"primitive type":       {`"id":"1"`, `"id":1`},
	} {
		require.Contains(t, valid, tc.old, name)
		_, err := checkCommunication([]byte(strings.Replace(valid, tc.old, tc.new, 1)))
		require.Error(t, err, name)
	}
}
