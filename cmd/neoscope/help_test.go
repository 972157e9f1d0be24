package main

import (
	"regexp"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpPlaceholders (issue 18, README and help agree): a flag's
// placeholder in --help is its type or an upper-case name (FILE, DIR), never
// words cobra lifted from a back-quoted phrase of the usage text
// ("--circuit neoscope circuit", "--lens tunedlens fit").
func TestHelpPlaceholders(t *testing.T) {
	ok := regexp.MustCompile(`^([A-Z][A-Z0-9_|.,]*|string|strings|stringArray|int|ints|int64|uint|uint64|float|float64|duration|)$`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); !ok.MatchString(name) {
				t.Errorf("%s --%s: placeholder %q in --help", c.CommandPath(), f.Name, name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(rootCmd)
}
