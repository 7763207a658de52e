"""Convert musicnn's TensorFlow checkpoints to mgctag weights, and regenerate the parity fixture.

Development-time only: mgctag never imports this. It needs two interpreters, because
musicnn 0.1.0 only runs on TensorFlow 2.15 (Keras 2) with numpy < 2, away from the
project's torch environment:

    python3 -m venv .tfenv
    .tfenv/bin/pip install --no-deps musicnn==0.1.0
    .tfenv/bin/pip install tensorflow-cpu==2.15.1 "numpy<2" librosa soundfile
    .venv/bin/python tools/convert_musicnn.py            # writes weights/ and tests/fixtures/

The project interpreter runs this file, which re-runs itself under `--tf-python` with
`--dump` to read the checkpoints and run musicnn's own extractor; the arrays come back
through a temporary .npz. Then the torch side maps them onto `mgctag.models.musicnn`,
saves the weights and checks parity against the reference taggrams.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = {"MSD_musicnn": "musicnn-msd", "MTT_musicnn": "musicnn-mtt"}
FIXTURE_WAV = ROOT / "tests" / "fixtures" / "musicnn_parity.wav"
FIXTURE_NPZ = ROOT / "tests" / "fixtures" / "musicnn_parity.npz"
PARITY_TOL = 1e-3

# Canonical genre -> the musicnn tags it merges (label order = this order). Tags not listed
# are dropped: they name vocals, decades, moods, instruments or listening contexts.
# Near-duplicates merge; a sub-style merges into its parent only where the parent is the
# name a library would use (classic / hard / progressive rock -> Rock, heavy metal -> Metal).
GENRE_MAPS = {
    "MSD_musicnn": {
        "Rock": ["rock", "classic rock", "hard rock", "Progressive rock"],
        "Alternative": ["alternative", "alternative rock"],
        "Indie": ["indie", "indie rock", "indie pop"],
        "Pop": ["pop"],
        "Electronic": ["electronic", "electronica", "electro"],
        "Dance": ["dance"],
        "House": ["House"],
        "Hip-Hop": ["Hip-Hop"],
        "R&B": ["rnb"],
        "Soul": ["soul"],
        "Funk": ["funk"],
        "Jazz": ["jazz"],
        "Blues": ["blues"],
        "Country": ["country"],
        "Folk": ["folk"],
        "Metal": ["metal", "heavy metal"],
        "Punk": ["punk"],
        "Ambient": ["ambient"],
        "Chillout": ["chillout"],
        "Easy Listening": ["easy listening"],
        "Experimental": ["experimental"],
    },
    "MTT_musicnn": {
        "Classical": ["classical", "classic"],
        "Opera": ["opera"],
        "Choral": ["choral", "choir"],
        "Electronic": ["electronic"],
        "Techno": ["techno"],
        "Dance": ["dance"],
        "Ambient": ["ambient"],
        "New Age": ["new age"],
        "Rock": ["rock"],
        "Metal": ["metal"],
        "Pop": ["pop"],
        "Country": ["country"],
        "Indian": ["indian"],
    },
}
DESCRIPTIONS = {
    "MSD_musicnn": "musicnn trained on the Million Song Dataset (50 Last.fm tags), genre tags merged into "
    "canonical genres; zero-shot, not trained on GTZAN.",
    "MTT_musicnn": "musicnn trained on MagnaTagATune (50 tags), genre tags merged into canonical genres; "
    "zero-shot, not trained on GTZAN.",
}

# TensorFlow variable scope -> our module path, in the reference graph's creation order.
BN_MAP = {
    "batch_normalization": "frontend.input_bn",
    **{
        f"batch_normalization_{i + 1}": f"frontend.{m}.bn"
        for i, m in enumerate(["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2"])
    },
    **{f"batch_normalization_{i + 6}": f"midend.bns.{i}" for i in range(3)},
    "batch_normalization_9": "backend.pool_bn",
    "batch_normalization_10": "backend.dense_bn",
}
CONV2D_MAP = {
    ("conv2d" if i == 0 else f"conv2d_{i}"): f"frontend.{m}.conv"
    for i, m in enumerate(["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2"])
}
CONV1D_MAP = {f"conv2d_{i + 5}": f"midend.convs.{i}" for i in range(3)}
DENSE_MAP = {"dense": "backend.dense", "dense_1": "backend.out"}
BN_FIELDS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


# ---------------------------------------------------------------- TensorFlow side (.tfenv)


def dump_reference(out: Path, audio: list[Path]) -> None:
    """Checkpoint variables and musicnn's extractor outputs for each audio file -> one .npz."""
    import musicnn
    import tensorflow as tf
    from musicnn import configuration
    from musicnn.extractor import extractor

    arrays = {}
    pkg = Path(musicnn.__file__).parent
    for ckpt in CHECKPOINTS:
        reader = tf.compat.v1.train.NewCheckpointReader(str(pkg / ckpt) + os.sep)
        for name in reader.get_variable_to_shape_map():
            if "Adam" not in name and not name.endswith("_power"):
                arrays[f"{ckpt}/var/{name}"] = reader.get_tensor(name)
        for i, path in enumerate(audio):
            taggram, _, feats = extractor(str(path), model=ckpt, extract_features=True)
            arrays[f"{ckpt}/audio{i}/taggram"] = taggram
            for k in ("mean_pool", "max_pool", "penultimate"):
                arrays[f"{ckpt}/audio{i}/{k}"] = feats[k]
    arrays["MSD_musicnn/tags"] = np.array(configuration.MSD_LABELS)
    arrays["MTT_musicnn/tags"] = np.array(configuration.MTT_LABELS)
    arrays["licence"] = np.array((pkg.parent / "musicnn-0.1.0.dist-info" / "LICENSE.md").read_text())
    np.savez(out, **arrays)


