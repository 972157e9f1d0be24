package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/neoscope/neoscope/models"
	"github.com/neoscope/neoscope/runtime/hub"
)

// resolveModel turns --model into a directory: a path as given, else a hub
// id found in the local Hugging Face cache, else (empty) the bundled model.
func resolveModel(model string) (string, error) { return resolveModelFlag("--model", model) }

// resolveModelFlag is resolveModel for a model given by another flag
// (--compare), which its errors name.
func resolveModelFlag(flag, model string) (string, error) {
	if model == "" {
		return bundledModel()
	}
	if st, err := os.Stat(model); err == nil && st.IsDir() {
		return model, nil
	}
	return resolveHub(flag, model)
}

// bundledModel returns the directory of the default model.
func bundledModel() (string, error) {
	if d := os.Getenv("NEOSCOPE_DEFAULT_MODEL"); d != "" {
		return d, nil
	}
	return models.DefaultDir()
}

func resolveHub(flag, model string) (string, error) {
	if _, _, err := hub.ParseModel(model); err != nil || strings.HasPrefix(model, ".") || strings.HasPrefix(model, "/") {
		return "", usagef("%s %q: no such model directory (nor a hub id ORG/NAME)", flag, model)
	}
	dir, err := hub.Resolve(model)
	if err != nil {
		return "", usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return dir, nil
}

// displayName is how charts and pages name the model in dir: ORG/NAME for a
// snapshot in the Hugging Face cache (.../models--ORG--NAME/snapshots/REV),
// the bundled model's name for it, else the directory's last element.
func displayName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	if b, err := bundledModel(); err == nil {
		if ab, err := filepath.Abs(b); err == nil && ab == abs {
			return models.Name + " (bundled)"
		}
	}
	snap := filepath.Dir(abs)
	if filepath.Base(snap) == "snapshots" {
		if repo := filepath.Base(filepath.Dir(snap)); strings.HasPrefix(repo, "models--") {
			return strings.ReplaceAll(strings.TrimPrefix(repo, "models--"), "--", "/")
		}
	}
	return filepath.Base(abs)
}
