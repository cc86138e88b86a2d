# spheredc: two commands on a fresh Debian 12 machine with Python 3.11.
#   make demo   install what is missing, then run the main job
#   make test   install what is missing, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Debian packages the project needs: the server and its sky-geometry extension, venv
# support, STILTS (taplint/votlint validate the VO services in the tests) and Chromium
# (the portal's browser tests drive it through Playwright).
APT_PACKAGES := postgresql-15 postgresql-15-pgsphere python3-venv stilts chromium
STAMP := $(VENV)/.installed

.PHONY: all demo test bench system-packages clean

all: test

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): setup.cfg pyproject.toml | system-packages
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: system-packages $(STAMP)
	$(VENV)/bin/spheredc demo

test: system-packages $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: system-packages $(STAMP)
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) var *.egg-info
