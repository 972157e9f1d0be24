package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configures Download. The zero value uses the environment.
type Options struct {
	CacheDir string       // default CacheDir()
	Endpoint string       // default $HF_ENDPOINT or https://huggingface.co
	Token    string       // default $HF_TOKEN, else $HUGGING_FACE_HUB_TOKEN
	Client   *http.Client // default a client with connect/header timeouts and no overall timeout

	// Retries is how many times a broken transfer is resumed (Range request)
	// within one call before giving up; 0 means 3, negative means none.
	Retries int

	// Progress, if set, is called as each file downloads, with the bytes done
	// and the total (-1 when unknown), including once at the start and once
	// when the file is complete. Files already cached report done == total once.
	Progress func(file string, done, total int64)
}

// DefaultEndpoint is the hub's address.
const DefaultEndpoint = "https://huggingface.co"

// TokenizerFiles are fetched when the repo has them.
var TokenizerFiles = []string{"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"}

// ErrEntryNotFound is wrapped by errors for a file the repo does not have.
var ErrEntryNotFound = errors.New("file not found in repo")

// Download fetches a model's config.json, weights (model.safetensors, else
// model.safetensors.index.json and its shards, else pytorch_model.bin) and
// whichever TokenizerFiles exist into the cache, and returns the snapshot
// directory. revision is a branch, tag or commit hash ("" means "main").
// See the package comment for the protocol and the cache layout.
func Download(ctx context.Context, repoID, revision string, opts Options) (string, error) {
	if revision == "" {
		revision = DefaultRevision
	}
	if err := ValidRepoID(repoID); err != nil {
		return "", err
	}
	if err := validRevision(revision); err != nil {
		return "", fmt.Errorf("%s: %w", repoID, err)
	}
	d := newDownloader(repoID, opts)

	// config.json at the requested revision fixes the commit.
	cfg, err := d.head(ctx, revision, "config.json")
	if err != nil {
		if errors.Is(err, ErrEntryNotFound) {
			return "", fmt.Errorf("%s@%s has no config.json: not a transformers model repo (%w)", repoID, revision, err)
		}
		return "", err
	}
	if !commitRe.MatchString(cfg.commit) {
		return "", fmt.Errorf("%s: the server sent X-Repo-Commit %q for config.json, want a 40-digit commit hash", cfg.url, cfg.commit)
	}
	d.commit = cfg.commit
	if !cfg.cdn {
		cfg.getURL = d.resolveURL(d.commit, cfg.file) // the version HEAD described
	}
	if err := d.fetch(ctx, cfg); err != nil {
		return "", err
	}

	if err := d.fetchWeights(ctx); err != nil {
		return "", err
	}
	for _, f := range TokenizerFiles {
		m, err := d.head(ctx, d.commit, f)
		if errors.Is(err, ErrEntryNotFound) {
			d.noExist(f)
			continue
		}
		if err != nil {
			return "", err
		}
		if err := d.fetch(ctx, m); err != nil {
			return "", err
		}
	}
	if revision != d.commit {
		ref := filepath.Join(d.repoDir, "refs", filepath.FromSlash(revision))
		if err := writeFileAtomic(ref, []byte(d.commit)); err != nil {
			return "", err
		}
	}
	return filepath.Join(d.repoDir, "snapshots", d.commit), nil
}

type downloader struct {
	repoID   string
	opts     Options
	endpoint string
	token    string
	get      *http.Client // follows redirects
	headC    *http.Client // does not
	root     string
	repoDir  string
	commit   string
}

func newDownloader(repoID string, opts Options) *downloader {
	d := &downloader{repoID: repoID, opts: opts}
	d.endpoint = opts.Endpoint
	if d.endpoint == "" {
		d.endpoint = os.Getenv("HF_ENDPOINT")
	}
	if d.endpoint == "" {
		d.endpoint = DefaultEndpoint
	}
	d.endpoint = strings.TrimRight(d.endpoint, "/")
	d.token = opts.Token
	if d.token == "" {
		d.token = os.Getenv("HF_TOKEN")
	}
	if d.token == "" {
		d.token = os.Getenv("HUGGING_FACE_HUB_TOKEN")
	}
	d.get = opts.Client
	if d.get == nil {
		d.get = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ForceAttemptHTTP2:     true,
		}}
	}
	h := *d.get
	h.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	d.headC = &h
	d.root = opts.CacheDir
	if d.root == "" {
		d.root = CacheDir()
	}
	d.repoDir = filepath.Join(d.root, RepoFolder(repoID))
	return d
}

