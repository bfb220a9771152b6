package jinja

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/config"
)

// Options are what ansible-core's template module takes from outside the
// template.
type Options struct {
	// AnsibleManaged is ansible.cfg's [defaults] ansible_managed; empty
	// means ansible-core's default, "Ansible managed". A value with
	// {host}, {uid} or {file} placeholders or strftime codes (%...) is
	// refused: ansible fills them from the controller's hostname, the
	// template file's owner and mtime, which are not pinned.
	AnsibleManaged string
}

// DefaultAnsibleManaged is ansible-core 2.14's default ansible_managed.
const DefaultAnsibleManaged = "Ansible managed"

const overrideHeader = "#jinja2:"

var newlineRE = regexp.MustCompile(`\r\n|\r|\n`)

// settings are the Jinja2 environment settings a template can override
// in its #jinja2: first line.
type settings struct {
	trimBlocks, lstripBlocks, keepTrailingNewline bool
	newlineSequence                               string
	blockStart, blockEnd                          string
	variableStart, variableEnd                    string
	commentStart, commentEnd                      string
}

func (s settings) config() *config.Config {
	cfg := config.New()
	cfg.StrictUndefined = true
	cfg.TrimBlocks = s.trimBlocks
	cfg.LeftStripBlocks = s.lstripBlocks
	// the trailing newline is handled in RenderWith, as Jinja2 does it
	cfg.KeepTrailingNewline = true
	cfg.BlockStartString, cfg.BlockEndString = s.blockStart, s.blockEnd
	cfg.VariableStartString, cfg.VariableEndString = s.variableStart, s.variableEnd
	cfg.CommentStartString, cfg.CommentEndString = s.commentStart, s.commentEnd
	return cfg
}

// moduleDefaults are the template module's: trim_blocks on, the rest as
// Jinja2's defaults.
func moduleDefaults() settings {
	return settings{
		trimBlocks: true, newlineSequence: "\n",
		blockStart: "{%", blockEnd: "%}", variableStart: "{{", variableEnd: "}}",
		commentStart: "{#", commentEnd: "#}",
	}
}

// override applies a "#jinja2: key: value, ..." line as ansible-core
// does: comma-separated pairs, each value a Python literal.
func (s *settings) override(line string) error {
	for _, pair := range strings.Split(line, ",") {
		key, raw, ok := strings.Cut(pair, ":")
		if !ok {
			return fmt.Errorf("failed to parse jinja2 override '%s': expected key:value", strings.TrimSpace(pair))
		}
		key, raw = strings.TrimSpace(key), strings.TrimSpace(raw)
		var b *bool
		var str *string
		switch key {
		case "trim_blocks":
			b = &s.trimBlocks
		case "lstrip_blocks":
			b = &s.lstripBlocks
		case "keep_trailing_newline":
			b = &s.keepTrailingNewline
		case "newline_sequence":
			str = &s.newlineSequence
		case "block_start_string":
			str = &s.blockStart
		case "block_end_string":
			str = &s.blockEnd
		case "variable_start_string":
			str = &s.variableStart
		case "variable_end_string":
			str = &s.variableEnd
		case "comment_start_string":
			str = &s.commentStart
		case "comment_end_string":
			str = &s.commentEnd
		default:
			return fmt.Errorf("jinja2 override %q is not supported", key)
		}
		if b != nil {
			switch raw {
			case "True":
				*b = true
			case "False":
				*b = false
			default:
				return fmt.Errorf("jinja2 override %s: expected True or False, got %s", key, raw)
			}
			continue
		}
		v, err := pyStringLiteral(raw)
		if err != nil {
			return fmt.Errorf("jinja2 override %s: %w", key, err)
		}
		*str = v
	}
	if s.newlineSequence != "\n" {
		return fmt.Errorf("newline_sequence %q is not supported (only \"\\n\")", s.newlineSequence)
	}
	return nil
}

// pyStringLiteral reads a quoted Python string literal with the common
// escapes.
func pyStringLiteral(raw string) (string, error) {
	if len(raw) < 2 || (raw[0] != '\'' && raw[0] != '"') || raw[len(raw)-1] != raw[0] {
		return "", fmt.Errorf("expected a quoted string, got %s", raw)
	}
	body := raw[1 : len(raw)-1]
	if raw[0] == '\'' {
		body = strings.ReplaceAll(strings.ReplaceAll(body, `\'`, `'`), `"`, `\"`)
	}
	return strconv.Unquote(`"` + body + `"`)
}

func trailingNewlines(s string) int {
	return len(s) - len(strings.TrimRight(s, "\n"))
}

// managed is the value of ansible_managed.
func (o Options) managed() (string, error) {
	if o.AnsibleManaged == "" {
		return DefaultAnsibleManaged, nil
	}
	if strings.ContainsAny(o.AnsibleManaged, "{}%") {
		return "", fmt.Errorf("ansible_managed %q is refused: its {host}, {uid}, {file} placeholders and %%-codes are filled from the controller, the template file's owner and modification time, which are not pinned", o.AnsibleManaged)
	}
	return o.AnsibleManaged, nil
}

// prepare turns a template file's text into what the engine renders, as
// ansible-core's template module does: the #jinja2: first line read and
// removed, newlines normalised, and (unless keep_trailing_newline) one
// final newline dropped. want is the number of final newlines the output
// must have at least.
func prepare(src string) (data string, s settings, want int, err error) {
	s = moduleDefaults()
	want = trailingNewlines(src)
	data = src
	if strings.HasPrefix(data, overrideHeader) {
		eol := strings.IndexByte(data, '\n')
		var line string
		if eol < 0 {
			// ansible-core slices with find()'s -1: the line loses its last character and the text stays
			line = data[len(overrideHeader) : len(data)-1]
		} else {
			line = data[len(overrideHeader):eol]
			data = data[eol+1:]
		}
		if err := s.override(line); err != nil {
			return "", s, 0, err
		}
	}
	data = newlineRE.ReplaceAllString(data, "\n")
	if !s.keepTrailingNewline {
		data = strings.TrimSuffix(data, "\n")
	}
	return data, s, want, nil
}
