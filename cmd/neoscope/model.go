package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/neoscope/neoscope/models"
	"github.com/neoscope/neoscope/runtime/hub"
)

// resolveModel turns --model into a directory: a path as given, else a hub
// id found in the local Hugging Face cache, else (empty) the bundled model.
func resolveModel(model string) (string, error) {
	if model == "" {
		return bundledModel()
	}
	if st, err := os.Stat(model); err == nil && st.IsDir() {
		return model, nil
	}
	return resolveHub(model)
}

// bundledModel returns the directory of the default model.
func bundledModel() (string, error) {
	if d := os.Getenv("NEOSCOPE_DEFAULT_MODEL"); d != "" {
		return d, nil
	}
	return models.DefaultDir()
}

func resolveHub(model string) (string, error) {
	if _, _, err := hub.ParseModel(model); err != nil || strings.HasPrefix(model, ".") || strings.HasPrefix(model, "/") {
		return "", usagef("--model %q: no such model directory (nor a hub id ORG/NAME)", model)
	}
	dir, err := hub.Resolve(model)
	if err != nil {
		return "", usageError{fmt.Errorf("--model: %w", err)}
	}
	return dir, nil
}
