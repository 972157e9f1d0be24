package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeHub serves /{repo}/resolve/{rev}/{file} the way huggingface.co does:
// small files answered directly with their git blob id as ETag, LFS files
// with a 302 to a CDN path carrying X-Linked-Etag (sha256) and
// X-Linked-Size; X-Repo-Commit on every answer; X-Error-Code on errors.
type fakeHub struct {
	srv     *httptest.Server
	cdn     *httptest.Server // another host, as the hub's CDN is
	sameCDN bool             // redirect LFS files to srv's own /cdn/ instead
	noRange bool             // ignore Range headers (answer 200 with everything)
	repo    string
	commit  string
	files   map[string]*fakeFile
	token   string            // if set, required (else 401 RepoNotFound, as for a private repo)
	renamed map[string]string // old repo id -> current one (relative redirect)

	mu   sync.Mutex
	reqs []fakeReq
}

type fakeFile struct {
	data  []byte
	lfs   bool
	serve []byte // if set, the bytes actually served (a corrupt transfer)
	cuts  []int  // close the connection after this many body bytes, once per entry
}

type fakeReq struct {
	method, path, rangeHdr, auth string
}

func gitBlobID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func randBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func newFakeHub(t *testing.T, files map[string]*fakeFile) *fakeHub {
	h := &fakeHub{repo: "tiny-org/tiny-neo", commit: strings.Repeat("ab12", 10), files: files, renamed: map[string]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.cdn.Close)
	return h
}

