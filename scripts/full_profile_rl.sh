#!/usr/bin/env bash
# Chapter 4 "RL stability", full profile, on one GPU (H100-class; sized for about 10 minutes), as one script.
#
# The GPU image has torch and transformers but not trl, datasets or papermill, and no network. So:
#
#   1. On a machine WITH internet, from the project's verified venv (same Python minor version as the GPU image;
#      set PY=3.X to cross-download for another one):
#
#        scripts/full_profile_rl.sh download wheels/
#
#      which writes wheels/requirements-gpu.txt (the `closure` function below: the dependency closure of what the
#      chapter needs, read from the venv's installed metadata, minus torch with its own dependencies and
#      transformers itself, which the GPU image has; transformers' dependencies are included because the image's
#      version may need fewer than ours, and pip keeps any installed version that satisfies) and then runs exactly
#
#        pip download --dest wheels --no-deps --only-binary=:all: --implementation cp \
#            --python-version "$PY" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#            --platform manylinux2014_x86_64 -r wheels/requirements-gpu.txt
#
#      Do not commit the wheels. Ship the folder alongside the code (e.g. next to the checkout).
#
#   2. On the GPU machine (no network), from the repository root:
#
#        scripts/full_profile_rl.sh run wheels/
#
#      installs the missing packages from the folder (pip --no-index; packages the image already has at suitable
#      versions are kept), checks that a GPU is visible, then executes notebooks/04_rl_stability.ipynb with
#      papermill and the "04_rl_stability" entry of params/full.yaml (override with PARAMS=FILE, a plain mapping
#      or a per-chapter one). Outputs go to $OUT_DIR (default: $OUT if set, else full_profile_out/): the executed
#      notebook, results/ (MOLESYN_RESULTS: the chapter's results and claims), the run cache (MOLESYN_CACHE, so a
#      rerun is instant) and timing.txt.
#
#   3. On a CPU machine, to check the script end to end at micro size (no install; about a minute):
#
#        scripts/full_profile_rl.sh dry-run
#
# Status: written and dry-run on CPU; NOT run on a GPU (the task that wrote it had none). The full profile's size
# (small 1M-parameter student, K=4 "+-*" chains, 4000 SFT steps, 120 DAPO steps of 32x8 rollouts, 5 seeds, 10
# worker processes sharing the GPU) is an estimate of about 10 minutes on an H100.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHAPTER="04_rl_stability"
NOTEBOOK="$ROOT/notebooks/$CHAPTER.ipynb"
PYTHON="${PYTHON:-python}"

closure() {
    # Print "name==version" for every package the chapter needs that the GPU image lacks, from installed metadata.
    "$PYTHON" - <<'PY'
import importlib.metadata as md
import re

from packaging.requirements import Requirement


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


installed = {norm(d.metadata["Name"]): d for d in md.distributions()}


def walk(roots):
    seen, stack = set(), [(norm(r), ()) for r in roots]
    while stack:
        name, extras = stack.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        for text in installed[name].requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}) or any(
                    req.marker.evaluate({"extra": e}) for e in extras):
                stack.append((norm(req.name), tuple(req.extras)))
    return seen


need = walk(["trl", "datasets", "accelerate", "papermill", "ipykernel", "numpy", "scipy", "pandas", "networkx",
             "matplotlib", "seaborn", "scikit-learn", "tqdm", "pyyaml", "requests", "aiohttp"])
have = walk(["torch"]) | {"transformers"}  # the image's own transformers may pull in fewer packages than ours
for name in sorted(need - have):
    print(f"{installed[name].metadata['Name']}=={installed[name].version}")
PY
}

write_params() {
    # $1: output YAML; $2: "full" or "dry". Reads the chapter's entry of params/full.yaml (or $PARAMS).
    "$PYTHON" - "$1" "$2" "${PARAMS:-$ROOT/params/full.yaml}" <<'PY'
import sys
from pathlib import Path

import yaml

out, mode, source = sys.argv[1], sys.argv[2], Path(sys.argv[3])
params = yaml.safe_load(source.read_text()) if source.is_file() else {}
params = params.get("04_rl_stability", params) if isinstance(params, dict) else {}
if not params:
    sys.exit(f"no parameters for 04_rl_stability in {source} (merge /tmp/setup/params_04.yaml into it, or set PARAMS)")
if mode == "dry":  # the same chain at micro size, on CPU
    params.update(student="micro", task_length=3, task_operators="+", n_train=300, sft_steps=20, weak_sft_steps=5,
                  sft_batch_size=16,
                  rl_steps=4, prompts_per_step=2, num_generations=4, max_completion_length=32, eval_every=2,
                  n_eval=20, n_prompts=50, seeds=[0, 1, 2], workers=2, bf16=False)
Path(out).write_text(yaml.safe_dump(params))
print(yaml.safe_dump(params), end="")
PY
}

execute() {
    # $1: "full" or "dry"
    local mode="$1" out="${OUT_DIR:-${OUT:-$ROOT/full_profile_out}}"
    mkdir -p "$out/results"
    export MOLESYN_RESULTS="$out/results"
    export MOLESYN_CACHE="${MOLESYN_CACHE:-$out/cache}"
    export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    write_params "$out/params.yaml" "$mode"
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')"
    local started=$SECONDS
    { time -p "$PYTHON" -m papermill "$NOTEBOOK" "$out/$CHAPTER.ipynb" -k python3 -f "$out/params.yaml" \
        --cwd "$ROOT" --log-level WARNING; } > "$out/papermill.log" 2>&1 || {
        tail -n 30 "$out/papermill.log" >&2
        echo "papermill failed: see $out/papermill.log and $out/$CHAPTER.ipynb" >&2; exit 1; }
    { echo "wall_seconds $((SECONDS - started))"; grep -E '^(real|user|sys) ' "$out/papermill.log"; } \
        | tee "$out/timing.txt"
    echo "outputs in $out"
}

command="${1:-}"
case "$command" in
    download)
        dir="${2:?usage: $0 download WHEELS_DIR}"
        PY="${PY:-$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}"
        mkdir -p "$dir"
        closure > "$dir/requirements-gpu.txt"
        echo "$(wc -l < "$dir/requirements-gpu.txt") packages -> $dir/requirements-gpu.txt"
        "$PYTHON" -m pip download --dest "$dir" --no-deps --only-binary=:all: --implementation cp \
            --python-version "$PY" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -r "$dir/requirements-gpu.txt"
        ;;
    run)
        dir="${2:-$ROOT/wheels}"
        [ -d "$dir" ] || { echo "no wheel folder $dir (make it with: $0 download $dir)" >&2; exit 2; }
        "$PYTHON" -m pip install --no-index --find-links "$dir" trl datasets accelerate papermill ipykernel \
            pandas scipy networkx matplotlib seaborn scikit-learn tqdm pyyaml requests
        "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no GPU visible: the full \
profile is sized for one (set up CUDA, or use: $0 dry-run)')"
        nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
        execute full
        ;;
    dry-run)
        "$PYTHON" -c "import trl, datasets, papermill" 2>/dev/null || {
            echo "dry-run needs trl, datasets and papermill installed (the project venv)" >&2; exit 2; }
        OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/full_profile_rl_dry.XXXX)}" execute dry
        ;;
    *)
        sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
