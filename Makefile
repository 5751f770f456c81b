# Two commands for a fresh machine:
#   make run   set everything up, fetch MNIST, train the default preset
#   make test  set everything up and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN    ?= runs/default

.PHONY: run test test-fast setup system-deps bench clean

# Two stamps: gankit and what it runs on (all `make run` needs), then the test tools on top
# (`make test`; about 8 s of a fresh `make run` went to installing them).
CORE := $(VENV)/.installed-core
DEV  := $(VENV)/.installed-dev

# pip byte-compiles every file it installs, one after another: 33 of the 51 s that installing
# gankit's runtime took here (torch alone 16 of 23 s). `make run` installs without that and
# then imports what it runs once, which writes the bytecode of the modules it uses (even where
# PYTHONDONTWRITEBYTECODE is set, as on this project's machines): 18 + 4.5 s. `make test`
# compiles the whole environment on all cores instead (test subprocesses import much more).
PIP  := $(BIN)/pip install --quiet --disable-pip-version-check --no-compile
WARM := import gankit.cli.main, gankit.training.loop, gankit.metrics.evaluate, \
        gankit.metrics.figures, gankit.report.html, gankit.exploration.run, matplotlib.pyplot

$(CORE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	# torch-fidelity's Inception class without torchvision (a multi-GB CUDA wheel here): gankit
	# imports only the feature extractor, which needs torch alone.
	$(PIP) --no-deps 'torch-fidelity==0.4.0'
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -c "$(WARM)"
	touch $@

$(DEV): $(CORE)
	$(PIP) -e '.[dev]'
	# (some packages ship files for other Python versions that do not compile; pip skips them too)
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c \
	    "import sysconfig; print(sysconfig.get_paths()['purelib'])") > /dev/null || true
	touch $@

setup: $(DEV)

# Chromium (browser test of the HTML report) and Debian's Fashion-MNIST files; installed with
# apt-get when we are root and they are missing, otherwise reported.
system-deps:
	@./scripts/system-deps.sh

run: $(CORE)
	$(BIN)/gankit data fetch mnist
	if [ -f $(RUN)/checkpoints/last.pt ]; then $(BIN)/gankit train --resume $(RUN); \
	else $(BIN)/gankit train --out $(RUN); fi
	$(BIN)/gankit eval $(RUN) --split test
	$(BIN)/gankit report $(RUN)

# The whole suite over two processes (pytest-xdist), one torch thread each (tests/conftest.py):
# 316 against ~500 s in one process on this 2-core CPU. Two, not `auto`: each worker holds its
# own MNIST copy and session fixtures, and tests that start process pairs (torchrun, sweeps,
# --seeds) expect a machine that is not oversubscribed many times over.
test: setup system-deps
	$(BIN)/python -m pytest -n 2

# The fast tier for the edit-test loop (no end-to-end runs, browsers or process pools),
# spread over two processes by pytest-xdist.
test-fast: $(DEV)
	$(BIN)/python -m pytest -m "not slow" -n 2

bench: setup
	$(BIN)/python benchmarks/train_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
