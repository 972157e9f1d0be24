package main

import (
	"github.com/neoscope/neoscope/runtime/forward"
)

// readPair reads the --clean and --corrupt token files of a patching task
// (attribute, circuit, patch); they must hold the same number of rows.
func readPair(clean, corrupt string) (cr, kr [][]int32, err error) {
	if cr, err = readTokenFile(clean); err != nil {
		return nil, nil, err
	}
	if kr, err = readTokenFile(corrupt); err != nil {
		return nil, nil, err
	}
	if len(cr) != len(kr) {
		return nil, nil, usagef("--clean %s has %d rows but --corrupt %s has %d", clean, len(cr), corrupt, len(kr))
	}
	return cr, kr, nil
}

// readPatchTask is readPair plus the --io and --s ids, one per row.
func readPatchTask(clean, corrupt, ioIDs, sIDs string) (cr, kr [][]int32, io, s []int32, err error) {
	if cr, kr, err = readPair(clean, corrupt); err != nil {
		return nil, nil, nil, nil, err
	}
	if io, err = patchIDs("--io", ioIDs, len(cr)); err != nil {
		return nil, nil, nil, nil, err
	}
	if s, err = patchIDs("--s", sIDs, len(cr)); err != nil {
		return nil, nil, nil, nil, err
	}
	return cr, kr, io, s, nil
}

// checkPair validates a pair read by readPair against the model (ids in the
// vocabulary, rows within the context, equal shapes) and flattens it.
func checkPair(m *forward.Model, clean, corrupt string, cr, kr [][]int32) (cf, kf []int32, B, T int, err error) {
	cf, B, T, err = m.CheckTokens(cr)
	if err != nil {
		return nil, nil, 0, 0, usagef("%s: %v", clean, err)
	}
	kf, _, T2, err := m.CheckTokens(kr)
	if err != nil {
		return nil, nil, 0, 0, usagef("%s: %v", corrupt, err)
	}
	if T2 != T {
		return nil, nil, 0, 0, usagef("--clean rows have %d tokens but --corrupt rows %d (want equal shapes)", T, T2)
	}
	return cf, kf, B, T, nil
}

// answerPos is the position whose logits a patch task reads: --pos when
// given (set says so), else the last of T; a usage error outside 0..T-1.
func answerPos(pos int, set bool, T int) (int, error) {
	if !set {
		pos = T - 1
	}
	if pos < 0 || pos >= T {
		return 0, usagef("--pos %d outside 0..%d", pos, T-1)
	}
	return pos, nil
}
