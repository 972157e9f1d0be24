package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// DefaultRevision is the revision used when none is given.
const DefaultRevision = "main"

// CacheDir returns the hub cache root as huggingface_hub computes it (see
// the package comment).
func CacheDir() string {
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if s := os.Getenv(v); s != "" {
			return expand(s)
		}
	}
	if s := os.Getenv("HF_HOME"); s != "" {
		return filepath.Join(expand(s), "hub")
	}
	if s := os.Getenv("XDG_CACHE_HOME"); s != "" {
		return filepath.Join(expand(s), "huggingface", "hub")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "~"
	}
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

// expand does Python's os.path.expandvars(os.path.expanduser(s)).
func expand(s string) string {
	if s == "~" || strings.HasPrefix(s, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			s = home + s[1:]
		}
	}
	return os.ExpandEnv(s)
}

// RepoFolder is the cache folder name of a model repo:
// "models--ORG--NAME" (huggingface_hub's repo_folder_name).
func RepoFolder(repoID string) string {
	return "models--" + strings.ReplaceAll(repoID, "/", "--")
}

// Repo ids as the hub accepts them (huggingface_hub's validate_repo_id):
// an optional namespace, a name, letters digits - _ . only.
var repoIDRe = regexp.MustCompile(`^(?:[A-Za-z0-9_.\-]+/)?[A-Za-z0-9_.\-]+$`)

var commitRe = regexp.MustCompile(`^[0-9a-f]{40}$`)

// ValidRepoID reports whether s is a well-formed hub repo id ("ORG/NAME",
// or a bare "NAME" for the hub's few legacy root-level models like "gpt2").
func ValidRepoID(s string) error {
	switch {
	case !repoIDRe.MatchString(s):
		return fmt.Errorf("%q is not a hub repo id: want ORG/NAME with letters, digits, '-', '_' and '.'", s)
	case len(s) > 96:
		return fmt.Errorf("hub repo id %q is longer than 96 characters", s)
	case strings.Contains(s, "--") || strings.Contains(s, ".."):
		return fmt.Errorf("hub repo id %q must not contain \"--\" or \"..\"", s)
	}
	for _, part := range strings.Split(s, "/") {
		if strings.HasPrefix(part, "-") || strings.HasPrefix(part, ".") || strings.HasSuffix(part, "-") || strings.HasSuffix(part, ".") {
			return fmt.Errorf("hub repo id %q: a part must not start or end with '-' or '.'", s)
		}
	}
	return nil
}

// validRevision checks a revision (branch, tag, "refs/pr/N" or commit) is
// safe to use as a path under refs/.
func validRevision(rev string) error {
	if rev == "" || strings.HasPrefix(rev, "/") || strings.ContainsAny(rev, "\\\x00") {
		return fmt.Errorf("bad revision %q", rev)
	}
	for _, p := range strings.Split(rev, "/") {
		if p == "" || p == "." || p == ".." {
			return fmt.Errorf("bad revision %q", rev)
		}
	}
	return nil
}

// ParseModel splits "ORG/NAME" or "ORG/NAME@REVISION" (the revision
// defaults to "main") and validates both parts.
func ParseModel(model string) (repoID, revision string, err error) {
	repoID, revision = model, DefaultRevision
	if i := strings.IndexByte(model, '@'); i >= 0 {
		repoID, revision = model[:i], model[i+1:]
	}
	if err := ValidRepoID(repoID); err != nil {
		return "", "", err
	}
	if err := validRevision(revision); err != nil {
		return "", "", fmt.Errorf("%s: %w", model, err)
	}
	return repoID, revision, nil
}

// Resolve turns a --model value into a model directory. An existing
// directory is returned as given. Otherwise model must be a hub id
// ORG/NAME[@REVISION] already in the cache (CacheDir): the revision (default
// "main") is a ref name under refs/ or a commit hash with a snapshot, and the
// snapshot must hold config.json. Resolve never touches the network.
func Resolve(model string) (string, error) {
	if model == "" {
		return "", errors.New("no model given: want a model directory or a hub id ORG/NAME[@REVISION]")
	}
	if st, err := os.Stat(model); err == nil {
		if st.IsDir() {
			return model, nil
		}
		return "", fmt.Errorf("model %s is a file; want a model directory (config.json and weights) or a hub id ORG/NAME", model)
	}
	repoID, rev, err := ParseModel(model)
	if err != nil {
		return "", fmt.Errorf("model %q is not a directory, and not a hub id: %w", model, err)
	}
	return ResolveIn(CacheDir(), repoID, rev)
}

// ResolveIn is Resolve for a hub id in the cache rooted at root.
func ResolveIn(root, repoID, rev string) (string, error) {
	id := repoID
	if rev != DefaultRevision {
		id += "@" + rev
	}
	hint := "; run: neoscope download " + id
	repoDir := filepath.Join(root, RepoFolder(repoID))
	if _, err := os.Stat(repoDir); err != nil {
		return "", fmt.Errorf("model %s is not a local directory and is not in the Hugging Face cache (looked for %s)%s", id, repoDir, hint)
	}
	commit := ""
	if commitRe.MatchString(rev) {
		if _, err := os.Stat(filepath.Join(repoDir, "snapshots", rev)); err == nil {
			commit = rev
		}
	}
	if commit == "" {
		ref := filepath.Join(repoDir, "refs", filepath.FromSlash(rev))
		b, err := os.ReadFile(ref)
		if err != nil {
			return "", fmt.Errorf("model %s: revision %q is not in the cache (no %s; cached refs: %s)%s", id, rev, ref, listRefs(repoDir), hint)
		}
		commit = strings.TrimSpace(string(b))
		if !commitRe.MatchString(commit) {
			return "", fmt.Errorf("model %s: %s holds %q, not a commit hash%s", id, ref, commit, hint)
		}
	}
	snap := filepath.Join(repoDir, "snapshots", commit)
	if _, err := os.Stat(filepath.Join(snap, "config.json")); err != nil {
		return "", fmt.Errorf("model %s: snapshot %s has no config.json (download incomplete?)%s", id, snap, hint)
	}
	return snap, nil
}

// listRefs names the refs cached for a repo, for error messages.
func listRefs(repoDir string) string {
	refs := filepath.Join(repoDir, "refs")
	var names []string
	filepath.WalkDir(refs, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if r, err := filepath.Rel(refs, p); err == nil {
				names = append(names, filepath.ToSlash(r))
			}
		}
		return nil
	})
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
