# revurb — the README's two commands are `make run` and `make test`.

GO      ?= go
BIN     := bin/revurb
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
NODE_DIR := cmd/revurb/testdata
NODE_STAMP := $(NODE_DIR)/node_modules/.package-lock.json

.PHONY: run build image test lint bench fuzz load load-cluster profile trace deps system-deps clean

## run: build and start the server on its embedded default app
run: build
	./$(BIN) start --console

## build: compile bin/revurb
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/revurb

IMAGE ?= revurb:$(VERSION)
# BUILDER is the program that builds the image: docker when its engine
# answers, else buildah, else podman (BUILDER=podman make image to choose).
BUILDER ?= $(shell if docker info >/dev/null 2>&1; then echo docker; \
	elif command -v buildah >/dev/null 2>&1; then echo buildah; \
	elif command -v podman >/dev/null 2>&1; then echo podman; fi)

## image: build the container image $(IMAGE) (cmd/revurb/Containerfile): the static binary, built here,
## on an empty filesystem, run as user 65532; with docker, buildah or podman, whichever is here (BUILDER=)
image:
	@builder='$(BUILDER)'; \
	if [ -z "$$builder" ]; then \
		echo "image: no docker engine, buildah or podman here (Debian: apt-get install buildah)" >&2; exit 1; \
	fi; \
	set -ex; \
	GO='$(GO)' cmd/revurb/rootfs.sh bin/image '$(VERSION)'; \
	$$builder build -f cmd/revurb/Containerfile --target prebuilt --build-arg VERSION='$(VERSION)' -t '$(IMAGE)' .

## test: install what the tests need, lint, then run every test with the race detector
test: deps lint
	$(GO) test -race -shuffle=on -count=1 -timeout 15m ./...

## deps: what the tests need: Debian's chromium, nginx and redis-server where absent, and the npm clients from the committed lockfile
deps: system-deps $(NODE_STAMP)

## system-deps: apt-get install chromium, nginx, redis-server, buildah and ca-certificates if missing (no-op when present; services left stopped)
system-deps:
	@.ci/system-deps

$(NODE_STAMP): $(NODE_DIR)/package-lock.json $(NODE_DIR)/package.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## lint: gofmt, go vet, staticcheck (pinned in go.mod's tool directive), and the import arrows of DESIGN.md
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './$(NODE_DIR)/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck -checks inherit,ST1016 ./...
	@$(GO) list -f '{{.ImportPath}} {{join .Imports " "}}' ./... | .ci/arrows

## bench: the Go benchmarks, written to perf/bench.txt for BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./codec/ ./pusher/ ./api/ | tee perf/bench.txt

FUZZTIME ?= 30s
FUZZFLAGS ?=

## fuzz: every fuzz target of the repository in turn, FUZZTIME each (make fuzz FUZZTIME=10m; FUZZFLAGS=-parallel=1 for one worker)
# Targets are found by name (func FuzzX in a _test.go file), so a new one is
# run without editing this. A crasher is written to testdata/fuzz/FuzzX/ in
# its package; keep it there as a regression seed once fixed. Go 1.26 can
# fail a target with "context deadline exceeded" just as FUZZTIME runs out
# (golang/go#75804): without a failing input written that is reported and
# not counted as a failure.
fuzz:
	@failed=""; \
	targets=$$(grep -rE --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git '^func Fuzz[A-Za-z0-9_]*\(' . | \
		sed -E 's|^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1:\2|' | sort); \
	for t in $$targets; do \
		dir=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name $$dir/ ($(FUZZTIME))"; \
		log=$$(mktemp); \
		{ $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$dir/ 2>&1; echo $$? >$$log.rc; } | tee $$log; \
		if [ "$$(cat $$log.rc)" != 0 ]; then \
			if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "== $$name: stopped by the -fuzztime deadline race with no failing input (golang/go#75804): not a crasher"; \
			else \
				failed="$$failed $$name"; \
			fi; \
		fi; \
		rm -f $$log $$log.rc; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi; \
	echo "fuzz: every target passed"

## load: build revurb fresh and run the standard load scenarios against it and Soketi 1.6,
## side by side, and the wss-* scenarios over wss:// against revurb's own TLS, Soketi's own TLS and
## nginx terminating TLS in front of revurb (the README's recipe), with a CA made for the run
## (perf/run.sh; SERVER=revurb, soketi or nginx for one side) → perf/results/<date>.md;
## with the open-loop scenarios and the latency–throughput curve (curve-*) → perf/results/<date>-curve.svg
load:
	perf/run.sh

## load-cluster: build revurb fresh, start redis-server and 6 nodes on it, and spread 102,000 loadgen sockets
## over them on one channel (perf/cluster.sh; NODES=, CONNS=, EVENTS=, RATE=... override; TOPOLOGY=cluster on a
## Redis Cluster of 3 primaries; MODE=join: a node's join time with 2,000 apps) → perf/results/<date>-cluster.md
load-cluster:
	perf/cluster.sh

## profile: build revurb, run the standard fan-out load against it with --pprof, and write
## CPU, heap and allocs profiles with their `go tool pprof -top` summaries to perf/profiles/
profile:
	perf/profile.sh

## trace: build revurb, run an open-loop scenario against it with --pprof (SCENARIO=, default
## open-1k-10ch-600ev), take a Go execution trace of TRACE_SECONDS (5) mid-load and print where
## goroutines wait (perf/trace.sh, perf/tracestat) → perf/profiles/trace-<scenario>.{out,txt}
trace:
	perf/trace.sh

clean:
	rm -rf bin
