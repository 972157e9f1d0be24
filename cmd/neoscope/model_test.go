package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDisplayName: charts name a Hugging Face cache snapshot by its hub id,
// not by the revision hash that is its directory's name.
func TestDisplayName(t *testing.T) {
	root := t.TempDir()
	snap := filepath.Join(root, "hub", "models--EleutherAI--gpt-neo-125m", "snapshots", "21def0189f5705e2521767faed922f1f15e7d7db")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := displayName(snap); got != "EleutherAI/gpt-neo-125m" {
		t.Errorf("snapshot: %q", got)
	}
	plain := filepath.Join(root, "tiny-neo")
	if got := displayName(plain); got != "tiny-neo" {
		t.Errorf("directory: %q", got)
	}
}
