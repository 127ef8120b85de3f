# Two commands do everything on a fresh machine:
#   make test   install, then run the test suite
#   make demo   install, then run the whole recipe on the embedded mini-CPC1
#   make standin   re-create the demo's shipped stand-in ASR (about 2 h on 2 cores; docs/standin_asr.md)
PYTHON ?= python3
STAMP := .install-stamp
APT_PACKAGES := espeak-ng flite sox wordnet-base
DEMO_ROOT ?= demo_data
STANDIN_BUILD ?= standin_build
TEST_WORKERS ?= 2  # pytest-xdist processes (one per core here); each test file runs in one of them

.PHONY: install system-deps lint test demo standin bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(MAKE) system-deps
	$(PYTHON) -m pip install -r requirements.txt
	$(PYTHON) -m pip install --no-deps -e .
	touch $(STAMP)

# Debian/Ubuntu packages: the offline TTS voices of the mini-CPC1 generator and the stand-in ASR's
# corpus, and WordNet 3.0 (the stand-in's text source). Only the generator (make demo, some tests)
# and make standin need them: where apt-get is unavailable (HPC nodes) the install goes on with a
# warning and those tests are skipped, naming the missing program. REQUIRE_SYSTEM_DEPS=1 (CI) makes
# their absence an error.
system-deps:
	@missing=""; for p in espeak-ng flite sox; do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -f /usr/share/wordnet/data.noun ] || missing="$$missing wordnet-base"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  if command -v apt-get >/dev/null 2>&1 && $$SUDO apt-get update -qq && \
	     $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; then :; \
	  elif [ "$(REQUIRE_SYSTEM_DEPS)" = 1 ]; then \
	    echo "ERROR: could not install the Debian/Ubuntu packages$$missing" >&2; exit 1; \
	  else \
	    echo "WARNING: could not install the Debian/Ubuntu packages$$missing (no apt-get, or it failed):" \
	         "the mini-CPC1 generator, make demo and make standin need them; their tests will be skipped" >&2; \
	  fi; \
	fi

lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test: install lint
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 REQUIRE_SYSTEM_DEPS=$(REQUIRE_SYSTEM_DEPS) $(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile

demo: install
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 bash demo/run_demo.sh $(DEMO_ROOT)

standin: install system-deps
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 bash demo/standin.sh $(STANDIN_BUILD)

bench: install
	$(PYTHON) benchmarks/msbg_speed.py

clean:
	rm -rf $(STAMP) .pytest_cache