# ---------------------------------------------------------------- torch side (.venv)


def torch_state(variables: dict[str, np.ndarray]) -> dict:
    """Reference variables {scope/name: array} -> the Musicnn backbone's state dict."""
    import torch

    state = {}
    for scope, mod in BN_MAP.items():
        for tf_name, ours in BN_FIELDS.items():
            state[f"{mod}.{ours}"] = variables[f"{scope}/{tf_name}"]
    for scope, mod in CONV2D_MAP.items():  # [time, freq, in, out] -> (out, in, freq, time)
        state[f"{mod}.weight"] = variables[f"{scope}/kernel"].transpose(3, 2, 1, 0)
        state[f"{mod}.bias"] = variables[f"{scope}/bias"]
    for scope, mod in CONV1D_MAP.items():  # [time, channels, 1, out] -> (out, channels, time)
        state[f"{mod}.weight"] = variables[f"{scope}/kernel"][:, :, 0, :].transpose(2, 1, 0)
        state[f"{mod}.bias"] = variables[f"{scope}/bias"]
    for scope, mod in DENSE_MAP.items():  # [in, out] -> (out, in)
        state[f"{mod}.weight"] = variables[f"{scope}/kernel"].T
        state[f"{mod}.bias"] = variables[f"{scope}/bias"]
    unused = (
        set(variables)
        - {f"{s}/{f}" for s in BN_MAP for f in BN_FIELDS}
        - {f"{s}/{f}" for s in (*CONV2D_MAP, *CONV1D_MAP, *DENSE_MAP) for f in ("kernel", "bias")}
    )
    if unused:
        raise SystemExit(f"unmapped checkpoint variables: {sorted(unused)}")
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def genre_groups(ckpt: str, tags: list[str]) -> dict[str, list[int]]:
    return {genre: [tags.index(t) for t in members] for genre, members in GENRE_MAPS[ckpt].items()}


