package forward

import (
	"path/filepath"

	"github.com/neoscope/neoscope/runtime/arch"
	"github.com/neoscope/neoscope/runtime/backend"
	"github.com/neoscope/neoscope/runtime/checkpoint"
)

// Open loads a model directory (config.json + weights) onto be.
func Open(be backend.Backend, dir string) (*Model, error) {
	cfg, err := arch.Load(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	w, err := checkpoint.Load(dir, cfg)
	if err != nil {
		return nil, err
	}
	m, err := New(be, cfg, w)
	if err != nil {
		w.Close()
		return nil, err
	}
	return m, nil
}
