package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"

	"github.com/spf13/cobra"

	"github.com/neoscope/neoscope/cpu"
	"github.com/neoscope/neoscope/internal/outfile"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/forward"
)

// modelFlags are the flags every model-using command shares.
type modelFlags struct {
	Model   string
	Backend string
	Threads int
	JSON    bool
}

func (f *modelFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.Model, "model", "", "model directory (Hugging Face layout) or hub id ORG/NAME from the local HF cache; default: the bundled GPT-Neo")
	c.Flags().StringVar(&f.Backend, "backend", "auto", "compute backend: auto (GPU if usable, else CPU), cpu, cuda")
	c.Flags().IntVar(&f.Threads, "threads", 0, "CPU threads to use (default: all cores)")
	c.Flags().BoolVar(&f.JSON, "json", false, "print machine-readable JSON instead of a table")
}

// The CPU fallback notice ("no usable GPU") is said once per process, and
// only by a command that computes something: openBackend leaves it pending;
// the first status line or progress bar (the work starting) prints it, and
// main prints it at the end of a run that got that far silently, or failed
// on valid input. A command refused for bad usage (exit 2) never says it.
var (
	noticeMu      sync.Mutex
	pendingNotice string
	noticeSaid    bool
)

func deferNotice(msg string) {
	noticeMu.Lock()
	defer noticeMu.Unlock()
	if !noticeSaid && pendingNotice == "" {
		pendingNotice = msg
	}
}

// flushNotice prints the pending notice, once.
func flushNotice() {
	noticeMu.Lock()
	msg := pendingNotice
	pendingNotice = ""
	if msg != "" {
		noticeSaid = true
	}
	noticeMu.Unlock()
	if msg != "" {
		fmt.Fprintln(os.Stderr, msg)
	}
}

// openBackend picks the backend named by --backend.
func (f *modelFlags) openBackend() (backend.Backend, error) {
	if f.Threads < 0 {
		return nil, usagef("--threads must be positive, got %d", f.Threads)
	}
	if f.Threads > 0 {
		runtime.GOMAXPROCS(f.Threads)
	}
	newCPU := func() backend.Backend {
		be := cpu.New()
		if f.Threads > 0 {
			be.SetThreads(f.Threads)
		}
		return be
	}
	switch f.Backend {
	case "cpu":
		return newCPU(), nil
	case "auto", "":
		be, err := openGPU()
		if err == nil {
			return be, nil
		}
		slog.Debug("no usable GPU, running on the CPU", "reason", err)
		if f.Backend == "auto" && os.Getenv("NEOSCOPE_QUIET") == "" {
			deferNotice(fmt.Sprintf("backend: no usable GPU (%v); running on the CPU", err))
		}
		return newCPU(), nil
	case "cuda":
		be, err := openGPU()
		if err != nil {
			return nil, fmt.Errorf("--backend cuda: %w", err)
		}
		return be, nil
	}
	return nil, usagef("--backend %q: want auto, cpu or cuda", f.Backend)
}

// open resolves --model and loads it on the chosen backend.
func (f *modelFlags) open() (*forward.Model, error) {
	dir, err := resolveModel(f.Model)
	if err != nil {
		return nil, err
	}
	be, err := f.openBackend()
	if err != nil {
		return nil, err
	}
	return openModel(be, dir)
}

// logf prints a progress or status line to stderr.
func logf(format string, a ...any) {
	flushNotice()
	fmt.Fprintf(os.Stderr, format+"\n", a...)
}

// printJSON writes v as indented JSON to w. NaN and infinite numbers,
// which JSON cannot hold, are written as null with a warning on stderr.
func printJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	err := enc.Encode(v)
	var uv *json.UnsupportedValueError
	if errors.As(err, &uv) {
		safe, n := outfile.NullNaN(v)
		logf("warning: %d result value(s) are NaN or infinite (a diverged model or an empty average?); written as null", n)
		buf.Reset()
		err = enc.Encode(safe)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}
