# ferromq: build, run and test. `make run` and `make test` work on a fresh Debian machine with
# the Rust toolchain: they install redis-server (and the Python client for the compatibility
# test) when missing.

CARGO      ?= cargo
PYTHON     ?= python3
VENV       := .venv
RUN_DIR    := $(CURDIR)/.run
DEV_TOKEN  ?= dev-token
LISTEN     ?= 127.0.0.1:8080
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run test lint deps python-client bench bench-peer clean

all: build

build:
	$(CARGO) build --release

## deps: install redis-server from Debian's packages when it is missing.
deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing it from Debian's packages"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version

## python-client: a virtualenv with the official IronMQ Python client, for the compatibility test.
python-client: $(VENV)/.installed
$(VENV)/.installed:
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install -q iron-mq==0.9 iron-core==1.2.1
	@touch $@

## run: `ferromq standalone` with the example queues (examples/) on $(LISTEN): the data plane,
## the push workers, and a local redis-server (data in .run/) unless REDIS_URL is set.
run: deps build
	@echo "ferromq: http://$(LISTEN)  token: $(DEV_TOKEN)  (any project; queues from examples/)"
	FERROMQ_TOKENS="$${FERROMQ_TOKENS:-$(DEV_TOKEN)=*}" FERROMQ_LISTEN=$(LISTEN) \
	  ./target/release/ferromq standalone -f examples/ --data-dir $(RUN_DIR)

## test: every test against real redis-server processes, then the official Python client.
test: deps python-client
	$(CARGO) test
	FERROMQ_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CARGO) test --test python_client -- --ignored

## bench: ferromq against the Redis limit and the rsmq peer, in one run; writes BENCHMARKS.md.
bench: deps bench-peer build
	./target/release/ferromq-bench --output BENCHMARKS.md

## bench-peer: the rsmq peer's node modules (needs node and npm).
bench-peer: bench/peer/node_modules/.installed
bench/peer/node_modules/.installed: bench/peer/package.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	cd bench/peer && npm install --no-audit --no-fund --no-package-lock --silent
	@touch $@

## lint: formatting and clippy, warnings as errors.
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(RUN_DIR)