// fileMeta is what HEAD says about one file.
type fileMeta struct {
	file   string
	url    string // the resolve URL
	getURL string // where to GET: the resolve URL, or the CDN it redirects to
	cdn    bool   // getURL is on another host: no Authorization
	commit string
	etag   string
	lfs    bool  // etag came from X-Linked-Etag: it is the sha256
	size   int64 // -1 if unknown
}

func (d *downloader) resolveURL(rev, file string) string {
	return d.endpoint + "/" + d.repoID + "/resolve/" + url.PathEscape(rev) + "/" + (&url.URL{Path: file}).EscapedPath()
}

func (d *downloader) header(req *http.Request, auth bool) {
	req.Header.Set("User-Agent", "neoscope")
	// Sizes and ranges refer to the stored bytes: no transparent gzip.
	req.Header.Set("Accept-Encoding", "identity")
	if auth && d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
}

var etagRe = regexp.MustCompile(`^[A-Za-z0-9._\-]+$`)

// head asks for a file's metadata at revision rev.
func (d *downloader) head(ctx context.Context, rev, file string) (*fileMeta, error) {
	u := d.resolveURL(rev, file)
	cur := u
	for hops := 0; ; hops++ {
		if hops > 10 {
			return nil, fmt.Errorf("HEAD %s: more than 10 redirects", u)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, cur, nil)
		if err != nil {
			return nil, err
		}
		d.header(req, true)
		resp, err := d.headC.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", d.repoID, file, err)
		}
		resp.Body.Close()
		m := &fileMeta{file: file, url: u, getURL: cur, size: -1}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				return nil, fmt.Errorf("HEAD %s: %d redirect without a usable Location: %w", cur, resp.StatusCode, err)
			}
			if resp.Header.Get("Location") != "" && isRelative(resp.Header.Get("Location")) {
				// Same site (a renamed repo): follow, with the token.
				cur = loc.String()
				continue
			}
			// Elsewhere (an LFS blob on a CDN): fetch it from there, with the
			// token only if it is the same host, as huggingface_hub does.
			m.getURL = loc.String()
			if ru, err := url.Parse(u); err != nil || ru.Host != loc.Host {
				m.cdn = true
			}
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil {
				m.size = n
			}
		default:
			return nil, d.statusError(resp, "HEAD", cur, rev, file)
		}
		m.commit = resp.Header.Get("X-Repo-Commit")
		etag := resp.Header.Get("X-Linked-Etag")
		m.lfs = etag != ""
		if etag == "" {
			etag = resp.Header.Get("ETag")
		}
		m.etag = strings.Trim(etag, `"`)
		if n, err := strconv.ParseInt(resp.Header.Get("X-Linked-Size"), 10, 64); err == nil {
			m.size = n
		}
		if m.etag == "" {
			return nil, fmt.Errorf("HEAD %s: no ETag or X-Linked-Etag header; cannot name the blob", cur)
		}
		if !etagRe.MatchString(m.etag) || m.etag == "." || m.etag == ".." {
			return nil, fmt.Errorf("HEAD %s: ETag %q is not usable as a file name", cur, m.etag)
		}
		if d.commit != "" && m.commit != "" && m.commit != d.commit {
			return nil, fmt.Errorf("HEAD %s: X-Repo-Commit %s, but this download is of commit %s", cur, m.commit, d.commit)
		}
		return m, nil
	}
}

func isRelative(loc string) bool {
	u, err := url.Parse(loc)
	return err == nil && u.Host == "" && u.Scheme == ""
}

