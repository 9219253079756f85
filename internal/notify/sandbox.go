package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
	"golang.org/x/sys/unix"
)

// A lab admin's email template is untrusted code run inside the one process
// that serves every lab. Two layers keep it from crashing, stalling or
// exhausting that process:
//
//  1. A whitelist (scanTemplate before parsing, checkTemplate on the parsed
//     tree): no statement but if/for/macro/raw/break/continue; loops only
//     over the content's own lists; macros only at the top level and never
//     calling a macro (so no recursion); no function calls, no |safe, no
//     string repetition; every tag short and shallow so the parser cannot
//     recurse deeply either.
//  2. A budget on every render: the tree is instrumented with a check
//     between every two nodes and at the start of every block body, which
//     stops the render past MaxRenderCPU of CPU time, past MaxRenderOutput
//     bytes of output (macro output included), or when the caller's context
//     is cancelled.
//
// Layer 1 bounds what one node can cost; layer 2 bounds how many run.

// Render limits, documented in README ("Security and limits").
const (
	// MaxRenderCPU is the CPU time one render of a template may take.
	MaxRenderCPU = time.Second
	// MaxRenderOutput is the size of one rendered body, in bytes.
	MaxRenderOutput = 1 << 20
	// maxTagTokens bounds the tokens of one {{ }} or {% %} tag: it bounds
	// how much one expression can concatenate and how deep it can nest.
	maxTagTokens = 100
	// maxNesting bounds nested blocks and nested brackets.
	maxNesting = 32
)

// Names of the bounds, as LimitError reports them.
const (
	BoundCPU    = "cpu"
	BoundOutput = "output"
)

// LimitError reports a render stopped because it went past a bound. It is
// deterministic for a given template and content: retrying cannot help.
type LimitError struct {
	Bound string // BoundCPU or BoundOutput
}

// Error names the bound in words a lab admin can act on.
func (e *LimitError) Error() string {
	switch e.Bound {
	case BoundCPU:
		return fmt.Sprintf("render limit: the template took more than %s of CPU time to render", MaxRenderCPU)
	default:
		return fmt.Sprintf("render limit: the rendered email is larger than %d KiB", MaxRenderOutput>>10)
	}
}

// allowedTags are the statements a template may use. Their end tags are
// implied.
var allowedTags = map[string]bool{
	"if": true, "elif": true, "else": true, "endif": true,
	"for": true, "endfor": true, "macro": true, "endmacro": true,
	"raw": true, "endraw": true, "break": true, "continue": true,
}

// openingTags are the allowed tags that open a block.
var openingTags = map[string]bool{"if": true, "for": true, "macro": true, "raw": true}

// allowedFilters are the filters a template may use: each returns at most a
// small multiple of its input, in time linear in it.
var allowedFilters = []string{
	"abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int",
	"last", "length", "lower", "round", "string", "striptags", "title", "trim",
	"truncate", "upper", "wordcount",
}

// escapeFilter is the filter instrument puts around every printed value of
// an HTML template; templates cannot name it (it is not in allowedFilters).
const escapeFilter = "callout_escape"

// budgetKey is the context variable the render budget travels in; the
// whitelist refuses names starting with "_", so a template cannot reach it.
const budgetKey = "__callout_budget"

// forbiddenNames are gonja's global functions and special names. They are
// not in our environment at all; refusing them by name gives the author a
// clear message instead of "undefined".
var forbiddenNames = map[string]string{
	"range":  "range() is not allowed: loop over reports or a report's parameters",
	"lipsum": "", "dict": "", "cycler": "", "joiner": "", "namespace": "", "self": "",
	"caller": "", "varargs": "", "kwargs": "", "gettext": "", "ngettext": "", "gonja": "",
}

var (
	sandboxFilters           *exec.FilterSet
	sandboxControlStructures *exec.ControlStructureSet
)

func init() {
	fs := map[string]exec.FilterFunction{}
	for _, name := range allowedFilters {
		f, ok := builtins.Filters.Get(name)
		if !ok {
			panic("notify: gonja has no filter " + name)
		}
		fs[name] = f
	}
	fs[escapeFilter] = func(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
		// gonja escapes only strings; this escapes whatever is printed
		// (lists and maps included), except what is already safe: the
		// output of escape filters and of macros, itself escaped.
		if in.IsError() || in.Safe {
			return in
		}
		return exec.AsSafeValue(in.Escaped())
	}
	sandboxFilters = exec.NewFilterSet(fs)
	cs := map[string]parser.ControlStructureParser{}
	for _, name := range []string{"if", "for", "macro", "raw", "break", "continue"} {
		p, ok := builtins.ControlStructures.Get(name)
		if !ok {
			panic("notify: gonja has no statement " + name)
		}
		cs[name] = p
	}
	sandboxControlStructures = exec.NewControlStructureSet(cs)
}

