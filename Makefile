# Fresh machine: `make test` or `make demo` builds .venv first (torch/torchvision come from this machine's disk).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint demo model readme bench bench-models clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	{ command -v chromium >/dev/null && ldconfig -p | grep -q libfluidsynth.so.3; } || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libfluidsynth3 >/dev/null; } || \
		echo "note: no chromium or libfluidsynth3; browser and render tests are skipped (CI installs them)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/pip install --quiet torch torchvision
	$(BIN)/pip install --quiet -e '.[train,render,dev]'
	touch $(STAMP)

test: setup
	$(BIN)/ruff check musicid pipeline train infer recipes tests benchmarks docs
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check musicid pipeline train infer recipes tests benchmarks docs

bench: setup
	$(BIN)/python benchmarks/build_throughput.py
	$(BIN)/python benchmarks/build_memory.py
	$(BIN)/python benchmarks/loader.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/predict_speed.py
	$(BIN)/python benchmarks/eval_frames.py
	$(BIN)/python benchmarks/page_load.py
	$(BIN)/python benchmarks/render_speed.py

# The model-training checks (about 25 min; need: apt-get install musescore-general-soundfont-small fluid-soundfont-gm)
bench-models: setup
	$(BIN)/python benchmarks/cross_timbre.py
	$(BIN)/python benchmarks/rare_classes.py
	$(BIN)/python benchmarks/augmentation.py

demo: setup
	$(BIN)/python -m musicid.recipes.demo --out demo

# The shipped model (musicid/model/): fetch instruments (npm, Debian) -> synth -> render scores -> shards ->
# train -> eval -> export; resumable. CLIPS= and MIXTURES= folders also score the model on real recordings;
# HOLD_OUT= names library instruments kept out of training, the calibration data then played by them alone.
CLIPS ?=
MIXTURES ?=
HOLD_OUT ?=
model: setup
	$(BIN)/python -m musicid.recipes.model --out build/model $(if $(CLIPS),--clips $(CLIPS)) $(if $(MIXTURES),--mixtures $(MIXTURES)) $(if $(HOLD_OUT),--hold-out $(HOLD_OUT))

# The README's first example: its real output and a picture of its page (docs/example-page.png)
readme: setup
	$(BIN)/python docs/example.py

clean:
	rm -rf demo build