// statusError explains a failed request, using the hub's X-Error-Code.
func (d *downloader) statusError(resp *http.Response, method, u, rev, file string) error {
	code := resp.Header.Get("X-Error-Code")
	msg := resp.Header.Get("X-Error-Message")
	detail := resp.Status
	if msg != "" {
		detail += ": " + msg
	}
	tokenHint := "set HF_TOKEN to a token with access"
	if d.token != "" {
		tokenHint = "check that HF_TOKEN is valid and has access"
	}
	switch {
	case code == "GatedRepo":
		return fmt.Errorf("%s is gated: accept its terms on the hub, and %s (%s %s: %s)", d.repoID, tokenHint, method, u, detail)
	case code == "RepoNotFound" || resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("repository %s not found at %s, or it is private or gated: %s (%s %s: %s)", d.repoID, d.endpoint, tokenHint, method, u, detail)
	case code == "RevisionNotFound":
		return fmt.Errorf("revision %q not found in %s (%s %s: %s)", rev, d.repoID, method, u, detail)
	case code == "EntryNotFound" || resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s@%s: %s: %w (%s %s: %s)", d.repoID, rev, file, ErrEntryNotFound, method, u, detail)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: access to %s denied: %s (%s %s: %s)", d.repoID, file, tokenHint, method, u, detail)
	}
	return fmt.Errorf("%s %s: %s", method, u, detail)
}

func (d *downloader) fetchWeights(ctx context.Context) error {
	m, err := d.head(ctx, d.commit, "model.safetensors")
	if err == nil {
		return d.fetch(ctx, m)
	}
	if !errors.Is(err, ErrEntryNotFound) {
		return err
	}
	d.noExist("model.safetensors")
	m, err = d.head(ctx, d.commit, "model.safetensors.index.json")
	if err == nil {
		if err := d.fetch(ctx, m); err != nil {
			return err
		}
		shards, err := shardNames(d.blobPath(m.etag))
		if err != nil {
			return fmt.Errorf("%s %s: %w", d.repoID, m.file, err)
		}
		for _, s := range shards {
			sm, err := d.head(ctx, d.commit, s)
			if err != nil {
				return err // a missing shard is an error too
			}
			if err := d.fetch(ctx, sm); err != nil {
				return err
			}
		}
		return nil
	}
	if !errors.Is(err, ErrEntryNotFound) {
		return err
	}
	d.noExist("model.safetensors.index.json")
	m, err = d.head(ctx, d.commit, "pytorch_model.bin")
	if errors.Is(err, ErrEntryNotFound) {
		return fmt.Errorf("%s at commit %s has no weights: tried model.safetensors, model.safetensors.index.json, pytorch_model.bin", d.repoID, d.commit)
	}
	if err != nil {
		return err
	}
	return d.fetch(ctx, m)
}

