# Top-level entry points. `make demo` is the main job; `make test` runs the test suite.
# Both run `make setup` first, which installs what they need on a fresh Debian 12 machine.
BUILDTOOL = .venv/bin/buildtool
PYTEST    = .venv/bin/pytest
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
KERNEL   ?= linux-6.1

.PHONY: all setup demo package build fetch test test-controls test-unit lint clean distclean bench

all: package

setup:
	@./scripts/setup

fetch: setup
	$(BUILDTOOL) fetch

build: setup
	$(BUILDTOOL) build -j$(JOBS) --kernel $(KERNEL)

package: setup
	$(BUILDTOOL) package -j$(JOBS) --kernel $(KERNEL)

# The main job: build and package everything, then boot the VM and run the smoke scenarios.
demo: package
	$(BUILDTOOL) test --kernel $(KERNEL) -k smoke

# Everything: unit tests, real builds, the VM scenarios (JUnit XML in results/), then the negative
# controls (deliberately broken modules the VM suite must catch).
test: setup
	$(PYTEST) -ra --junitxml=results/junit-pytest.xml
	$(BUILDTOOL) test --control --kernel $(KERNEL) -j$(JOBS)
	$(BUILDTOOL) test --control --kernel netbsd-rump

test-controls: setup
	$(BUILDTOOL) test --control --kernel $(KERNEL) -j$(JOBS)
	$(BUILDTOOL) test --control --kernel netbsd-rump

test-unit: setup
	$(PYTEST) -ra -m "not integration"

lint: setup
	.venv/bin/ruff check buildtool tests bench

bench: setup
	.venv/bin/python bench/build_bench.py

clean:
	rm -rf work results

distclean: clean
	rm -rf packages .venv
