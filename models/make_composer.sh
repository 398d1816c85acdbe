#!/usr/bin/env bash
# Re-make the shipped composer end to end (resumable: re-run after an interruption).
#   models/make_composer.sh            # ~2.5 h on 2 CPU cores; faster with torchrun / a GPU
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
[ -f data/corpus.npz ] || python -m models.corpus --out data/corpus.npz
# 1. the size, by evidence: three sizes on the same 4.9 M-token budget
python -m models.size_sweep --sizes 256 384 512 --stop-at 600 --max-steps 8000 --threads "$THREADS" --out runs/sweep
# 2. the chosen size (h512, lowest validation loss) trains on from its sweep run. This is the
#    exact history of the shipped run: the schedule was lengthened twice as the time budget
#    became clear, and training stopped at step 3000 because validation loss had been rising
#    since step 2250 (over-fitting 6.1 M training tokens); best.pt is step 2250.
python -m models.train --out runs/sweep/h512 --hidden 512 --max-steps 5000 --stop-at 750 --threads "$THREADS"
python -m models.train --out runs/sweep/h512 --hidden 512 --max-steps 5600 --stop-at 3000 --threads "$THREADS"
# 3. a low-rate continuation of the best step, on the same corpus and labels: 500 steps at peak
#    5e-4 (4.1 M tokens) lower validation loss 1.612 -> 1.607 and raise plain quadrant accuracy
#    (models/README.md, "The shipped model")
python -m models.train --init runs/sweep/h512/best.pt --corpus data/corpus.npz --out runs/h512-ft \
  --max-steps 500 --warmup 50 --lr 5e-4 --eval-every 100 --threads "$THREADS" --seed 1
# 4. export (with the parity check), record the sweep, both stages and the validation loss
python -m export.onnx_export runs/h512-ft/best.pt --out models/composer \
  --command "models/make_composer.sh" \
  --metrics "$(python -m models.composer_metrics runs/sweep/h512 runs/h512-ft --sweep runs/sweep/sweep.json)"
# 5. int8 dynamic quantization: measured, recorded, shipped as an option (--precision int8)
python -m export.quantize models/composer --corpus data/corpus.npz --keep
# 6. the emotion recognizer reads this composer's states: re-fit it (its feature cache is keyed by
#    the composer graph's SHA-256, so the states are encoded again)
python -m models.train_recognizer
