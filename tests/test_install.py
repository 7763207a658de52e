"""`mgctag models install/remove`: verified imports and downloads, refusals with a reason, nothing left behind.

Downloads come from a local HTTP server on 127.0.0.1 serving the shared checkpoint (whole, cut
short, or damaged); nothing is fetched from the internet. Every test gets its own user data
folder (XDG_DATA_HOME), and checks that a refused install leaves that folder as it was.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import audiogen
import numpy as np
import pytest
import torch
from conftest import SHARED
from typer.testing import CliRunner

from mgctag import install, weights
from mgctag.cli import app
from mgctag.errors import WeightsError
from mgctag.models.efficientat import EfficientAT
from mgctag.taxonomy import AUDIOSET_GENRES, COMMON

CHECKPOINT = SHARED / "models" / "mn04_as_mAP_432.pt"
NAME = "efficientat-mn04"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def user_models(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return weights.user_dir()


@pytest.fixture(scope="module")
def official() -> bytes:
    if not CHECKPOINT.is_file():
        pytest.skip(
            f"{CHECKPOINT} not found: ../shared/models is missing (the checkpoint is never part of the project)"
        )
    return CHECKPOINT.read_bytes()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def refused(result, *words: str) -> str:
    """The CLI said no: exit 2, one line on stderr naming the reason."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# --- from a file ----------------------------------------------------------------------------


def test_install_from_the_official_file(official, user_models):
    r = invoke("models", "install", NAME, "--from", CHECKPOINT)
    assert r.exit_code == 0, r.output
    assert "sha256 verified" in r.output
    path = user_models / f"{NAME}.safetensors"
    assert leftovers(user_models) == [path.name]

    meta = weights.read_meta(path)
    assert meta.arch == "efficientat" and meta.labels == list(AUDIOSET_GENRES)
    assert meta.arch_params["width"] == 0.4 and meta.arch_params["tag_indices"] == list(range(216, 266))
    assert meta.frontend["kind"] == "kaldimel" and meta.defaults == {"genres": "common", "min_confidence": 0.35}
    assert "Copyright (c) 2022 Florian Schmid" in meta.licence and meta.licence.startswith("MIT License")
    prov = meta.provenance
    assert prov["id"] == NAME and prov["sha256"] == install.CHECKPOINTS[NAME].sha256 and prov["sha256_verified"]
    assert prov["source"] == "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt"
    assert meta.model_id == NAME

    model, _ = weights.load_model(NAME)
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    ours = model.backbone.state_dict()
    assert ours.keys() == state.keys() and all(torch.equal(ours[k], v) for k, v in state.items())
    assert model.multilabel

    again = invoke("models", "install", NAME, "--from", CHECKPOINT)
    assert again.exit_code == 0 and "already installed" in again.output
    assert invoke("models", "install", NAME, "--from", CHECKPOINT, "--force").exit_code == 0
    assert leftovers(user_models) == [path.name]


def test_models_lists_the_installed_model(official, user_models):
    before = invoke("models")
    assert before.exit_code == 0 and NAME in before.output.split("can be installed", 1)[1]
    install.install(NAME, source=CHECKPOINT)
    r = runner.invoke(app, ["models"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if line.strip("│ ").startswith(NAME))
    assert "user" in row and "efficientat" in row and "MIT License" in row and "Pop, Hip-Hop" in row
    assert f"user models: {user_models}" in r.output


def test_wrong_files_are_refused_with_a_reason(official, user_models, tmp_path):
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(rng.bytes(200_000))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(official[: len(official) // 2])
    other_net = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), other_net)
    other_width = tmp_path / "mn01.pt"
    torch.save(EfficientAT(50, 128, 1000, width=0.1).state_dict(), other_width)
    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(4, 2), pickled)
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    state["features.5.block.1.1.running_var"][3] = float("nan")
    broken = tmp_path / "nan.pt"
    torch.save(state, broken)

    # Without --force the sha256 decides first.
    refused(
        invoke("models", "install", NAME, "--from", noise), "sha256", "not that of the official", "mn04_as_mAP_432.pt"
    )
    refused(
        invoke("models", "install", "efficientat-mn10", "--from", CHECKPOINT),
        "official mn04_as_mAP_432.pt",
        "install it as efficientat-mn04",
    )
    refused(
        invoke("models", "install", "efficientat-mn10", "--from", other_net),
        "does not know the official sha256",
        "--force",
    )
    # With --force the file must still be a state dict that fits the network.
    refused(invoke("models", "install", NAME, "--from", noise, "--force"), "not a readable PyTorch checkpoint")
    refused(invoke("models", "install", NAME, "--from", truncated, "--force"), "truncated or damaged")
    refused(
        invoke("models", "install", NAME, "--from", other_net, "--force"),
        "does not fit EfficientAT",
        "312 tensors missing",
    )
    refused(
        invoke("models", "install", NAME, "--from", other_width, "--force"),
        "does not fit",
        "looks like width 0.1: efficientat-mn01",
    )
    refused(invoke("models", "install", NAME, "--from", pickled, "--force"), "Python objects")
    refused(invoke("models", "install", NAME, "--from", broken, "--force"), "NaN")
    refused(invoke("models", "install", "efficientat-mn99", "--from", CHECKPOINT), "unknown model", NAME)
    refused(invoke("models", "install", NAME, "--from", tmp_path / "missing.pt"), "no such file")
    assert leftovers(user_models) == []


