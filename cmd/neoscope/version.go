package main

import (
	"runtime/debug"
	"strings"
)

// version is neoscope's module version and VCS commit as the Go toolchain
// recorded them in the binary (debug.ReadBuildInfo): e.g. "(devel) commit
// acd47d6e1f2a (modified)". It is printed by `neoscope --version` and
// recorded in sweep sidecars (.meta.json) and the report.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	parts := []string{v}
	if rev != "" {
		parts = append(parts, "commit "+rev[:min(12, len(rev))]+modified)
	}
	return strings.Join(parts, " ")
}

func init() {
	rootCmd.Version = version()
	rootCmd.SetVersionTemplate("neoscope {{.Version}}\n")
}
