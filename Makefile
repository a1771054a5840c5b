# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Browser tests drive Debian's chromium; a CJK font keeps Chinese from rendering as boxes (pages and charts);
# libgl1 and libglib2.0-0 are what RapidOCR's OpenCV loads (present on most images, not on slim ones).
BROWSER := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

.PHONY: run test install clean-index postgresql

run: $(STAMP)
	$(BIN)/reportqa serve

test: $(STAMP) $(BROWSER) $(CJK_FONT) postgresql
	REPORTQA_TESTS_NEED_POSTGRES=1 $(BIN)/python -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BROWSER):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk libgl1 libglib2.0-0 >/dev/null; \
	else \
		echo "The browser tests need Debian's chromium and a CJK font: sudo apt-get install chromium fonts-noto-cjk" >&2; exit 1; \
	fi

$(CJK_FONT):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; \
	else \
		echo "Chinese chart labels need a CJK font: sudo apt-get install fonts-noto-cjk" >&2; exit 1; \
	fi

# The records tests run against SQLite and a PostgreSQL server they start themselves (initdb in a temporary folder).
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
		else \
			echo "The records tests need PostgreSQL's server binaries: sudo apt-get install postgresql" >&2; exit 1; \
		fi; \
	fi

clean-index:
	rm -rf data/index
