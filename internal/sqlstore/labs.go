package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"callout/internal/callout"
)

// CreateLab stores a new lab and returns its id.
func (s *Store) CreateLab(ctx context.Context, set callout.Settings) (int64, error) {
	set = callout.WithDefaults(set)
	if err := callout.ValidateSettings(set); err != nil {
		return 0, err
	}
	targets, err := json.Marshal(set.Targets)
	if err != nil {
		return 0, err
	}
	// require_notified_person keeps its default, on: see Settings.
	var id int64
	err = s.DB.QueryRowContext(ctx, `
		INSERT INTO labs (name, share_comment, mandatory_comments, hide_patient_name,
		                  additional_instruction, target_minutes, targets, compliance_target_percent,
		                  compliance_action_percent, timezone, created_at, hl7_order_number)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		RETURNING id`,
		set.Name, set.ShareComment, set.MandatoryComments, set.HidePatientName,
		set.AdditionalInstruction, set.TargetMinutes, string(targets), set.CompliancePercent,
		set.ActionPercent, set.Timezone, callout.Now(), callout.DefaultHL7Numbering,
	).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create lab: %w", err)
	}
	return id, nil
}

// FindLab returns the id of the oldest lab with the given name.
func (s *Store) FindLab(ctx context.Context, name string) (int64, error) {
	var id int64
	err := s.DB.QueryRowContext(ctx, `SELECT id FROM labs WHERE name = $1 ORDER BY id LIMIT 1`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, callout.Errorf(callout.KindNotFound, "no lab is named %q", name)
	}
	if err != nil {
		return 0, fmt.Errorf("find lab %q: %w", name, err)
	}
	return id, nil
}

// CreateToken stores an API token's hash.
func (s *Store) CreateToken(ctx context.Context, t callout.Token) error {
	if _, err := s.Settings(ctx, t.LabID); err != nil {
		return err
	}
	_, err := s.DB.ExecContext(ctx, `
		INSERT INTO api_tokens (lab_id, user_name, role, token_hash, departments, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		t.LabID, t.User, string(t.Role), t.Hash, strings.Join(t.Departments, ","), callout.Now())
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// Principal returns who holds the token with the given hash.
func (s *Store) Principal(ctx context.Context, tokenHash string) (callout.Principal, error) {
	var p callout.Principal
	var role, departments string
	err := s.DB.QueryRowContext(ctx, `
		SELECT lab_id, user_name, role, departments FROM api_tokens WHERE token_hash = $1`, tokenHash,
	).Scan(&p.LabID, &p.User, &role, &departments)
	if errors.Is(err, sql.ErrNoRows) {
		return p, callout.Errorf(callout.KindUnauthorized, "the API token is not valid")
	}
	if err != nil {
		return p, fmt.Errorf("look up token: %w", err)
	}
	p.Role = callout.Role(role)
	p.Departments = callout.ParseDepartments(departments)
	return p, nil
}

const settingsColumns = `name, share_comment, mandatory_comments, hide_patient_name, additional_instruction, target_minutes,
	require_notified_person, targets, compliance_target_percent, compliance_action_percent, timezone`

// labSettingsColumns are settingsColumns of the labs row l.
var labSettingsColumns = func() string {
	cols := strings.Split(settingsColumns, ",")
	for i, c := range cols {
		cols[i] = "l." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// settingsScan scans settingsColumns into set; finish decodes what needs it.
type settingsScan struct {
	set     *callout.Settings
	targets string
}

func (s *settingsScan) dest() []any {
	set := s.set
	return []any{&set.Name, &set.ShareComment, &set.MandatoryComments, &set.HidePatientName,
		&set.AdditionalInstruction, &set.TargetMinutes, &set.RequireNotifiedPerson, &s.targets,
		&set.CompliancePercent, &set.ActionPercent, &set.Timezone}
}

func (s *settingsScan) finish() error {
	s.set.Targets = map[string]int{}
	if s.targets == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s.targets), &s.set.Targets); err != nil {
		return fmt.Errorf("decode targets: %w", err)
	}
	return nil
}

func scanSettings(row *sql.Row, labID int64) (callout.Settings, error) {
	var set callout.Settings
	sc := settingsScan{set: &set}
	err := row.Scan(sc.dest()...)
	if err == nil {
		err = sc.finish()
	}
	if errors.Is(err, sql.ErrNoRows) {
		return set, callout.Errorf(callout.KindNotFound, "lab %d does not exist", labID)
	}
	if err != nil {
		return set, fmt.Errorf("load settings of lab %d: %w", labID, err)
	}
	return set, nil
}

// Settings returns a lab's settings.
func (s *Store) Settings(ctx context.Context, labID int64) (callout.Settings, error) {
	return scanSettings(s.DB.QueryRowContext(ctx, `SELECT `+settingsColumns+` FROM labs WHERE id = $1`, labID), labID)
}

// UpdateSettings changes a lab's settings in one transaction.
func (s *Store) UpdateSettings(ctx context.Context, labID int64, change func(*callout.Settings) error) (callout.Settings, error) {
	var set callout.Settings
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		set, err = scanSettings(tx.QueryRowContext(ctx, `SELECT `+settingsColumns+` FROM labs WHERE id = $1`+s.forUpdate("labs"), labID), labID)
		if err != nil {
			return err
		}
		if err := change(&set); err != nil {
			return err
		}
		targets, err := json.Marshal(set.Targets)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			UPDATE labs SET name = $2, share_comment = $3, mandatory_comments = $4,
			       hide_patient_name = $5, additional_instruction = $6, target_minutes = $7,
			       require_notified_person = $8, targets = $9, compliance_target_percent = $10,
			       compliance_action_percent = $11, timezone = $12
			WHERE id = $1`,
			labID, set.Name, set.ShareComment, set.MandatoryComments, set.HidePatientName,
			set.AdditionalInstruction, set.TargetMinutes, set.RequireNotifiedPerson, string(targets),
			set.CompliancePercent, set.ActionPercent, set.Timezone)
		if err != nil {
			return fmt.Errorf("update settings of lab %d: %w", labID, err)
		}
		return nil
	})
	return set, err
}

// Replay returns the answer stored under an idempotency key, or nil.
func (s *Store) Replay(ctx context.Context, labID int64, key string) (*callout.StoredResponse, error) {
	var r callout.StoredResponse
	var body string
	err := s.DB.QueryRowContext(ctx, `
		SELECT request_hash, status, response FROM idempotency_keys WHERE lab_id = $1 AND key = $2`,
		labID, key).Scan(&r.Hash, &r.Status, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up idempotency key: %w", err)
	}
	r.Body = []byte(body)
	return &r, nil
}

// remember stores the answer to a request under its idempotency key, in the
// request's own transaction: either both the writes and the key commit, or
// neither does.
func remember(ctx context.Context, tx *sql.Tx, labID int64, idem *callout.Idempotency, status int, body []byte) error {
	if idem == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO idempotency_keys (lab_id, key, request_hash, status, response, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		labID, idem.Key, idem.Hash, status, string(body), callout.Now())
	if isUnique(err) {
		return callout.ErrIdempotencyRace
	}
	if err != nil {
		return fmt.Errorf("store idempotency key: %w", err)
	}
	return nil
}
