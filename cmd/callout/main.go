// Command callout is the Callout service: it serves the API and web UI,
// migrates its database and manages labs and tokens.
//
//	callout serve [--addr 127.0.0.1:8080] [--demo]
//	callout migrate
//	callout lab create --name NAME [--share-comment] [--mandatory-comments] [--hide-patient-name]
//	callout token create --lab ID --user NAME [--role staff|admin]
//
// Every command takes --db URL (also CALLOUT_DB; default the SQLite file
// callout.db in the working directory).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"callout/internal/callout"
	"callout/internal/hl7"
	"callout/internal/jobs"
	"callout/internal/sqlstore"
)

func main() {
	// A callout allocates little but often; unless GOGC says otherwise,
	// collect garbage at 4× the live heap rather than 2×, trading a few
	// megabytes for CPU the requests need (measured: +5–10 % callouts/s).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// env is the program's view of its environment, so tests can pass their own.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// command is one subcommand: its name as typed ("lab create"), a line of
// help, and what it does with its arguments.
type command struct {
	name  string
	usage string
	run   func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the service: API, web UI and workers", serveCmd},
		{"worker", "run only the background workers (email, fax, search index)", workerCmd},
		{"migrate", "bring the database schema up to date", migrateCmd},
		{"reindex", "rebuild the search index from the database", reindexCmd},
		{"lab create", "create a lab; prints its id", labCreateCmd},
		{"lab update", "change a lab's HL7 settings", labUpdateCmd},
		{"token create", "create an API token; prints it", tokenCreateCmd},
		{"user create", "create a user of the web pages; prints its id", userCreateCmd},
		{"hl7 send", "send a file of HL7 v2 messages over MLLP and print the ACKs", hl7SendCmd},
		{"bench", "measure throughput on fresh databases (API vs SQL floor, email, HL7)", benchCmd},
	}
}

// errUsage marks an error in how the command was called (exit status 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel(getenv("CALLOUT_LOG_LEVEL"))}))}
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) < len(words) || strings.Join(args[:len(words)], " ") != c.name {
			continue
		}
		err := c.run(ctx, e, args[len(words):])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintln(stderr, "callout:", strings.TrimSuffix(err.Error(), ": usage"))
			return 2
		default:
			fmt.Fprintln(stderr, "callout:", callout.ErrorMessageOrErr(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "callout: unknown command %q\n\n", strings.Join(args, " "))
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Callout calls out critical lab results.\n\nUsage: callout COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'callout COMMAND --help' for a command's flags.")
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// flags returns a flag set for a command, with --db.
func flags(e *env, name, synopsis string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := e.getenv("CALLOUT_DB")
	if def == "" {
		def = sqlstore.DefaultURL
	}
	db := fs.String("db", def, "database: a SQLite file path, or postgres://… (env CALLOUT_DB)")
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: callout %s\n\nFlags:\n", synopsis)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs, db
}

// parse parses args, printing help for --help and naming the bad flag otherwise.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // the flag package has printed fs.Usage
		}
		return fmt.Errorf("%v (see 'callout %s --help'): %w", err, fs.Name(), errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see 'callout %s --help'): %w", fs.Arg(0), fs.Name(), errUsage)
	}
	return nil
}