def build_model(ckpt: str, ref: dict[str, np.ndarray]):
    """A Classifier holding the converted checkpoint, plus its metadata."""
    import torch

    from mgctag.model import Classifier
    from mgctag.models.musicnn import MUSICNN_FRONTEND
    from mgctag.weights import WeightsMeta

    tags = [str(t) for t in ref[f"{ckpt}/tags"]]
    params = {"tags": tags, "genre_groups": genre_groups(ckpt, tags)}
    labels = list(params["genre_groups"])
    model = Classifier("musicnn", labels, MUSICNN_FRONTEND, params)
    prefix = f"{ckpt}/var/"
    variables = {k[len(prefix) :]: ref[k] for k in ref.files if k.startswith(prefix)}
    state = {f"backbone.{k}": v for k, v in torch_state(variables).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked") and not k.startswith("norm_")]
    if missing or unexpected:
        raise SystemExit(f"{ckpt}: missing {missing}, unexpected {unexpected}")
    meta = WeightsMeta(
        arch="musicnn",
        labels=labels,
        frontend=MUSICNN_FRONTEND.to_dict(),
        arch_params=params,
        licence=str(ref["licence"]),
        description=DESCRIPTIONS[ckpt],
        provenance={
            "source": "PyPI wheel musicnn==0.1.0 (MTG-UPF, Jordi Pons), ISC licence",
            "checkpoint": f"musicnn/{ckpt}",
            "data": ckpt.split("_")[0],
            "converted_by": "tools/convert_musicnn.py",
            "date": dt.date.today().isoformat(),
            "torch": torch.__version__,
        },
    )
    return model.eval(), meta


def our_outputs(model, wave: np.ndarray) -> dict[str, np.ndarray]:
    """Taggram (sigmoid of the 50 tag logits) and pooled statistics on musicnn's patches."""
    import torch

    from mgctag.models.musicnn import reference_patches

    with torch.no_grad():
        feats = model.frontend(torch.from_numpy(reference_patches(wave, model.spec)))
        trunk = model.backbone.midend(model.backbone.frontend(feats))
        taggram = torch.sigmoid(model.backbone.backend(trunk))
    return {"taggram": taggram.numpy(), "max_pool": trunk.amax(2).numpy(), "mean_pool": trunk.mean(2).numpy()}


def synth_clip(seconds: float = 12.0, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic band-like clip (drums, bass, chords, lead) that exercises every mel band.

    Synthetic so the committed fixture carries no third-party recording.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    beat = 0.5  # 120 bpm
    env = lambda start, tau: np.where(t >= start, np.exp(-(t - start) / tau), 0.0)  # noqa: E731
    for i in range(int(seconds / beat)):
        s = i * beat
        y += 0.6 * env(s, 0.12) * np.sin(2 * np.pi * (50 + 80 * env(s, 0.03)) * (t - s)) * (i % 2 == 0)
        y += 0.25 * env(s, 0.08) * rng.standard_normal(n) * (i % 2 == 1)
        for h in (0, 0.25):
            y += 0.05 * env(s + h, 0.02) * np.diff(rng.standard_normal(n + 1))
    roots = [110.0, 87.31, 130.81, 98.0]  # A F C G
    for i in range(int(seconds / (4 * beat))):
        s, r = 4 * beat * i, roots[i % 4]
        gate = (t >= s) & (t < s + 4 * beat)
        saw = 2 * ((r * t) % 1.0) - 1
        y += 0.2 * gate * saw
        for ratio in (2, 2 * 1.26, 2 * 1.5):
            y += 0.06 * gate * np.sin(2 * np.pi * r * ratio * t + 0.3 * np.sin(2 * np.pi * 5 * t))
    lead = 440 * 2 ** (np.floor(t * 4) % 7 / 12)
    y += 0.08 * np.sin(2 * np.pi * np.cumsum(lead) / sr) * (np.sin(2 * np.pi * t / 6) > 0)
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def read_wave(path: Path, sr: int) -> np.ndarray:
    """Mono float32 at `sr`, decoded as musicnn's extractor does (librosa.load)."""
    import librosa

    return librosa.load(str(path), sr=sr)[0].astype(np.float32)


def convert(tf_python: Path, check_audio: list[Path], write: bool) -> float:
    import soundfile as sf

    from mgctag.weights import save

    with tempfile.TemporaryDirectory() as tmp:
        clip = FIXTURE_WAV if write else Path(tmp) / FIXTURE_WAV.name
        clip.parent.mkdir(parents=True, exist_ok=True)
        sf.write(clip, synth_clip(), 16000, subtype="PCM_16")
        audio = [clip, *check_audio]
        dump = Path(tmp) / "reference.npz"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
        subprocess.run(
            [str(tf_python), __file__, "--dump", str(dump), *map(str, audio)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        ref = np.load(dump)
        fixture, worst = {}, 0.0
        for ckpt, name in CHECKPOINTS.items():
            model, meta = build_model(ckpt, ref)
            for i, path in enumerate(audio):
                ours = our_outputs(model, read_wave(path, model.spec.sample_rate))
                for key in ("taggram", "max_pool", "mean_pool"):
                    diff = float(np.abs(ours[key] - ref[f"{ckpt}/audio{i}/{key}"]).max())
                    print(f"{name} {path.name}: {key} max |ours - musicnn| = {diff:.2e}")
                    if key == "taggram":
                        worst = max(worst, diff)
            fixture[f"{name}/taggram"] = ref[f"{ckpt}/audio0/taggram"].astype(np.float32)
            if write:
                meta.metrics = {
                    "parity_max_abs_diff": float(
                        np.abs(our_outputs(model, read_wave(clip, 16000))["taggram"] - fixture[f"{name}/taggram"]).max()
                    )
                }
                print("wrote", save(ROOT / "weights" / f"{name}.safetensors", model, meta))
        fixture["musicnn-msd/max_pool"] = ref["MSD_musicnn/audio0/max_pool"].astype(np.float32)
        fixture["musicnn-msd/mean_pool"] = ref["MSD_musicnn/audio0/mean_pool"].astype(np.float32)
    if write:
        np.savez_compressed(FIXTURE_NPZ, **fixture)
        print("wrote", FIXTURE_WAV, FIXTURE_NPZ)
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--tf-python",
        type=Path,
        default=ROOT / ".tfenv" / "bin" / "python",
        help="interpreter with musicnn 0.1.0 and TensorFlow 2.15",
    )
    p.add_argument(
        "--check-audio",
        type=Path,
        nargs="*",
        default=[],
        help="extra audio files to check parity on (not written to the fixture)",
    )
    p.add_argument("--no-write", action="store_true", help="only check parity")
    p.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    p.add_argument("audio", type=Path, nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.dump:
        dump_reference(args.dump, args.audio)
        return 0
    sys.path.insert(0, str(ROOT))
    worst = convert(args.tf_python, args.check_audio, write=not args.no_write)
    print(f"worst taggram difference {worst:.2e} (tolerance {PARITY_TOL})")
    return 0 if worst <= PARITY_TOL else 1


if __name__ == "__main__":
    sys.exit(main())
