// Package shell quotes values for POSIX sh so that data can never become code.
package shell

import "strings"

// Quote returns s as one single-quoted sh word. The empty string becomes ”.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every argument and joins them with spaces.
func Join(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

func isSafe(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("@%+=:,./_-", r):
		default:
			return false
		}
	}
	return true
}

// PrintfFormat encodes data as a printf format that prints it exactly:
// safe bytes as themselves, the rest as octal escapes. Its first byte is
// never '-', and it holds no single quote.
func PrintfFormat(data []byte) string {
	var b strings.Builder
	b.Grow(len(data) + len(data)/8)
	for i, c := range data {
		switch {
		case c == '%':
			b.WriteString("%%")
		case c == '-' && i == 0:
			b.WriteString(`\055`)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == ' ', c == '\n', strings.IndexByte("-_.,:;/=+@#!?()[]{}<>*&|~^$\"`", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteString(`\`)
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + c>>3&7)
			b.WriteByte('0' + c&7)
		}
	}
	return b.String()
}

// Printf returns a command that writes data to its standard output,
// byte for byte, with nothing but the shell's printf.
func Printf(data []byte) string {
	return "printf '" + PrintfFormat(data) + "'"
}
