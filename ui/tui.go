package ui

import (
	"errors"
	"io"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/rollout-sh/rollout/rollout/event"
)

// TUIOptions configure the TUI.
type TUIOptions struct {
	Input     io.Reader        // nil = stdin
	Output    io.Writer        // nil = stdout
	AltScreen bool             // use the alternate screen
	Now       func() time.Time // nil = time.Now
}

// TUI is the interactive view. The engine runs in another goroutine and
// emits into it; Run shows it until the operator quits after run_done.
//
// The TUI installs no signal handler: the CLI owns SIGINT/SIGTERM. Ctrl-C
// typed at the TUI (a key in raw mode, not a signal) calls
// Controls.Interrupt.
type TUI struct {
	ctl  Controls
	opts TUIOptions

	mu      sync.Mutex
	prog    *tea.Program
	pending []event.Event
	ran     bool
}

// NewTUI returns a TUI steering the run through ctl.
func NewTUI(ctl Controls, opts TUIOptions) *TUI {
	return &TUI{ctl: ctl, opts: opts}
}

// Emit sends an event to the TUI. It is safe for concurrent use. Events
// emitted before Run are kept and shown when it starts; events emitted
// after the TUI has ended are dropped.
func (t *TUI) Emit(e event.Event) {
	t.mu.Lock()
	p := t.prog
	if p == nil {
		t.pending = append(t.pending, e)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	p.Send(e) // returns at once when the program has ended
}

// Run shows the TUI and blocks until the operator quits after run_done, or
// the program ends (an error from the terminal). It may be called once.
func (t *TUI) Run() error {
	t.mu.Lock()
	if t.ran {
		t.mu.Unlock()
		return errors.New("ui: TUI.Run called twice")
	}
	t.ran = true

	r := lipgloss.DefaultRenderer()
	if t.opts.Output != nil {
		r = lipgloss.NewRenderer(t.opts.Output)
	}
	m := newModel(t.ctl, t.opts.Now, r)
	for _, e := range t.pending {
		m.apply(e)
	}
	m.layout()
	t.pending = nil

	opts := []tea.ProgramOption{tea.WithoutSignalHandler()}
	if t.opts.Input != nil {
		opts = append(opts, tea.WithInput(t.opts.Input))
	}
	if t.opts.Output != nil {
		opts = append(opts, tea.WithOutput(t.opts.Output))
	}
	if t.opts.AltScreen {
		opts = append(opts, tea.WithAltScreen())
	}
	p := tea.NewProgram(m, opts...)
	t.prog = p
	t.mu.Unlock()

	_, err := p.Run()
	return err
}

var _ event.Sink = (*TUI)(nil)
