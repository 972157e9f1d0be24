# neoscope: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
# OpenBLAS behind the CPU backend's matrix products when the library links
# (Debian: libopenblas-dev); the pure-Go gonum path otherwise.
BLAS_TAG := $(shell printf 'int main(void){return 0;}' | $(CC) -x c - -lopenblas -o /dev/null 2>/dev/null && echo openblas)
TAGS ?= $(BLAS_TAG)
GOFLAGS_TAGS := $(if $(TAGS),-tags '$(TAGS)',)
BIN := bin/neoscope
FUZZTIME ?= 10s
THREADS ?= 2

.PHONY: all build test vet fmt-check fuzz demo bench bench-model ptx ptx-check clean

all: build

build:
	$(GO) build $(GOFLAGS_TAGS) -o $(BIN) ./cmd/neoscope

vet:
	$(GO) vet $(GOFLAGS_TAGS) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz:
	$(GO) test $(GOFLAGS_TAGS) -run '^$$' -fuzz FuzzParseSafetensors -fuzztime $(FUZZTIME) ./runtime/checkpoint/

# Unit, golden (../shared/fixtures), emulated-kernel and CLI tests; a short
# fuzz run of the checkpoint reader; the Slurm array test where Slurm is installed.
test: fmt-check vet build
	$(GO) test $(GOFLAGS_TAGS) -count=1 ./...
	@# The pure-Go CPU kernels (a build without OpenBLAS) against the same fixtures.
	$(if $(TAGS),$(GO) test -count=1 ./cpu/ ./probes/ablate/,)
	@# The TF32 tensor-core kernel, kept out of the default build (tag tf32), on the emulator.
	$(GO) test -tags tf32 -count=1 -run TF32 ./cuda/
	$(MAKE) fuzz
	@if [ -x .ci/slurm-test.sh ] && command -v slurmctld >/dev/null 2>&1; then bash .ci/slurm-test.sh; else echo "slurm test skipped: slurmctld not installed (.ci/run installs it)"; fi

# The tour on the bundled model: ends by printing where the report is.
demo: build
	bash benchmarks/demo.sh

bench-model:
	@test -f benchmarks/model/model.safetensors || /usr/bin/python3 ../shared/bench/make_bench_model.py benchmarks/model

# neoscope beside the PyTorch anchor at the same thread count.
bench: build bench-model
	bash benchmarks/cpu-bench.sh $(THREADS)
	$(GO) test $(GOFLAGS_TAGS) -run '^$$' -bench . -benchtime 3x ./cpu/

# kernels/*.cu -> cuda/kernels.fatbin (sm_80 + sm_90 SASS, compute_80 PTX) and
# cuda/kernels.names, after ptxas -Werror -warn-spills -warn-lmem-usage; needs nvcc.
ptx:
	bash kernels/build-ptx.sh

# Fails if the committed fatbin (or names) is not what the kernels compile to.
ptx-check:
	bash kernels/check-ptx.sh

clean:
	rm -rf bin
