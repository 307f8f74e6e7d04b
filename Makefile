# cryptosent: `make setup` installs everything (starts nothing), `make demo` runs the main job,
# `make test` runs the whole suite against real local servers. Every step is cached: a second
# `make setup` takes seconds.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= python3.11
VENV        := .venv
BIN         := $(VENV)/bin
STACK       := .stack
UV_VERSION  := 0.13.8
VERSITYGW   := github.com/versity/versitygw/cmd/versitygw@v1.2.0
KAFKA_POM   := src/cryptosent/stack/kafka-pom.xml
APT_PACKAGES := postgresql kcat chromium

.PHONY: help setup model venv vader-core system-packages kafka-jars objectstore lint typecheck test test-core test-unit \
        test-integration demo clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: venv vader-core system-packages kafka-jars objectstore  ## install everything (venv, Kafka jars, S3 server, PostgreSQL); start nothing
	@echo "==> setup complete: 'make demo' runs the pipeline, 'make test' the suite"

# ---- Python ------------------------------------------------------------------------------------
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements.lock
	@echo "==> [1/4] Python venv and pinned dependencies (requirements.lock)"
	@command -v $(PYTHON) >/dev/null || { echo "setup failed: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION) \
	  || { echo "setup failed: could not install uv $(UV_VERSION) from PyPI"; exit 1; }
	@# --compile-bytecode: uv writes no .pyc by default, and every `cryptosent` command (a processor's
	@# start-up, each CLI call of the tests) then compiled pandas, pyarrow & co. again: 2.1 -> 0.8 CPU s
	@$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -r requirements.lock \
	  || { echo "setup failed: installing requirements.lock from PyPI"; exit 1; }
	@$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e .
	@$(BIN)/python -m compileall -q src >/dev/null
	@touch $@

# ---- compiled VADER core: Rust (PyO3) built by maturin into the venv, rebuilt when its sources change
VADER_CORE := rust/vader_core
vader-core: $(VENV)/.vader-core  ## build the compiled sentiment core (Rust) into the venv
$(VENV)/.vader-core: $(VENV)/.installed $(VADER_CORE)/Cargo.toml $(VADER_CORE)/Cargo.lock \
                     $(VADER_CORE)/pyproject.toml $(wildcard $(VADER_CORE)/src/*.rs)
	@echo "==> [1/4] Python: compiled sentiment core ($(VADER_CORE)): cargo build via maturin"
	@export PATH="$$PATH:$$HOME/.cargo/bin"; \
	 command -v cargo >/dev/null || { echo "setup failed: cargo not found (install Rust 1.85+ with rustup) to build $(VADER_CORE)"; exit 1; }; \
	 rm -rf $(VADER_CORE)/target/wheels; \
	 $(BIN)/maturin build --release --locked --quiet -m $(VADER_CORE)/Cargo.toml -i $(BIN)/python \
	   -o $(VADER_CORE)/target/wheels >/dev/null \
	   || { echo "setup failed: building $(VADER_CORE) with maturin (run 'make vader-core' after fixing the cargo error above)"; exit 1; }
	@$(BIN)/uv pip install --python $(BIN)/python -q --reinstall --no-deps $(VADER_CORE)/target/wheels/*.whl \
	  || { echo "setup failed: installing the $(VADER_CORE) wheel into $(VENV)"; exit 1; }
	@touch $@

# ---- Debian packages: PostgreSQL server, kcat (a Kafka client outside the project), Chromium ----
system-packages:
	@echo "==> [2/4] Debian packages: $(APT_PACKAGES)"
	@missing=""; \
	 ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	 command -v kcat >/dev/null || missing="$$missing kcat"; \
	 command -v chromium >/dev/null || missing="$$missing chromium"; \
	 if [ -z "$$missing" ]; then echo "    already installed"; exit 0; fi; \
	 if [ "$$(id -u)" != 0 ]; then echo "setup failed: need root to apt-get install$$missing (or install them yourself)"; exit 1; fi; \
	 echo "    installing$$missing"; \
	 apt-get update -q >/dev/null || { echo "setup failed: apt-get update"; exit 1; }; \
	 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null \
	   || { echo "setup failed: apt-get install$$missing"; exit 1; }

# ---- Apache Kafka from Maven Central -------------------------------------------------------------
kafka-jars: $(STACK)/kafka/libs/.installed
$(STACK)/kafka/libs/.installed: $(KAFKA_POM)
	@echo "==> [3/4] Apache Kafka jars from Maven Central (cached in ~/.m2)"
	@command -v java >/dev/null || { echo "setup failed: java not found (install a JDK 17)"; exit 1; }
	@command -v mvn >/dev/null || { echo "setup failed: mvn not found (apt-get install maven)"; exit 1; }
	@rm -rf $(STACK)/kafka/libs && mkdir -p $(STACK)/kafka/libs
	@mvn -B -ntp -f $(KAFKA_POM) dependency:copy-dependencies \
	   -DoutputDirectory=$(abspath $(STACK)/kafka/libs) 2>&1 | grep -E "Copying|ERROR|BUILD" | sed 's/^/    /' \
	  || { echo "setup failed: resolving Kafka from Maven Central (see mvn output above)"; exit 1; }
	@ls $(STACK)/kafka/libs/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "setup failed: Kafka jars missing after mvn"; exit 1; }
	@touch $@

# ---- S3-compatible server: versitygw built from the Go module proxy -----------------------------
objectstore: $(STACK)/bin/versitygw
$(STACK)/bin/versitygw:
	@echo "==> [4/4] versitygw (S3 server) with go install $(VERSITYGW) (first build takes ~2 min)"
	@command -v go >/dev/null || { echo "setup failed: go not found (install Go 1.22+)"; exit 1; }
	@mkdir -p $(STACK)/bin
	@GOBIN=$(abspath $(STACK)/bin) GOFLAGS=-mod=mod go install $(VERSITYGW) \
	  || { echo "setup failed: go install $(VERSITYGW)"; exit 1; }

# ---- learned sentiment models: retrain (not part of setup: the trained weights are committed) ----
TRAIN_PACKAGES := torch==2.15.0 transformers==5.24.0 scipy==1.17.1 onnx==1.23.2 onnxscript==0.7.2
model: venv vader-core  ## retrain the learned analyzers (torch; ~30 min on 2 cores) into src/cryptosent/models/
	@echo "==> installing the training extra ($(TRAIN_PACKAGES))"
	@$(BIN)/uv pip install --python $(BIN)/python -q $(TRAIN_PACKAGES)
	$(BIN)/python -m cryptosent.training
	$(BIN)/python -m cryptosent.training.evaluate --write

# ---- quality ------------------------------------------------------------------------------------
lint: venv  ## ruff lint + format check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: venv  ## mypy (strict) on the package
	$(BIN)/mypy

test-core: vader-core  ## the compiled core's clippy (warnings fail) and its own Rust tests (cargo test)
	@export PATH="$$PATH:$$HOME/.cargo/bin"; cd $(VADER_CORE) && \
		cargo clippy --release --locked -q -- -D warnings && cargo test --release --locked -q

test-unit: venv vader-core test-core  ## unit tests only (no servers)
	$(BIN)/pytest tests/unit -q

test-integration: setup  ## integration tests against the real local stack
	$(BIN)/cryptosent stack up
	$(BIN)/pytest tests/integration -q

test: setup lint typecheck test-core  ## the whole suite: lint, types, unit and integration tests on real servers
	$(BIN)/cryptosent stack up
	$(BIN)/pytest tests -q -p no:cacheprovider

# ---- run ----------------------------------------------------------------------------------------
demo: setup  ## the main job: local stack + pipeline + dashboard
	$(BIN)/cryptosent demo

clean:  ## stop the stack and delete its data (keeps downloads)
	-$(BIN)/cryptosent stack down
	rm -rf $(STACK)/kafka/data $(STACK)/postgres $(STACK)/s3 $(STACK)/logs $(STACK)/run $(STACK)/lake
