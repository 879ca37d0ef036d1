# mcpctl — build, run the demo, test, benchmark.
#   make run      build and run the demo project in fixtures/demo (needs only cargo)
#   make test     install test dependencies into .deps/ and run every test
#   make fuzz     a longer fuzz of the gateway's HTTP parser and JSON-RPC dispatch
#                 (MCPCTL_FUZZ_SEED, MCPCTL_FUZZ_ITERS; a new seed each run by default)
#   make static   a static musl binary in target/x86_64-unknown-linux-musl/release/
#                 (make static-test: the debug musl builds tests/it/image_recipe.rs needs, part of make test)
#   make bench    benchmarks side by side with peers, then the soak (docs/benchmarks.md)
#   make install  the mcpctl binary alone into $(PREFIX)/bin (PREFIX=/usr/local; DESTDIR honoured)

include mk/deps.mk

CARGO ?= cargo
PREFIX ?= /usr/local
MUSL  := x86_64-unknown-linux-musl

.PHONY: all build run test test-rust conformance static static-toolchain static-test bench soak fuzz clean install

all: build

build:
	$(CARGO) build --release --bins

run: build
	scripts/demo.sh target/release

# Every test: unit and integration (against our fixtures, server-everything, the
# inspector, the Python SDKs), then the official conformance suite on both sides, and the
# alpha suite's 2025-11-25 and 2026-07-28 server scenarios against the gateway.
# (dev profile: the release profile's fat LTO would relink every test binary slowly)
# static-test: the musl binaries tests/it/image_recipe.rs puts in its image tree.
test: deps static-test
	PATH="$(DEPS_PATH)" MCPCTL_REQUIRE_PEERS=1 $(CARGO) test -- --test-threads=2
	PATH="$(DEPS_PATH)" scripts/conformance-gateway.sh target/debug
	PATH="$(DEPS_PATH)" CONFORMANCE_MODERN=1 scripts/conformance-gateway.sh target/debug

# The fuzzes of `make test`, longer and from a new seed: first the pure HTTP/1.1 parser
# (src/http1/fuzz.rs), then the gateway over sockets (tests/it/gateway_fuzz.rs).
# Each prints the seed, and a failing case prints how to replay it.
MCPCTL_FUZZ_SEED  ?= $(shell date +%s)
MCPCTL_FUZZ_ITERS ?= 50000
MCPCTL_FUZZ_JOBS  ?= 2
fuzz:
	MCPCTL_FUZZ_SEED=$(MCPCTL_FUZZ_SEED) MCPCTL_FUZZ_ITERS=$(MCPCTL_FUZZ_ITERS) \
	  $(CARGO) test --lib http1::fuzz -- --nocapture
	MCPCTL_FUZZ_SEED=$(MCPCTL_FUZZ_SEED) MCPCTL_FUZZ_ITERS=$(MCPCTL_FUZZ_ITERS) MCPCTL_FUZZ_JOBS=$(MCPCTL_FUZZ_JOBS) \
	  $(CARGO) test --test it gateway_fuzz:: -- --nocapture

conformance: deps build
	PATH="$(DEPS_PATH)" scripts/conformance-gateway.sh target/release
	PATH="$(DEPS_PATH)" CONFORMANCE_MODERN=1 scripts/conformance-gateway.sh target/release

# ring (TLS) compiles C: it needs musl-gcc (Debian: musl-tools), installed here when
# missing and run as root (apt-get update only when the install fails without it).
static-toolchain:
	rustup target add $(MUSL)
	@command -v musl-gcc >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools </dev/null || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools </dev/null; }; }; } || \
	  { echo "the static build needs musl-gcc (apt-get install musl-tools)" >&2; exit 1; }

static: static-toolchain
	CC_x86_64_unknown_linux_musl=musl-gcc $(CARGO) build --release --target $(MUSL) --bin mcpctl
	@ls -l target/$(MUSL)/release/mcpctl && file target/$(MUSL)/release/mcpctl 2>/dev/null || true

# The debug musl builds of mcpctl and the fixture server, for tests/it/image_recipe.rs
# (docs/runtime.md's image recipe run from static binaries alone).
static-test: static-toolchain
	CC_x86_64_unknown_linux_musl=musl-gcc $(CARGO) build --target $(MUSL) --bin mcpctl --bin mcpctl-fixture-server

bench: bench-deps build
	PATH="$(DEPS_PATH)" scripts/bench.sh target/release
	scripts/soak.sh target/release

# 16 sessions x 1 minute on a healthy server beside a wedged and a crash-looping one.
soak: build
	scripts/soak.sh target/release

# Only mcpctl: the fixture server and the load generator are for tests and benchmarks.
install:
	$(CARGO) build --release --bin mcpctl
	install -d "$(DESTDIR)$(PREFIX)/bin"
	install -m 0755 target/release/mcpctl "$(DESTDIR)$(PREFIX)/bin/mcpctl"

clean:
	$(CARGO) clean
