// Package ui renders the one event stream of a run (package event) three
// ways: Plain (one line per event, for logs and non-terminals), JSON (one
// object per line, for CI) and TUI (bubbletea, for an operator at a
// terminal). Every view shows only what the events say; the TUI steers a
// live run through the Controls the engine implements.
//
// Choosing a view (terminal or not, colour or not) happens outside this
// package's models: the CLI decides, with ColorEnabled as a helper.
package ui