// newEnvironment returns the environment templates run in: only the allowed
// statements and filters, and no global functions (range, lipsum, ...).
func newEnvironment() *exec.Environment {
	return &exec.Environment{
		Context:           exec.EmptyContext(),
		Filters:           sandboxFilters,
		Tests:             builtins.Tests,
		ControlStructures: sandboxControlStructures,
		Methods:           builtins.Methods,
	}
}

// scanTemplate checks the token stream before gonja parses it: only allowed
// statements, short tags, shallow nesting. gonja's parser recurses on nested
// brackets and blocks, so this runs first to keep parsing itself bounded.
func scanTemplate(src string, cfg *config.Config) error {
	s := tokens.LexAll(src, cfg)
	var (
		inTag         bool
		tagStart      *tokens.Token
		tagTokens     int
		brackets      int
		blocks        int
		wantStatement bool
	)
	for !s.End() {
		t := s.Next()
		switch t.Type {
		case tokens.BlockBegin, tokens.VariableBegin:
			inTag, tagStart, tagTokens, brackets = true, t, 0, 0
			wantStatement = t.Type == tokens.BlockBegin
			continue
		case tokens.BlockEnd, tokens.VariableEnd:
			inTag = false
			continue
		}
		if !inTag {
			continue
		}
		tagTokens++
		if tagTokens > maxTagTokens {
			return &TemplateError{Line: tagStart.Line, Column: tagStart.Col,
				Message: fmt.Sprintf("a tag longer than %d tokens is not allowed; split it up", maxTagTokens)}
		}
		switch t.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			brackets++
			if brackets > maxNesting {
				return &TemplateError{Line: t.Line, Column: t.Col,
					Message: fmt.Sprintf("brackets nested deeper than %d are not allowed", maxNesting)}
			}
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			brackets--
		}
		if !wantStatement {
			continue
		}
		wantStatement = false
		name := t.Val
		if t.Type != tokens.Name || !allowedTags[name] {
			return &TemplateError{Line: t.Line, Column: t.Col, Message: refusedTag(name)}
		}
		switch {
		case openingTags[name]:
			blocks++
			if blocks > maxNesting {
				return &TemplateError{Line: t.Line, Column: t.Col,
					Message: fmt.Sprintf("blocks nested deeper than %d are not allowed", maxNesting)}
			}
		case strings.HasPrefix(name, "end"):
			blocks--
		}
	}
	return nil
}

func refusedTag(name string) string {
	switch name {
	case "include", "import", "from", "extends", "block":
		return fmt.Sprintf("{%% %s %%} is not allowed: a template cannot use other templates", name)
	case "autoescape":
		return "{% autoescape %} is not allowed: data is always HTML-escaped"
	case "set", "with", "do":
		return fmt.Sprintf("{%% %s %%} is not allowed: variables cannot be assigned", name)
	}
	return fmt.Sprintf("{%% %s %%} is not allowed in email templates (allowed: if, for, macro, raw, break, continue)", name)
}

// checker walks a parsed template and refuses what the whitelist does not
// allow.
type checker struct {
	macros map[string]bool // every macro the template defines
}

// checkTemplate is the whitelist on the parsed tree; see the package comment
// above for what it allows.
func checkTemplate(root *nodes.Template) error {
	c := &checker{macros: map[string]bool{}}
	for name := range root.Macros {
		c.macros[name] = true
	}
	return c.nodes(root.Nodes, 0, false)
}

func refuse(n nodes.Node, format string, args ...any) *TemplateError {
	te := &TemplateError{Message: fmt.Sprintf(format, args...)}
	if n != nil {
		if t := n.Position(); t != nil {
			te.Line, te.Column = t.Line, t.Col
		}
	}
	return te
}