def test_a_missing_or_folder_source_is_an_error_even_when_the_model_is_installed(user_models, tmp_path):
    """It exited 0 ("already installed") before looking at --from."""
    installed = install.destination(NAME)
    installed.parent.mkdir(parents=True)
    installed.write_bytes(b"the installed weights")
    refused(invoke("models", "install", NAME, "--from", tmp_path / "missing.pt"), "missing.pt: no such file")
    refused(invoke("models", "install", NAME, "--from", tmp_path), "a folder, not a checkpoint file")
    assert installed.read_bytes() == b"the installed weights"
    r = invoke("models", "install", NAME)
    assert r.exit_code == 0 and "already installed" in r.output, r.output


def test_a_failed_write_leaves_nothing(official, user_models, monkeypatch):
    import io

    class FullDisk(io.FileIO):
        def write(self, data):
            super().write(bytes(data[:7]))
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(weights, "open", lambda file, mode="r": FullDisk(file, mode.replace("b", "")), raising=False)
    with pytest.raises(WeightsError, match="No space left"):
        install.install(NAME, source=CHECKPOINT)
    assert leftovers(user_models) == []


def test_remove(official, user_models):
    install.install(NAME, source=CHECKPOINT)
    r = invoke("models", "remove", NAME)
    assert r.exit_code == 0 and "removed" in r.output
    assert leftovers(user_models) == []
    refused(invoke("models", "remove", NAME), "no installed model")
    refused(invoke("models", "remove", "musicnn-msd"), "shipped")


# --- downloads ------------------------------------------------------------------------------


class Server:
    """127.0.0.1 HTTP server: /ok (the file), /short (cut short but announced whole), /damaged, /truncated."""

    def __init__(self, body: bytes):
        damaged = bytearray(body)
        damaged[len(body) // 2 : len(body) // 2 + 64] = bytes(64)
        self.routes = {
            "/ok/f.pt": (body, len(body)),
            "/short/f.pt": (body[: len(body) // 3], len(body)),
            "/damaged/f.pt": (bytes(damaged), len(body)),
            "/truncated/f.pt": (body[: len(body) // 3], len(body) // 3),
        }
        self.hits: list[str] = []
        routes, hits = self.routes, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                if self.path not in routes:
                    self.send_error(404)
                    return
                data, length = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            def log_message(self, *args):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hangs up mid-transfer (the interrupted download) is expected

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{route}/f.pt"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(official):
    with Server(official) as s:
        yield s


def test_download_from_a_local_server(server, user_models):
    r = invoke("models", "install", NAME, "--url", server.url("ok"))
    assert r.exit_code == 0, r.output
    assert leftovers(user_models) == [f"{NAME}.safetensors"]
    meta = weights.read_meta(user_models / f"{NAME}.safetensors")
    assert meta.provenance["source"] == server.url("ok") and meta.provenance["sha256_verified"]


@pytest.mark.parametrize(
    "route, words",
    [
        ("short", ("stopped after", "by hand", "--from FILE")),  # the connection closed early
        ("truncated", ("sha256", "not that of the official")),  # a complete transfer of a short file
        ("damaged", ("sha256", "not that of the official")),
        ("missing", ("HTTP 404", "by hand", "--from FILE")),
    ],
)
def test_bad_downloads_fail_cleanly(server, user_models, route, words):
    refused(invoke("models", "install", NAME, "--url", server.url(route)), *words)
    assert leftovers(user_models) == []


def test_no_network_says_where_to_download_by_hand(user_models):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = refused(
        invoke("models", "install", NAME, "--url", f"http://127.0.0.1:{port}/f.pt"),
        "cannot download",
        f"download {install.CHECKPOINTS[NAME].url} by hand",
        f"mgctag models install {NAME} --from FILE",
    )
    assert "Traceback" not in line
    assert leftovers(user_models) == []


def test_unknown_hash_is_not_downloaded_without_force(server, user_models):
    refused(invoke("models", "install", "efficientat-mn10", "--url", server.url("ok")), "cannot verify", "--force")
    assert server.hits == []
    # Forced, the download happens, and the tensors are still checked.
    refused(invoke("models", "install", "efficientat-mn10", "--url", server.url("ok"), "--force"), "does not fit")
    assert leftovers(user_models) == []


def test_an_interrupted_download_leaves_nothing(server, user_models):
    def interrupt(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        install.install(NAME, url=server.url("ok"), progress=interrupt)
    assert leftovers(user_models) == []


# --- using it -------------------------------------------------------------------------------


def test_installed_model_tags_a_file(official, user_models, tmp_path):
    install.install(NAME, source=CHECKPOINT)
    music = tmp_path / "music"
    music.mkdir()
    audiogen.make(music / "song.flac", seconds=12.0, freq=330.0)
    r = invoke("scan", music, "--model", NAME, "--workers", 0, "--min-confidence", 0)
    assert r.exit_code == 0, r.output
    row = next(line.split() for line in r.output.splitlines() if "song.flac" in line)
    assert row[0] == "would-tag" and row[1] in set(AUDIOSET_GENRES) | set(COMMON), row