func (h *fakeHub) requests(method, pathPrefix string) []fakeReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []fakeReq
	for _, r := range h.reqs {
		if (method == "" || r.method == method) && strings.HasPrefix(r.path, pathPrefix) {
			out = append(out, r)
		}
	}
	return out
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.reqs = append(h.reqs, fakeReq{r.Method, r.URL.Path, r.Header.Get("Range"), r.Header.Get("Authorization")})
	h.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/cdn/") {
		for _, f := range h.files {
			if f.lfs && "/cdn/"+sha(f.data) == r.URL.Path {
				h.body(w, r, f)
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/resolve/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if to, ok := h.renamed[repo]; ok {
		w.Header().Set("Location", "/"+to+"/resolve/"+rest)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if repo != h.repo || (h.token != "" && r.Header.Get("Authorization") != "Bearer "+h.token) {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.Header().Set("X-Error-Message", "Repository not found")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rev, file, _ := strings.Cut(rest, "/")
	if rev != "main" && rev != h.commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", h.commit)
	f, ok := h.files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if f.lfs {
		w.Header().Set("ETag", `"`+gitBlobID([]byte("pointer "+file))+`"`)
		w.Header().Set("X-Linked-Etag", `"`+sha(f.data)+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.data)))
		cdn := h.cdn.URL
		if h.sameCDN {
			cdn = h.srv.URL
		}
		w.Header().Set("Location", cdn+"/cdn/"+sha(f.data)+"?X-Amz-Signature=x")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitBlobID(f.data)+`"`)
	h.body(w, r, f)
}

// body serves a file with Range support, cutting the connection on request.
func (h *fakeHub) body(w http.ResponseWriter, r *http.Request, f *fakeFile) {
	data := f.data
	if f.serve != nil {
		data = f.serve
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" && !h.noRange {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || n >= len(data) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
	if start > 0 {
		w.WriteHeader(http.StatusPartialContent)
	}
	if r.Method == http.MethodHead {
		return
	}
	h.mu.Lock()
	cut := -1
	if len(f.cuts) > 0 {
		cut, f.cuts = f.cuts[0], f.cuts[1:]
	}
	h.mu.Unlock()
	if cut >= 0 {
		w.Write(data[start : start+cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-file
	}
	w.Write(data[start:])
}

func tinyRepo() map[string]*fakeFile {
	return map[string]*fakeFile{
		"config.json":       {data: []byte(`{"model_type": "gpt_neo"}`)},
		"model.safetensors": {data: randBytes(300_000, 1), lfs: true},
		"vocab.json":        {data: []byte(`{"a": 0}`)},
		"merges.txt":        {data: []byte("#version: 0.2\na b\n")},
		"tokenizer.json":    {data: randBytes(5000, 2), lfs: true},
	}
}

func testOpts(t *testing.T, h *fakeHub) Options {
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	return Options{Endpoint: h.srv.URL, CacheDir: cache}
}

func readBlobLink(t *testing.T, snap, file string) (target string, data []byte) {
	t.Helper()
	p := filepath.Join(snap, file)
	target, err := os.Readlink(p)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	data, err = os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return target, data
}

func TestDownloadThenResolve(t *testing.T) {
	h := newFakeHub(t, tinyRepo())
	opts := testOpts(t, h)
	type prog struct{ done, total int64 }
	last := map[string]prog{}
	opts.Progress = func(file string, done, total int64) { last[file] = prog{done, total} }

	dir, err := Download(context.Background(), h.repo, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(opts.CacheDir, "models--tiny-org--tiny-neo")
	if want := filepath.Join(repoDir, "snapshots", h.commit); dir != want {
		t.Fatalf("dir = %s, want %s", dir, want)
	}
	ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main"))
	if err != nil || string(ref) != h.commit {
		t.Fatalf("refs/main = %q, %v; want %q with no newline", ref, err, h.commit)
	}
	for name, f := range h.files {
		target, data := readBlobLink(t, dir, name)
		etag := gitBlobID(f.data)
		if f.lfs {
			etag = sha(f.data)
		}
		if want := "../../blobs/" + etag; target != want {
			t.Errorf("%s -> %s, want %s", name, target, want)
		}
		if string(data) != string(f.data) {
			t.Errorf("%s: content differs", name)
		}
		if p := last[name]; p.done != int64(len(f.data)) || p.total != int64(len(f.data)) {
			t.Errorf("%s: last progress %d/%d, want %d/%d", name, p.done, p.total, len(f.data), len(f.data))
		}
	}
	noExist := filepath.Join(repoDir, ".no_exist", h.commit)
	for _, f := range []string{"generation_config.json", "special_tokens_map.json", "tokenizer_config.json"} {
		if _, err := os.Stat(filepath.Join(noExist, f)); err != nil {
			t.Errorf(".no_exist/%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(noExist, "model.safetensors")); err == nil {
		t.Error(".no_exist/model.safetensors for a file that exists")
	}
	for _, absent := range []string{"generation_config.json", "pytorch_model.bin"} {
		if _, err := os.Lstat(filepath.Join(dir, absent)); err == nil {
			t.Errorf("%s should not exist", absent)
		}
	}
	// HEAD before GET; the CDN never sees the token; LFS GETs go to the CDN.
	for _, r := range h.requests("GET", "/tiny-org") {
		if strings.Contains(r.path, "model.safetensors") {
			t.Errorf("LFS file fetched from the hub, not the CDN: %s", r.path)
		}
	}
	if n := len(h.requests("GET", "/cdn/")); n != 2 {
		t.Errorf("%d CDN GETs, want 2", n)
	}
	if h.requests("", "/")[0].method != "HEAD" {
		t.Error("first request is not a HEAD")
	}
	// Files other than config.json are asked for at the commit, not at main.
	for _, r := range h.requests("HEAD", "/tiny-org") {
		if !strings.Contains(r.path, "/config.json") && !strings.Contains(r.path, "/resolve/"+h.commit+"/") {
			t.Errorf("HEAD %s not at the commit", r.path)
		}
	}

	for _, model := range []string{h.repo, h.repo + "@main", h.repo + "@" + h.commit} {
		got, err := Resolve(model)
		if err != nil || got != dir {
			t.Errorf("Resolve(%q) = %q, %v; want %q", model, got, err, dir)
		}
	}

	// A second download finds every blob cached: HEADs only.
	before := len(h.requests("GET", ""))
	if _, err := Download(context.Background(), h.repo, "main", opts); err != nil {
		t.Fatal(err)
	}
	if n := len(h.requests("GET", "")) - before; n != 0 {
		t.Errorf("second download made %d GETs, want 0", n)
	}
}

func TestDownloadResumesAcrossCalls(t *testing.T) {
	files := tinyRepo()
	w := files["model.safetensors"]
	w.cuts = []int{100_000}
	h := newFakeHub(t, files)
	opts := testOpts(t, h)
	opts.Retries = -1

	_, err := Download(context.Background(), h.repo, "main", opts)
	if err == nil || !strings.Contains(err.Error(), "model.safetensors") || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("err = %v, want a broken model.safetensors download", err)
	}
	repoDir := filepath.Join(opts.CacheDir, "models--tiny-org--tiny-neo")
	blob := filepath.Join(repoDir, "blobs", sha(w.data))
	if _, err := os.Stat(blob); err == nil {
		t.Fatal("partial blob under its final name")
	}
	if _, err := os.Lstat(filepath.Join(repoDir, "snapshots", h.commit, "model.safetensors")); err == nil {
		t.Fatal("snapshot link to a partial blob")
	}
	if _, err := os.Stat(filepath.Join(repoDir, "refs", "main")); err == nil {
		t.Fatal("refs/main written for an incomplete download")
	}
	st, err := os.Stat(blob + ".incomplete")
	if err != nil || st.Size() != 100_000 {
		t.Fatalf("incomplete file: %v, %v; want 100000 bytes", st, err)
	}
	if _, err := Resolve(h.repo); err == nil || !strings.Contains(err.Error(), "neoscope download "+h.repo) {
		t.Errorf("Resolve after failed download: %v", err)
	}

	dir, err := Download(context.Background(), h.repo, "main", opts)
	if err != nil {
		t.Fatal(err)
	}
	gets := h.requests("GET", "/cdn/"+sha(w.data))
	if len(gets) != 2 || gets[0].rangeHdr != "" || gets[1].rangeHdr != "bytes=100000-" {
		t.Fatalf("GETs of the weights: %+v; want a plain one, then Range bytes=100000-", gets)
	}
	if _, data := readBlobLink(t, dir, "model.safetensors"); string(data) != string(w.data) {
		t.Fatal("resumed file differs")
	}
	if _, err := os.Stat(blob + ".incomplete"); err == nil {
		t.Error(".incomplete left behind")
	}
}

func TestDownloadRetriesWithinCall(t *testing.T) {
	files := tinyRepo()
	w := files["model.safetensors"]
	w.cuts = []int{50_000, 70_000} // two breaks, then success
	h := newFakeHub(t, files)
	opts := testOpts(t, h)
	dir, err := Download(context.Background(), h.repo, "main", opts)
	if err != nil {
		t.Fatal(err)
	}
	gets := h.requests("GET", "/cdn/"+sha(w.data))
	want := []string{"", "bytes=50000-", "bytes=120000-"}
	if len(gets) != len(want) {
		t.Fatalf("GETs: %+v, want ranges %q", gets, want)
	}
	for i := range want {
		if gets[i].rangeHdr != want[i] {
			t.Errorf("GET %d: Range %q, want %q", i, gets[i].rangeHdr, want[i])
		}
	}
	if _, data := readBlobLink(t, dir, "model.safetensors"); string(data) != string(w.data) {
		t.Fatal("file differs")
	}
}

func TestDownloadRejectsCorruptBlob(t *testing.T) {
	files := tinyRepo()
	w := files["model.safetensors"]
	w.serve = append([]byte(nil), w.data...)
	w.serve[1234] ^= 1
	h := newFakeHub(t, files)
	opts := testOpts(t, h)
	_, err := Download(context.Background(), h.repo, "main", opts)
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("err = %v, want a sha256 mismatch for model.safetensors", err)
	}
	blobs := filepath.Join(opts.CacheDir, "models--tiny-org--tiny-neo", "blobs")
	for _, p := range []string{sha(w.data), sha(w.data) + ".incomplete"} {
		if _, err := os.Stat(filepath.Join(blobs, p)); err == nil {
			t.Errorf("blobs/%s exists after a corrupt transfer", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(opts.CacheDir, "models--tiny-org--tiny-neo", "snapshots", h.commit, "model.safetensors")); err == nil {
		t.Error("snapshot link to a corrupt blob")
	}
}

func TestDownloadToken(t *testing.T) {
	h := newFakeHub(t, tinyRepo())
	h.token = "hf_secret"
	opts := testOpts(t, h)

	_, err := Download(context.Background(), h.repo, "main", opts)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "HF_TOKEN") || !strings.Contains(err.Error(), h.repo) {
		t.Fatalf("err = %v, want a 401 naming the repo and HF_TOKEN", err)
	}

	t.Setenv("HF_TOKEN", "hf_secret")
	if _, err := Download(context.Background(), h.repo, "main", opts); err != nil {
		t.Fatal(err)
	}
	for _, r := range h.requests("", "/tiny-org") {
		if r.auth == "" {
			continue // the unauthenticated first try
		}
		if r.auth != "Bearer hf_secret" {
			t.Errorf("%s %s: Authorization %q", r.method, r.path, r.auth)
		}
	}
	if len(h.requests("", "/tiny-org")) == 0 {
		t.Fatal("no hub requests")
	}
	for _, r := range h.requests("", "/cdn/") {
		if r.auth != "" {
			t.Errorf("token sent to the CDN: %s", r.path)
		}
	}
	authed := 0
	for _, r := range h.requests("", "/tiny-org") {
		if r.auth != "" {
			authed++
		}
	}
	if authed == 0 {
		t.Error("token never sent")
	}

	// An absolute redirect to the same host keeps the token (huggingface_hub
	// drops it only when the host differs).
	h2 := newFakeHub(t, tinyRepo())
	h2.sameCDN = true
	if _, err := Download(context.Background(), h2.repo, "main", Options{Endpoint: h2.srv.URL, CacheDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	gets := h2.requests("GET", "/cdn/")
	if len(gets) == 0 {
		t.Fatal("no CDN GETs")
	}
	for _, r := range gets {
		if r.auth != "Bearer hf_secret" {
			t.Errorf("same-host GET %s: Authorization %q", r.path, r.auth)
		}
	}
}

func TestDownloadErrors(t *testing.T) {
	h := newFakeHub(t, tinyRepo())
	opts := testOpts(t, h)
	ctx := context.Background()

	_, err := Download(ctx, "tiny-org/nope", "main", opts)
	if err == nil || !strings.Contains(err.Error(), "tiny-org/nope not found") {
		t.Errorf("unknown repo: %v", err)
	}
	_, err = Download(ctx, h.repo, "v9", opts)
	if err == nil || !strings.Contains(err.Error(), `revision "v9" not found`) {
		t.Errorf("unknown revision: %v", err)
	}
	_, err = Download(ctx, "bad repo", "main", opts)
	if err == nil || !strings.Contains(err.Error(), "not a hub repo id") {
		t.Errorf("bad id: %v", err)
	}
	_, err = Download(ctx, h.repo, "../../x", opts)
	if err == nil || !strings.Contains(err.Error(), "bad revision") {
		t.Errorf("bad revision: %v", err)
	}

	noCfg := tinyRepo()
	delete(noCfg, "config.json")
	h2 := newFakeHub(t, noCfg)
	_, err = Download(ctx, h2.repo, "main", Options{Endpoint: h2.srv.URL, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "config.json") || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing config.json: %v", err)
	}

	noWeights := tinyRepo()
	delete(noWeights, "model.safetensors")
	h3 := newFakeHub(t, noWeights)
	_, err = Download(ctx, h3.repo, "main", Options{Endpoint: h3.srv.URL, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no weights") {
		t.Errorf("missing weights: %v", err)
	}
}

func TestDownloadShardsAndBin(t *testing.T) {
	sharded := tinyRepo()
	delete(sharded, "model.safetensors")
	sharded["model.safetensors.index.json"] = &fakeFile{data: []byte(`{"metadata": {}, "weight_map": {
		"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}`)}
	sharded["model-00001-of-00002.safetensors"] = &fakeFile{data: randBytes(1000, 3), lfs: true}
	sharded["model-00002-of-00002.safetensors"] = &fakeFile{data: randBytes(1000, 4), lfs: true}
	h := newFakeHub(t, sharded)
	dir, err := Download(context.Background(), h.repo, "main", Options{Endpoint: h.srv.URL, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		if _, data := readBlobLink(t, dir, f); string(data) != string(sharded[f].data) {
			t.Errorf("%s differs", f)
		}
	}

	sharded["model-00002-of-00002.safetensors"] = nil
	delete(sharded, "model-00002-of-00002.safetensors")
	h = newFakeHub(t, sharded)
	_, err = Download(context.Background(), h.repo, "main", Options{Endpoint: h.srv.URL, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "model-00002-of-00002.safetensors") {
		t.Errorf("missing shard: %v", err)
	}

	old := tinyRepo()
	delete(old, "model.safetensors")
	old["pytorch_model.bin"] = &fakeFile{data: randBytes(2000, 5), lfs: true}
	h = newFakeHub(t, old)
	dir, err = Download(context.Background(), h.repo, "main", Options{Endpoint: h.srv.URL, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, data := readBlobLink(t, dir, "pytorch_model.bin"); string(data) != string(old["pytorch_model.bin"].data) {
		t.Error("pytorch_model.bin differs")
	}
}

// A renamed repo answers with a relative redirect, which is followed.
func TestDownloadRenamedRepo(t *testing.T) {
	h := newFakeHub(t, tinyRepo())
	h.renamed["old-org/tiny"] = h.repo
	cache := t.TempDir()
	dir, err := Download(context.Background(), "old-org/tiny", "main", Options{Endpoint: h.srv.URL, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "models--old-org--tiny", "snapshots", h.commit); dir != want {
		t.Errorf("dir = %s, want %s", dir, want)
	}
	if _, data := readBlobLink(t, dir, "config.json"); string(data) != string(h.files["config.json"].data) {
		t.Error("config.json differs")
	}
}

func TestCacheDir(t *testing.T) {
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"} {
		t.Setenv(v, "")
	}
	t.Setenv("HOME", "/home/u")
	if got := CacheDir(); got != "/home/u/.cache/huggingface/hub" {
		t.Errorf("default: %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := CacheDir(); got != "/xdg/huggingface/hub" {
		t.Errorf("XDG_CACHE_HOME: %s", got)
	}
	t.Setenv("HF_HOME", "~/hf")
	if got := CacheDir(); got != "/home/u/hf/hub" {
		t.Errorf("HF_HOME: %s", got)
	}
	t.Setenv("HUGGINGFACE_HUB_CACHE", "/legacy")
	if got := CacheDir(); got != "/legacy" {
		t.Errorf("HUGGINGFACE_HUB_CACHE: %s", got)
	}
	t.Setenv("BASE", "/base")
	t.Setenv("HF_HUB_CACHE", "$BASE/hub")
	if got := CacheDir(); got != "/base/hub" {
		t.Errorf("HF_HUB_CACHE: %s", got)
	}
}

func TestResolve(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	local := t.TempDir()
	if got, err := Resolve(local); err != nil || got != local {
		t.Errorf("Resolve(dir) = %q, %v", got, err)
	}
	f := filepath.Join(local, "config.json")
	os.WriteFile(f, []byte("{}"), 0o644)
	if _, err := Resolve(f); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("Resolve(file): %v", err)
	}
	_, err := Resolve("EleutherAI/gpt-neo-125m")
	if err == nil || !strings.Contains(err.Error(), "neoscope download EleutherAI/gpt-neo-125m") ||
		!strings.Contains(err.Error(), filepath.Join(cache, "models--EleutherAI--gpt-neo-125m")) {
		t.Errorf("not cached: %v", err)
	}
	if _, err := Resolve("./no/such/dir"); err == nil || !strings.Contains(err.Error(), "not a hub repo id") {
		t.Errorf("bad path: %v", err)
	}

	// A cache laid out by hand, as huggingface_hub leaves it, with a tag and a bare name.
	commit := strings.Repeat("0123456789", 4)
	repo := filepath.Join(cache, "models--gpt2")
	snap := filepath.Join(repo, "snapshots", commit)
	os.MkdirAll(snap, 0o755)
	os.MkdirAll(filepath.Join(repo, "blobs"), 0o755)
	os.WriteFile(filepath.Join(repo, "blobs", "abc"), []byte("{}"), 0o644)
	os.Symlink("../../blobs/abc", filepath.Join(snap, "config.json"))
	os.MkdirAll(filepath.Join(repo, "refs", "refs", "pr"), 0o755)
	os.WriteFile(filepath.Join(repo, "refs", "v1.0"), []byte(commit+"\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "refs", "refs", "pr", "1"), []byte(commit), 0o644)
	for _, m := range []string{"gpt2@v1.0", "gpt2@refs/pr/1", "gpt2@" + commit} {
		if got, err := Resolve(m); err != nil || got != snap {
			t.Errorf("Resolve(%q) = %q, %v; want %s", m, got, err, snap)
		}
	}
	_, err = Resolve("gpt2")
	if err == nil || !strings.Contains(err.Error(), `revision "main" is not in the cache`) || !strings.Contains(err.Error(), "refs/pr/1, v1.0") {
		t.Errorf("missing main: %v", err)
	}
	os.Remove(filepath.Join(repo, "blobs", "abc")) // dangling link: incomplete snapshot
	if _, err := Resolve("gpt2@v1.0"); err == nil || !strings.Contains(err.Error(), "no config.json") {
		t.Errorf("incomplete snapshot: %v", err)
	}
}

func TestParseModel(t *testing.T) {
	for _, c := range []struct{ in, repo, rev string }{
		{"EleutherAI/gpt-neo-125m", "EleutherAI/gpt-neo-125m", "main"},
		{"gpt2", "gpt2", "main"},
		{"org/name@refs/pr/3", "org/name", "refs/pr/3"},
		{"org/na.me_x@v1", "org/na.me_x", "v1"},
	} {
		repo, rev, err := ParseModel(c.in)
		if err != nil || repo != c.repo || rev != c.rev {
			t.Errorf("ParseModel(%q) = %q, %q, %v", c.in, repo, rev, err)
		}
	}
	for _, bad := range []string{"a/b/c", "org/--x", "org/x--y", "org/.x", "/x", "org/x@", "org/x@../y", "org/x@a//b", strings.Repeat("a", 97)} {
		if _, _, err := ParseModel(bad); err == nil {
			t.Errorf("ParseModel(%q) accepted", bad)
		}
	}
}

// Two downloads of one repo into one cache at once: the blob lock makes the
// second wait and reuse the first's blob.
func TestDownloadConcurrent(t *testing.T) {
	files := tinyRepo()
	h := newFakeHub(t, files)
	opts := Options{Endpoint: h.srv.URL, CacheDir: t.TempDir()}
	var wg sync.WaitGroup
	dirs := make([]string, 2)
	errs := make([]error, 2)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = Download(context.Background(), h.repo, "main", opts)
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if _, data := readBlobLink(t, dirs[i], "model.safetensors"); string(data) != string(files["model.safetensors"].data) {
			t.Fatal("content differs")
		}
	}
	if n := len(h.requests("GET", "/cdn/"+sha(files["model.safetensors"].data))); n != 1 {
		t.Errorf("weights fetched %d times, want 1", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dirs[0], "*tmp-link"))
	if len(leftovers) != 0 {
		t.Errorf("temporary links left: %v", leftovers)
	}
}

// A server that ignores Range answers 200: the partial file is discarded
// and the download starts over, still ending with the right bytes. A stale
// .incomplete longer than the file is discarded too.
func TestDownloadResumeFallbacks(t *testing.T) {
	files := tinyRepo()
	w := files["model.safetensors"]
	w.cuts = []int{100_000}
	h := newFakeHub(t, files)
	h.noRange = true
	opts := Options{Endpoint: h.srv.URL, CacheDir: t.TempDir()}
	dir, err := Download(context.Background(), h.repo, "main", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, data := readBlobLink(t, dir, "model.safetensors"); string(data) != string(w.data) {
		t.Fatal("content differs after a restarted download")
	}
	if gets := h.requests("GET", "/cdn/"+sha(w.data)); len(gets) != 2 || gets[1].rangeHdr != "bytes=100000-" {
		t.Fatalf("GETs: %+v", gets)
	}

	h2 := newFakeHub(t, tinyRepo())
	opts2 := Options{Endpoint: h2.srv.URL, CacheDir: t.TempDir()}
	blobs := filepath.Join(opts2.CacheDir, RepoFolder(h2.repo), "blobs")
	os.MkdirAll(blobs, 0o755)
	stale := filepath.Join(blobs, sha(w.data)+".incomplete")
	os.WriteFile(stale, randBytes(len(w.data)+10, 9), 0o644)
	dir, err = Download(context.Background(), h2.repo, "main", opts2)
	if err != nil {
		t.Fatal(err)
	}
	if _, data := readBlobLink(t, dir, "model.safetensors"); string(data) != string(w.data) {
		t.Fatal("content differs after a stale .incomplete")
	}
	if gets := h2.requests("GET", "/cdn/"+sha(w.data)); len(gets) != 1 || gets[0].rangeHdr != "" {
		t.Fatalf("GETs: %+v, want one without Range", gets)
	}

	// A complete but corrupt .incomplete (right size, wrong bytes) is checked,
	// discarded, and reported; the next run downloads afresh.
	h3 := newFakeHub(t, tinyRepo())
	opts3 := Options{Endpoint: h3.srv.URL, CacheDir: t.TempDir()}
	blobs = filepath.Join(opts3.CacheDir, RepoFolder(h3.repo), "blobs")
	os.MkdirAll(blobs, 0o755)
	stale = filepath.Join(blobs, sha(w.data)+".incomplete")
	os.WriteFile(stale, randBytes(len(w.data), 9), 0o644)
	if _, err := Download(context.Background(), h3.repo, "main", opts3); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("err = %v, want sha256 mismatch", err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Fatal("corrupt .incomplete kept")
	}
	if _, err := Download(context.Background(), h3.repo, "main", opts3); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadNeedsCommit(t *testing.T) {
	h := newFakeHub(t, tinyRepo())
	h.commit = "" // a server that is not the hub sends no X-Repo-Commit
	_, err := Download(context.Background(), h.repo, "main", Options{Endpoint: h.srv.URL, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "X-Repo-Commit") {
		t.Fatalf("err = %v", err)
	}
}