// openStore opens and migrates the database: migrations run on every start.
func openStore(ctx context.Context, e *env, url string) (*sqlstore.Store, error) {
	st, err := sqlstore.Open(ctx, url, e.log)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	if err := jobs.Migrate(ctx, st.DB, jobs.Engine(st.Engine)); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func migrateCmd(ctx context.Context, e *env, args []string) error {
	fs, db := flags(e, "migrate", "migrate [--db URL]")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	return st.Close()
}

func labCreateCmd(ctx context.Context, e *env, args []string) error {
	fs, db := flags(e, "lab create", "lab create --name NAME [--share-comment] [--mandatory-comments] [--hide-patient-name] [--hl7-facility NAME [--hl7-cert-subject DN]]... [--db URL]")
	name := fs.String("name", "", "the lab's name (required)")
	share := fs.Bool("share-comment", false, "include the callout comment in emails")
	mandatory := fs.Bool("mandatory-comments", false, "refuse callouts without a comment")
	hide := fs.Bool("hide-patient-name", false, "replace the patient's name by the accession number in messages")
	instr := fs.String("additional-instruction", "", "standing instruction shown in every callout dialog")
	var facilities facilityFlags
	facilities.register(fs, "an HL7 sending facility (MSH-4) whose results this lab accepts; repeatable")
	number := fs.String("hl7-order-number", callout.DefaultHL7Numbering,
		"which HL7 order number is the Order ID: placer (ORC-2/OBR-2), filler (ORC-3/OBR-3) or auto (placer, else filler)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := hl7.ParseNumbering(*number); err != nil {
		return fmt.Errorf("--hl7-order-number must be placer, filler or auto: %w", errUsage)
	}
	if strings.TrimSpace(*name) == "" {
		return fmt.Errorf("--name is required: %w", errUsage)
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := callout.NewService(st, e.log).CreateLab(ctx, callout.Settings{Name: *name, ShareComment: *share,
		MandatoryComments: *mandatory, HidePatientName: *hide, AdditionalInstruction: *instr})
	if err != nil {
		return err
	}
	if len(facilities) > 0 || *number != callout.DefaultHL7Numbering {
		if err := st.SetHL7Facilities(ctx, id, facilities, *number); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}

func labUpdateCmd(ctx context.Context, e *env, args []string) error {
	fs, db := flags(e, "lab update", "lab update --lab ID [--hl7-facility NAME [--hl7-cert-subject DN]]... [--hl7-order-number placer|filler|auto] [--db URL]")
	lab := fs.Int64("lab", 0, "the lab's id (required)")
	var facilities facilityFlags
	facilities.register(fs, "an HL7 sending facility (MSH-4) this lab accepts; repeatable; given, it replaces the list")
	number := fs.String("hl7-order-number", "", "placer, filler or auto: which HL7 order number is the Order ID (default: unchanged)")
	clear := fs.Bool("no-hl7-facilities", false, "accept HL7 from no facility any more")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *lab <= 0 {
		return fmt.Errorf("--lab is required: %w", errUsage)
	}
	if _, err := hl7.ParseNumbering(*number); *number != "" && err != nil {
		return fmt.Errorf("--hl7-order-number must be placer, filler or auto: %w", errUsage)
	}
	if len(facilities) == 0 && *number == "" && !*clear {
		return fmt.Errorf("nothing to change: give --hl7-facility, --hl7-order-number or --no-hl7-facilities: %w", errUsage)
	}
	if *clear && len(facilities) > 0 {
		return fmt.Errorf("--no-hl7-facilities and --hl7-facility contradict each other: %w", errUsage)
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	// What is not given stays as it is.
	current, err := st.LabHL7Facilities(ctx, *lab)
	if err != nil {
		return err
	}
	numbering, err := st.LabHL7Numbering(ctx, *lab)
	if err != nil {
		return err
	}
	if len(facilities) > 0 || *clear {
		current = facilities
	}
	if *number != "" {
		numbering = *number
	}
	if err := st.SetHL7Facilities(ctx, *lab, current, numbering); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "lab %d accepts HL7 from: %s (Order ID: %s number)\n", *lab, describeFacilities(current), numbering)
	return nil
}

func tokenCreateCmd(ctx context.Context, e *env, args []string) error {
	fs, db := flags(e, "token create", "token create --lab ID --user NAME [--role staff|admin] [--departments A,B] [--db URL]")
	lab := fs.Int64("lab", 0, "the lab's id (required)")
	user := fs.String("user", "", "the user name the token acts as (required)")
	role := fs.String("role", "staff", "staff or admin")
	depts := fs.String("departments", "", "limit the token to these departments, comma-separated (default: all)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *lab <= 0 || strings.TrimSpace(*user) == "" {
		return fmt.Errorf("--lab and --user are required: %w", errUsage)
	}
	r, err := callout.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("%v: %w", callout.ErrorMessage(err), errUsage)
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := callout.NewService(st, e.log).CreateToken(ctx, *lab, *user, r, callout.ParseDepartments(*depts)...)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}
