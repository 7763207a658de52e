#!/bin/sh
# Rebuild the shipped gtzan-mini weights (weights/*-gtzan-mini.*) exactly as they were made:
# 10-fold cross-validation, then the final model, seed 0, on this machine's CPU (or GPU if any).
# The four large networks get an epoch cap so that all of it finishes in about 1.5 hours on a
# 2-core CPU; the cap is recorded in each file's metadata and in weights/README.md.
#   sh tools/train_shipped.sh [ARCH ...]      (default: all, cheapest first)
# The shipped files were made by two such runs side by side, one thread each:
# The shipped files: cnn by a plain run (two threads, alone); the others with OMP_NUM_THREADS=1,
# three runs side by side (crnn; pcrnn; lstm mlp cnn1d musicnn-head crnn-lstm; then crnn-mfcc).
set -eu
cd "$(dirname "$0")/.."
DATA=${GTZAN_MINI:-../shared/data/gtzan-mini}
MGCTAG=${MGCTAG:-.venv/bin/mgctag}
epochs_for() {
    case "$1" in
        crnn | pcrnn | crnn-mfcc) echo 2 ;;   # 1-3 min per epoch on 90 tracks, one thread
        crnn-lstm) echo 4 ;;                  # ~1 min
        *) echo 100 ;;            # the studies' default; early stopping ends them
    esac
}
batch_for() {   # 128 (the studies') gives one step per epoch on 90 long segments: smaller for those
    case "$1" in
        crnn | crnn-lstm) echo 16 ;;      # one 29 s / 23 s segment per clip
        pcrnn | crnn-mfcc) echo 32 ;;     # ten 3 s segments per clip
        *) echo 128 ;;
    esac
}
name_for() {
    case "$1" in
        musicnn-head) echo musicnn-gtzan-mini ;;
        *) echo "$1-gtzan-mini" ;;
    esac
}
[ $# -gt 0 ] || set -- cnn lstm mlp cnn1d musicnn-head crnn-lstm crnn-mfcc pcrnn crnn
for arch in "$@"; do
    out="weights/$(name_for "$arch").safetensors"
    echo "== $arch -> $out ($(date -u +%FT%TZ))"
    "$MGCTAG" train "$DATA" --arch "$arch" --folds 10 --seed 0 --epochs "$(epochs_for "$arch")" \
        --batch-size "$(batch_for "$arch")" --out "$out"
done