// shardNames lists the distinct shard files of a safetensors index.
func shardNames(index string) ([]string, error) {
	b, err := os.ReadFile(index)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, errors.New(`field "weight_map" is missing or empty`)
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range idx.WeightMap {
		if path.Base(f) != f || f == "." || f == ".." || strings.Contains(f, "\\") {
			return nil, fmt.Errorf("shard name %q must be a plain file name", f)
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sortStrings(out)
	return out, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// noExist records that the commit lacks file, as huggingface_hub does
// (an empty .no_exist/<commit>/<file>), so that transformers working offline
// does not go looking for it. Best effort: failures are ignored.
func (d *downloader) noExist(file string) {
	p := filepath.Join(d.repoDir, ".no_exist", d.commit, filepath.FromSlash(file))
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
}

func (d *downloader) blobPath(etag string) string { return filepath.Join(d.repoDir, "blobs", etag) }

// fetch makes sure blobs/<etag> holds the file and links
// snapshots/<commit>/<file> to it.
func (d *downloader) fetch(ctx context.Context, m *fileMeta) error {
	blob := d.blobPath(m.etag)
	if st, err := os.Stat(blob); err == nil && (m.size < 0 || st.Size() == m.size) {
		d.progress(m.file, st.Size(), st.Size())
	} else {
		if err := d.fetchBlob(ctx, m, blob); err != nil {
			return err
		}
	}
	return d.link(m, blob)
}

func (d *downloader) progress(file string, done, total int64) {
	if d.opts.Progress != nil {
		d.opts.Progress(file, done, total)
	}
}

// fetchBlob downloads into blob+".incomplete" under the blob's lock, then
// checks and renames it.
func (d *downloader) fetchBlob(ctx context.Context, m *fileMeta, blob string) error {
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(d.root, ".locks", RepoFolder(d.repoID), m.etag+".lock"))
	if err != nil {
		return fmt.Errorf("%s %s: %w", d.repoID, m.file, err)
	}
	defer unlock()
	if st, err := os.Stat(blob); err == nil && (m.size < 0 || st.Size() == m.size) {
		return nil // another process finished it while we waited
	}

	tmp := blob + ".incomplete"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	defer f.Close()
	retries := d.opts.Retries
	if retries == 0 {
		retries = 3
	}
	for attempt := 0; ; attempt++ {
		err = d.getInto(ctx, m, f)
		if err == nil {
			break
		}
		var perm permanentError
		if errors.As(err, &perm) || ctx.Err() != nil || attempt >= retries {
			return fmt.Errorf("%s: downloading %s: %w (partial data kept in %s; run again to resume)", d.repoID, m.file, err, tmp)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
		}
	}
	if err := verify(f, m); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("%s: %s: %w; the download was discarded, run again", d.repoID, m.file, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, blob); err != nil {
		return err
	}
	return syncDir(filepath.Dir(blob))
}

// permanentError marks failures that retrying will not fix.
type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

var contentRangeRe = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// getInto appends the rest of the file to f, resuming from f's size.
func (d *downloader) getInto(ctx context.Context, m *fileMeta, f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return permanentError{err}
	}
	off := st.Size()
	if m.size >= 0 && off > m.size {
		off = 0 // longer than the file: start over
	}
	if m.size >= 0 && off == m.size && off > 0 {
		return nil // complete already; verify decides
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.getURL, nil)
	if err != nil {
		return permanentError{err}
	}
	d.header(req, !m.cdn)
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := d.get.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		off = 0 // the whole file, whether or not we asked for a range
	case http.StatusPartialContent:
		mm := contentRangeRe.FindStringSubmatch(resp.Header.Get("Content-Range"))
		if mm == nil {
			return permanentError{fmt.Errorf("GET %s: 206 with Content-Range %q", m.getURL, resp.Header.Get("Content-Range"))}
		}
		if start, _ := strconv.ParseInt(mm[1], 10, 64); start != off {
			return permanentError{fmt.Errorf("GET %s: asked for bytes from %d, got Content-Range %q", m.getURL, off, resp.Header.Get("Content-Range"))}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if err := f.Truncate(0); err != nil {
			return permanentError{err}
		}
		return errors.New("server refused to resume (416); restarting from the beginning")
	default:
		e := d.statusError(resp, "GET", m.getURL, d.commit, m.file)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return e
		}
		return permanentError{e}
	}
	if err := f.Truncate(off); err != nil {
		return permanentError{err}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return permanentError{err}
	}
	total := m.size
	if total < 0 && resp.ContentLength >= 0 {
		total = off + resp.ContentLength
	}
	d.progress(m.file, off, total)
	buf := make([]byte, 1<<20)
	done := off
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return permanentError{err}
			}
			done += int64(n)
			d.progress(m.file, done, total)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if total >= 0 && done < total {
		return fmt.Errorf("GET %s: connection ended at byte %d of %d", m.getURL, done, total)
	}
	return nil
}

// verify checks the finished file's size and, for LFS files, its sha256
// against the etag.
func verify(f *os.File, m *fileMeta) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if m.size >= 0 && st.Size() != m.size {
		return fmt.Errorf("got %d bytes, want %d", st.Size(), m.size)
	}
	if !m.lfs || len(m.etag) != 64 {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(m.etag) {
		return fmt.Errorf("sha256 mismatch: got %s, want %s", got, m.etag)
	}
	return nil
}

// link points snapshots/<commit>/<file> at the blob with a relative symlink,
// replacing whatever was there atomically.
func (d *downloader) link(m *fileMeta, blob string) error {
	ptr := filepath.Join(d.repoDir, "snapshots", d.commit, filepath.FromSlash(m.file))
	if err := os.MkdirAll(filepath.Dir(ptr), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(ptr), blob)
	if err != nil {
		return err
	}
	if cur, err := os.Readlink(ptr); err == nil && cur == rel {
		return nil
	}
	tmp := fmt.Sprintf("%s.%d-%d.tmp-link", ptr, os.Getpid(), time.Now().UnixNano())
	if err := os.Symlink(rel, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, ptr); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeFileAtomic writes data to name via a temporary file and a rename.
func writeFileAtomic(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// lockFile takes an exclusive flock(2) on name (created if needed), waiting
// until ctx is done. huggingface_hub's filelock uses flock too, so the two
// never write the same blob at once.
func lockFile(ctx context.Context, name string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s (another download of this file running?): %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
