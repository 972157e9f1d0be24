package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress reports work done: a bar with rate and ETA on a terminal, a quiet
// line every few seconds in logs (stderr not a terminal), nothing with
// NEOSCOPE_QUIET set.
type progress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	desc  string
	total int64
	done  int64
	start time.Time
	last  time.Time
	quiet bool
}

func newProgress(total int, desc string) *progress {
	flushNotice() // the work starts: say which backend runs it
	p := &progress{desc: desc, total: int64(total), start: time.Now(), last: time.Now()}
	if os.Getenv("NEOSCOPE_QUIET") != "" {
		p.quiet = true
		return p
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		p.bar = progressbar.NewOptions64(int64(total),
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("it"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// Set records absolute progress (done of total).
func (p *progress) Set(done int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = int64(done)
	if p.quiet {
		return
	}
	if p.bar != nil {
		p.bar.Set64(p.done)
		return
	}
	if time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		el := time.Since(p.start).Seconds()
		rate := float64(p.done) / el
		eta := "?"
		if rate > 0 {
			eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).String()
		}
		fmt.Fprintf(os.Stderr, "%s: %d/%d (%.1f/s, eta %s)\n", p.desc, p.done, p.total, rate, eta)
	}
}

// Callback adapts the bar to the func(done, total int) callbacks of probes.
func (p *progress) Callback() func(done, total int) {
	return func(done, total int) {
		if int64(total) != p.total {
			p.mu.Lock()
			p.total = int64(total)
			if p.bar != nil {
				p.bar.ChangeMax64(int64(total))
			}
			p.mu.Unlock()
		}
		p.Set(done)
	}
}

// Finish closes the bar.
func (p *progress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
