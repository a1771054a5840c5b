# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Browser tests drive Debian's chromium; a CJK font keeps Chinese from rendering as boxes.
BROWSER := /usr/bin/chromium

.PHONY: run test install clean-index

run: $(STAMP)
	$(BIN)/reportqa serve

test: $(STAMP) $(BROWSER)
	$(BIN)/python -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BROWSER):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	else \
		echo "The browser tests need Debian's chromium and a CJK font: sudo apt-get install chromium fonts-noto-cjk" >&2; exit 1; \
	fi

clean-index:
	rm -rf data/index
