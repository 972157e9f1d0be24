package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// neoscopeBin is the CLI built once for the package's tests (TestMain).
var neoscopeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "neoscope-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	neoscopeBin = filepath.Join(dir, "neoscope")
	build := exec.Command("go", "build", "-o", neoscopeBin, ".")
	if tags := os.Getenv("NEOSCOPE_TEST_TAGS"); tags != "" {
		build = exec.Command("go", "build", "-tags", tags, "-o", neoscopeBin, ".")
	}
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building neoscope for the CLI tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI runs the built binary with args (NEOSCOPE_QUIET set) and returns
// stdout, stderr and the exit code.
func runCLI(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(neoscopeBin, args...)
	cmd.Env = append(os.Environ(), "NEOSCOPE_QUIET=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running neoscope %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}