func (c *checker) nodes(ns []nodes.Node, depth int, inMacro bool) error {
	seen := map[string]bool{}
	for _, n := range ns {
		if err := c.node(n, depth, inMacro, seen); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) wrapper(w *nodes.Wrapper, depth int, inMacro bool) error {
	if w == nil {
		return nil
	}
	return c.nodes(w.Nodes, depth+1, inMacro)
}

func (c *checker) node(n nodes.Node, depth int, inMacro bool, defined map[string]bool) error {
	switch n := n.(type) {
	case *nodes.Data, *nodes.Comment:
		return nil
	case *nodes.Output:
		// A macro call is allowed only as the whole of a {{ }}: its output
		// (bounded by the budget) is then written out at once, never
		// copied by an operator.
		for _, e := range []nodes.Expression{n.Expression, n.Alternative} {
			if e == nil {
				continue
			}
			if call, ok := e.(*nodes.Call); ok && c.isMacroName(call.Func) {
				if err := c.macroCall(call, inMacro); err != nil {
					return err
				}
				continue
			}
			if err := c.expr(e); err != nil {
				return err
			}
		}
		if n.Condition != nil {
			return c.expr(n.Condition)
		}
		return nil
	case *nodes.ControlStructureBlock:
		return c.statement(n, depth, inMacro, defined)
	}
	return refuse(n, "%s is not allowed", n)
}

func (c *checker) statement(b *nodes.ControlStructureBlock, depth int, inMacro bool, defined map[string]bool) error {
	switch s := b.ControlStructure.(type) {
	case *controlStructures.IfControlStructure:
		for _, cond := range s.Conditions {
			if err := c.expr(cond); err != nil {
				return err
			}
		}
		for _, w := range s.Wrappers {
			if err := c.wrapper(w, depth, inMacro); err != nil {
				return err
			}
		}
		return nil
	case *controlStructures.ForControlStructure:
		if s.Recursive {
			return refuse(b, "recursive loops are not allowed")
		}
		if !contentList(s.ObjectEvaluator) {
			return refuse(b, "{%% for %%} may only loop over reports or a report's parameters (e.g. report.parameters), not %s", describe(s.ObjectEvaluator))
		}
		if err := c.expr(s.ObjectEvaluator); err != nil {
			return err
		}
		for _, v := range []string{s.Key, s.Value} {
			if err := c.binding(b, v); err != nil {
				return err
			}
		}
		if s.IfCondition != nil {
			if err := c.expr(s.IfCondition); err != nil {
				return err
			}
		}
		if err := c.wrapper(s.BodyWrapper, depth, inMacro); err != nil {
			return err
		}
		return c.wrapper(s.EmptyWrapper, depth, inMacro)
	case *controlStructures.MacroControlStructure:
		m := s.Macro
		if depth > 0 || inMacro {
			return refuse(b, "macro %s: macros may only be defined at the top level of the template", m.Name)
		}
		if defined[m.Name] {
			return refuse(b, "macro %s is defined twice", m.Name)
		}
		defined[m.Name] = true
		if m.VarArgsName != "" || m.KwArgsName != "" {
			return refuse(b, "macro %s: *args and **kwargs are not allowed", m.Name)
		}
		if _, bad := forbiddenNames[m.Name]; bad || strings.HasPrefix(m.Name, "_") || m.Name == "reports" || m.Name == "loop" {
			return refuse(b, "the name %s is not allowed for a macro", m.Name)
		}
		for _, p := range m.Kwargs {
			name, _ := p.Key.(*nodes.String)
			if name == nil {
				return refuse(b, "macro %s: malformed parameter", m.Name)
			}
			if err := c.binding(b, name.Val); err != nil {
				return err
			}
			if p.Value != nil {
				if err := c.expr(p.Value); err != nil {
					return err
				}
			}
		}
		return c.wrapper(m.Wrapper, depth, true)
	case *controlStructures.RawControlStructure, *controlStructures.BreakControlStructure,
		*controlStructures.ContinueControlStructure:
		return nil
	}
	return refuse(b, "{%% %s %%} is not allowed", b.Name)
}

// binding checks a name the template binds (loop variable, macro
// parameter): it must not hide a macro, which would let a macro reach
// another through a variable.
func (c *checker) binding(at nodes.Node, name string) error {
	if name == "" {
		return nil
	}
	if c.macros[name] {
		return refuse(at, "the name %s is already a macro", name)
	}
	if strings.HasPrefix(name, "_") {
		return refuse(at, "the name %s is not allowed", name)
	}
	if _, bad := forbiddenNames[name]; bad {
		return refuse(at, "the name %s is not allowed", name)
	}
	return nil
}

func (c *checker) isMacroName(n nodes.Node) bool {
	name, ok := n.(*nodes.Name)
	return ok && c.macros[name.Name.Val]
}

// macroCall checks a call of a macro: only from outside macros (so there is
// no recursion and no nesting of macro output), with plain arguments (names,
// attributes, literals) so no argument is a large computed string.
func (c *checker) macroCall(call *nodes.Call, inMacro bool) error {
	name := call.Func.(*nodes.Name).Name.Val
	if inMacro {
		return refuse(call, "macro %s is called from inside a macro: macros may not call macros", name)
	}
	args := append([]nodes.Expression{}, call.Args...)
	for _, a := range call.Kwargs {
		args = append(args, a)
	}
	for _, a := range args {
		if !plainArgument(a) {
			return refuse(call, "macro %s: arguments may only be variables, their fields or literals, not %s", name, describe(a))
		}
		if err := c.expr(a); err != nil {
			return err
		}
	}
	return nil
}

func plainArgument(e nodes.Expression) bool {
	switch e := e.(type) {
	case *nodes.Name, *nodes.String, *nodes.Integer, *nodes.Float, *nodes.Bool, *nodes.None:
		return true
	case *nodes.GetAttribute:
		return plainArgument(e.Node)
	case *nodes.GetItem:
		return plainArgument(e.Node) && plainArgument(e.Arg)
	}
	return false
}

// contentList reports whether e is one of the content's own lists: reports,
// or the parameters of something (a report bound by a loop or a macro
// parameter). Their length is the order's, not the template's.
func contentList(e nodes.Expression) bool {
	switch e := e.(type) {
	case *nodes.Name:
		return e.Name.Val == "reports"
	case *nodes.GetAttribute:
		return e.Attribute == "parameters"
	}
	return false
}

func (c *checker) expr(e nodes.Node) error {
	switch e := e.(type) {
	case nil:
		return nil
	case *nodes.None, *nodes.String, *nodes.Integer, *nodes.Float, *nodes.Bool, *nodes.Error:
		return nil
	case *nodes.List:
		return c.exprs(e.Val)
	case *nodes.Tuple:
		return c.exprs(e.Val)
	case *nodes.Name:
		name := e.Name.Val
		if c.macros[name] {
			return refuse(e, "macro %s may only be called, as the whole of a {{ }}", name)
		}
		if msg, bad := forbiddenNames[name]; bad {
			if msg == "" {
				msg = fmt.Sprintf("%s is not allowed", name)
			}
			return refuse(e, "%s", msg)
		}
		if strings.HasPrefix(name, "_") {
			return refuse(e, "the name %s is not allowed", name)
		}
		return nil
	case *nodes.GetAttribute:
		if strings.HasPrefix(e.Attribute, "_") {
			return refuse(e, "the attribute %s is not allowed", e.Attribute)
		}
		return c.expr(e.Node)
	case *nodes.GetItem:
		if err := c.expr(e.Node); err != nil {
			return err
		}
		return c.expr(e.Arg)
	case *nodes.GetSlice:
		for _, p := range []nodes.Node{e.Node, e.Start, e.End, e.Step} {
			if err := c.expr(p); err != nil {
				return err
			}
		}
		return nil
	case *nodes.Call:
		if c.isMacroName(e.Func) {
			return refuse(e, "macro %s may only be called as the whole of a {{ }}, not inside an expression", describe(e.Func))
		}
		if name, ok := e.Func.(*nodes.Name); ok {
			if msg := forbiddenNames[name.Name.Val]; msg != "" {
				return refuse(e, "%s", msg)
			}
		}
		return refuse(e, "calling %s() is not allowed: only the template's own macros can be called", describe(e.Func))
	case *nodes.Negation:
		return c.expr(e.Term)
	case *nodes.UnaryExpression:
		return c.expr(e.Term)
	case *nodes.BinaryExpression:
		if e.Operator.Token.Type == tokens.Multiply {
			return refuse(e, "the * operator is not allowed (it repeats text without bound)")
		}
		if err := c.expr(e.Left); err != nil {
			return err
		}
		return c.expr(e.Right)
	case *nodes.FilteredExpression:
		if err := c.expr(e.Expression); err != nil {
			return err
		}
		for _, f := range e.Filters {
			if f.Name == "safe" {
				return refuse(e, "the |safe filter is not allowed: data is always HTML-escaped")
			}
			if _, ok := sandboxFilters.Get(f.Name); !ok || f.Name == escapeFilter {
				return refuse(e, "the |%s filter is not allowed (allowed: %s)", f.Name, strings.Join(allowedFilters, ", "))
			}
			if err := c.exprs(f.Args); err != nil {
				return err
			}
			for _, a := range f.Kwargs {
				if err := c.expr(a); err != nil {
					return err
				}
			}
		}
		return nil
	case *nodes.TestExpression:
		if err := c.expr(e.Expression); err != nil {
			return err
		}
		if err := c.exprs(e.Test.Args); err != nil {
			return err
		}
		for _, a := range e.Test.Kwargs {
			if err := c.expr(a); err != nil {
				return err
			}
		}
		return nil
	}
	return refuse(e, "the expression %s is not allowed", describe(e))
}

func (c *checker) exprs(es []nodes.Expression) error {
	for _, e := range es {
		if err := c.expr(e); err != nil {
			return err
		}
	}
	return nil
}

// describe names an expression for a message.
func describe(n nodes.Node) string {
	switch n := n.(type) {
	case *nodes.Name:
		return n.Name.Val
	case *nodes.GetAttribute:
		return describe(n.Node) + "." + n.Attribute
	case *nodes.Call:
		return describe(n.Func) + "(...)"
	case *nodes.String:
		return fmt.Sprintf("%q", truncateRunes(n.Val, 20))
	case nil:
		return "nothing"
	}
	return truncateRunes(n.String(), 40)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// instrument rewrites a checked tree for bounded rendering: a budget check
// before every node and at the end of every node list (so every loop
// iteration and every macro call checks at least once), and, for HTML,
// every printed value passed through escapeFilter.
func instrument(root *nodes.Template, escape bool) {
	root.Nodes = instrumentNodes(root.Nodes, escape)
}

func instrumentNodes(ns []nodes.Node, escape bool) []nodes.Node {
	out := make([]nodes.Node, 0, 2*len(ns)+1)
	for _, n := range ns {
		out = append(out, budgetNode(n))
		switch n := n.(type) {
		case *nodes.Output:
			if escape {
				n.Expression = escaped(n.Expression, n.Start)
				if n.Alternative != nil {
					n.Alternative = escaped(n.Alternative, n.Start)
				}
			}
		case *nodes.ControlStructureBlock:
			switch s := n.ControlStructure.(type) {
			case *controlStructures.IfControlStructure:
				for _, w := range s.Wrappers {
					instrumentWrapper(w, escape)
				}
			case *controlStructures.ForControlStructure:
				instrumentWrapper(s.BodyWrapper, escape)
				instrumentWrapper(s.EmptyWrapper, escape)
			case *controlStructures.MacroControlStructure:
				instrumentWrapper(s.Wrapper, escape)
			}
		}
		out = append(out, n)
	}
	var last nodes.Node
	if len(ns) > 0 {
		last = ns[len(ns)-1]
	}
	return append(out, budgetNode(last))
}

func instrumentWrapper(w *nodes.Wrapper, escape bool) {
	if w != nil {
		w.Nodes = instrumentNodes(w.Nodes, escape)
	}
}

func escaped(e nodes.Expression, at *tokens.Token) nodes.Expression {
	return &nodes.FilteredExpression{Expression: e, Filters: []*nodes.FilterCall{{Token: at, Name: escapeFilter}}}
}

// budgetCheck is the statement instrument inserts: it stops the render when
// the budget is spent.
type budgetCheck struct{ at *tokens.Token }

func budgetNode(near nodes.Node) nodes.Node {
	at := &tokens.Token{}
	if near != nil && near.Position() != nil {
		at = near.Position()
	}
	return &nodes.ControlStructureBlock{Location: at, Name: "budget", ControlStructure: &budgetCheck{at: at}}
}

func (b *budgetCheck) Position() *tokens.Token { return b.at }
func (b *budgetCheck) String() string          { return "budget" }

// Execute checks the render's budget. r.Output is the render's own writer
// or, inside a macro, the buffer the macro's output collects in.
func (b *budgetCheck) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	v, ok := r.Environment.Context.Get(budgetKey)
	bg, _ := v.(*budget)
	if !ok || bg == nil {
		return errors.New("render budget missing")
	}
	return bg.check(r.Output)
}

// budget is one render's allowance.
type budget struct {
	ctx      context.Context
	cpuStart time.Duration // threadCPU when the render began
	gcStart  time.Duration // gcCPU when the render began
	cpuLimit time.Duration
	checks   int
	exceeded *LimitError
}

// check stops the render on cancellation, past MaxRenderOutput in w, or
// past MaxRenderCPU. Once past a bound it keeps failing.
func (b *budget) check(w io.Writer) error {
	if b.exceeded != nil {
		return b.exceeded
	}
	if err := b.ctx.Err(); err != nil {
		return err
	}
	if l, ok := w.(interface{ Len() int }); ok && l.Len() > MaxRenderOutput {
		b.exceeded = &LimitError{Bound: BoundOutput}
		return b.exceeded
	}
	// Reading the thread's CPU clock is a system call: every 16th check is
	// plenty, since the whitelist bounds what one node can cost.
	b.checks++
	if b.checks%16 == 0 && b.cpu() > b.cpuLimit {
		b.exceeded = &LimitError{Bound: BoundCPU}
		return b.exceeded
	}
	return nil
}

// cpu is the CPU time the render has taken so far: its thread's, plus the
// garbage collector's since it began. The collector runs on other threads
// and would otherwise let an allocating render use well over its second of
// process CPU; charging the render for collections that others caused
// only makes it stop sooner.
func (b *budget) cpu() time.Duration {
	return threadCPU() - b.cpuStart + gcCPU() - b.gcStart
}

// gcMetrics are the collector's CPU time on threads other than the one that
// caused it (mark assists already count in that thread's own CPU time).
var gcMetrics = []string{
	"/cpu/classes/gc/mark/dedicated:cpu-seconds",
	"/cpu/classes/gc/mark/idle:cpu-seconds",
	"/cpu/classes/gc/pause:cpu-seconds",
}

// gcCPU is the collector's cumulative CPU time on its own threads (0 where
// the runtime does not report it).
func gcCPU() time.Duration {
	s := make([]metrics.Sample, len(gcMetrics))
	for i, name := range gcMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	var sec float64
	for _, v := range s {
		if v.Value.Kind() == metrics.KindFloat64 {
			sec += v.Value.Float64()
		}
	}
	return time.Duration(sec * float64(time.Second))
}

// threadCPU is the CPU time of the calling OS thread; renderBounded locks
// the render's goroutine to its thread so that this is the render's.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// renderSlots bounds the renders running at once to half the CPUs (at
// least one): a lab whose template spins for its whole second, however many
// times it tries, leaves the other CPUs to everyone else's callouts.
var renderSlots = make(chan struct{}, max(1, runtime.NumCPU()/2))

// limitWriter collects a render's output up to MaxRenderOutput.
type limitWriter struct {
	buf bytes.Buffer
	b   *budget
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > MaxRenderOutput {
		w.b.exceeded = &LimitError{Bound: BoundOutput}
		return 0, w.b.exceeded
	}
	return w.buf.Write(p)
}

func (w *limitWriter) Len() int { return w.buf.Len() }

// renderBounded renders tpl with vars within the budget. Past a bound the
// error is a *LimitError; on cancellation it is ctx's error; a template
// error is a *TemplateError.
func renderBounded(ctx context.Context, tpl *exec.Template, vars map[string]any) (string, error) {
	out, _, err := renderWithin(ctx, tpl, vars, MaxRenderCPU)
	return out, err
}

// renderWithin is renderBounded with cpu as the CPU allowance; it also
// returns the CPU time the render took, so that several renders can share
// one allowance.
func renderWithin(ctx context.Context, tpl *exec.Template, vars map[string]any, cpu time.Duration) (out string, used time.Duration, err error) {
	select {
	case renderSlots <- struct{}{}:
		defer func() { <-renderSlots }()
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := &budget{ctx: ctx, cpuStart: threadCPU(), gcStart: gcCPU(), cpuLimit: cpu}
	defer func() { used = b.cpu() }()
	w := &limitWriter{b: b}
	vars[budgetKey] = b
	defer func() {
		// A bug in gonja must not take the process down with it.
		if p := recover(); p != nil {
			out, err = "", &TemplateError{Message: fmt.Sprintf("the template failed: %v", p)}
		}
	}()
	rerr := tpl.Execute(w, exec.NewContext(vars))
	switch {
	case b.exceeded != nil:
		return "", 0, b.exceeded
	case ctx.Err() != nil:
		return "", 0, ctx.Err()
	case rerr != nil:
		return "", 0, renderError(rerr)
	}
	return w.buf.String(), 0, nil
}
