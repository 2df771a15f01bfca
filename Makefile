# revurb — the README's two commands are `make run` and `make test`.

GO      ?= go
BIN     := bin/revurb
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
NODE_DIR := cmd/revurb/testdata
NODE_STAMP := $(NODE_DIR)/node_modules/.package-lock.json

.PHONY: run build test lint bench load profile deps clean

## run: build and start the server on its embedded default app
run: build
	./$(BIN) start

## build: compile bin/revurb
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/revurb

## test: install what the tests need, lint, then run every test with the race detector
test: deps lint
	$(GO) test -race -shuffle=on -count=1 -timeout 15m ./...

## deps: the npm clients the end-to-end tests drive, from the committed lockfile
deps: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_DIR)/package-lock.json $(NODE_DIR)/package.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## lint: gofmt, go vet, and the import arrows of DESIGN.md
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './$(NODE_DIR)/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) list -f '{{.ImportPath}} {{join .Imports " "}}' ./... | .ci/arrows

## bench: the Go benchmarks, written to perf/bench.txt for BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./codec/ ./pusher/ ./api/ | tee perf/bench.txt

## load: build revurb fresh and run the standard load scenarios against it and Soketi 1.6,
## side by side (perf/run.sh; SERVER=revurb or SERVER=soketi for one side) → perf/results/<date>.md
load:
	perf/run.sh

## profile: build revurb, run the standard fan-out load against it with --pprof, and write
## CPU, heap and allocs profiles with their `go tool pprof -top` summaries to perf/profiles/
profile:
	perf/profile.sh

clean:
	rm -rf bin
