"""Sample data without a viewer: registry, mirror folder, downloads, hash checks, phantom.

Downloads are exercised against a local HTTP server on 127.0.0.1 serving a
temporary copy of the real frames; nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from napari_xray import samples
from napari_xray.errors import SampleDataError
from napari_xray.plugin import _samples
from napari_xray.samples import fetch_frames, load_sample

REPO_ROOT = Path(__file__).resolve().parents[1]
FRAME_NAMES = [f"00000011_{i:03d}.png" for i in range(9)]
TUTORIAL = "00000011_001.png"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_one_byte(path: Path, offset: int = 5000) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def _files_in(folder: Path) -> list[str]:
    """Every file (any name, temp files included) below ``folder``; [] if it does not exist."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _copy_frames(src: Path, dst: Path, names=FRAME_NAMES) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(src / name, dst / name)
        (dst / name).chmod(0o644)
    return dst


def _unused_port_url() -> str:
    """A URL on 127.0.0.1 whose port was just bound and released: nothing listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/frames/"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _never_the_real_network(monkeypatch, tmp_path):
    """A download that forgets its base_url goes to a dead local port, never to GitHub,
    and one that forgets its cache_dir writes below tmp_path, never into the user's cache."""
    monkeypatch.setenv(samples.ENV_BASE_URL, _unused_port_url())
    monkeypatch.setenv(samples.ENV_CACHE_DIR, str(tmp_path / "default-cache"))


@pytest.fixture
def no_mirror(monkeypatch):
    """Unset NAPARI_XRAY_DATA_DIR (conftest sets it session-wide) so fetch_frames downloads."""
    monkeypatch.delenv(samples.ENV_DATA_DIR, raising=False)


class _CountingHandler(SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()

    def do_HEAD(self):
        self.server.requests.append(self.path)
        super().do_HEAD()

    def log_message(self, format, *args):  # keep test output quiet
        pass


@pytest.fixture
def frame_server(tmp_path, xray_dir):
    """A ThreadingHTTPServer on 127.0.0.1 serving a writable copy of the nine frames.

    Yields a namespace with ``url`` (ends in "/frames/"), ``root`` (the served
    folder: edit files there to change what the server sends) and ``requests``
    (the request paths received so far).
    """
    www = tmp_path / "www"
    root = _copy_frames(xray_dir, www / "frames")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_CountingHandler, directory=str(www)))
    server.daemon_threads = True
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield SimpleNamespace(
            url=f"http://{host}:{port}/frames/", root=root, requests=server.requests
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------- registry


def test_registry_lists_the_nine_frames_with_their_real_hashes(xray_paths):
    registry = samples._registry()
    assert sorted(registry["files"]) == FRAME_NAMES
    assert registry["commit"] in registry["base_url"]
    for path in xray_paths:
        assert registry["files"][path.name] == f"sha256:{_sha256(path)}"


def test_the_installed_package_holds_the_top_level_registry():
    """Editable install or wheel: the package's sample_data/registry.json is the top-level one."""
    in_package = importlib.resources.files("napari_xray") / "sample_data" / "registry.json"
    top_level = REPO_ROOT / "sample_data" / "registry.json"
    assert in_package.is_file(), "napari_xray/sample_data/registry.json is not reachable"
    assert json.loads(in_package.read_text()) == json.loads(top_level.read_text())
    assert samples._registry() == json.loads(top_level.read_text())


@pytest.fixture
def fresh_registry():
    """Forget the cached registry before and after a test that moves it."""
    samples._registry.cache_clear()
    yield
    samples._registry.cache_clear()


def test_a_missing_registry_is_a_clear_error(tmp_path, monkeypatch, fresh_registry):
    """A package without sample_data/registry.json says so and how to fix it."""
    monkeypatch.setattr(samples, "files", lambda package: tmp_path)
    with pytest.raises(SampleDataError, match="registry not found at .*reinstall napari-xray"):
        fetch_frames()

    samples._registry.cache_clear()
    (tmp_path / "sample_data").mkdir()
    (tmp_path / "sample_data" / "registry.json").write_text('{"files": {}}')
    with pytest.raises(SampleDataError, match=r"lacks \['base_url'\]"):
        load_sample("frame")


def test_manifest_sample_commands_exist():
    """Every sample_data command in napari.yaml names a callable in napari_xray.plugin._samples."""
    import npe2

    manifest = npe2.PluginManifest.from_file(REPO_ROOT / "napari.yaml")
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    keys = {}
    for contrib in manifest.contributions.sample_data:
        module, _, attr = commands[contrib.command].partition(":")
        assert module == "napari_xray.plugin._samples"
        assert callable(getattr(_samples, attr))
        keys[contrib.key] = attr
    assert keys == {
        "series": "series_sample",
        "frame": "frame_sample",
        "phantom": "phantom_sample",
    }


def test_samples_module_imports_neither_napari_nor_qt():
    code = (
        "import sys, napari_xray.samples\n"
        "gui = ('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy')\n"
        "bad = sorted(m for m in gui if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="series, frame, phantom"):
        load_sample("chest")
    with pytest.raises(ValueError, match="00000011_008.png"):
        fetch_frames(["00000011_009.png"])


# --------------------------------------------------------------------------- mirror folder


def test_mirror_series_equals_independent_read(xray_dir, xray_stack, monkeypatch):
    monkeypatch.setenv(samples.ENV_DATA_DIR, str(xray_dir))
    assert fetch_frames() == [xray_dir / n for n in FRAME_NAMES]
    series = load_sample("series")
    assert series.dtype == np.uint8
    assert series.shape == (9, 1024, 1024)
    np.testing.assert_array_equal(series, xray_stack)


def test_mirror_frame_reproduces_the_tutorial_figures(xray_dir, xray_stack, monkeypatch):
    monkeypatch.setenv(samples.ENV_DATA_DIR, str(xray_dir))
    frame = load_sample("frame")
    assert frame.dtype == np.uint8
    assert frame.shape == (1024, 1024)
    np.testing.assert_array_equal(frame, xray_stack[1])
    assert frame.min() == 0
    assert frame.max() == 255
    assert np.mean(frame) == 172.52233219146729
    assert np.median(frame) == 195.0


def test_mirror_with_a_tampered_file_is_refused(xray_dir, tmp_path, monkeypatch):
    mirror = _copy_frames(xray_dir, tmp_path / "mirror")
    bad = mirror / "00000011_004.png"
    expected = _sha256(bad)
    _flip_one_byte(bad)
    actual = _sha256(bad)
    monkeypatch.setenv(samples.ENV_DATA_DIR, str(mirror))

    with pytest.raises(SampleDataError) as excinfo:
        load_sample("series")
    message = str(excinfo.value)
    assert "00000011_004.png" in message
    assert expected in message and actual in message
    assert samples.ENV_DATA_DIR in message
    # the other files are still usable one by one
    assert fetch_frames([TUTORIAL]) == [mirror / TUTORIAL]


def test_mirror_missing_file_says_so(xray_dir, tmp_path, monkeypatch):
    mirror = _copy_frames(xray_dir, tmp_path / "mirror", FRAME_NAMES[:-1])
    monkeypatch.setenv(samples.ENV_DATA_DIR, str(mirror))
    with pytest.raises(SampleDataError, match=r"00000011_008\.png is missing from the mirror"):
        fetch_frames()


def test_mirror_that_is_not_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(samples.ENV_DATA_DIR, str(tmp_path / "nowhere"))
    with pytest.raises(SampleDataError, match="is not a folder"):
        load_sample("frame")


# --------------------------------------------------------------------------- downloads


def test_download_into_cache_then_reuse_it(no_mirror, frame_server, xray_stack, tmp_path):
    cache = tmp_path / "cache"
    (path,) = fetch_frames([TUTORIAL], base_url=frame_server.url, cache_dir=cache)
    assert path == cache / TUTORIAL
    assert f"sha256:{_sha256(path)}" == samples._registry()["files"][TUTORIAL]
    assert frame_server.requests == [f"/frames/{TUTORIAL}"]
    assert _files_in(cache) == [TUTORIAL]

    # second call: served from the cache, the server is not asked again
    assert fetch_frames([TUTORIAL], base_url=frame_server.url, cache_dir=cache) == [path]
    assert len(frame_server.requests) == 1


def test_download_all_nine_via_environment(
    no_mirror, frame_server, xray_stack, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    monkeypatch.setenv(samples.ENV_BASE_URL, frame_server.url)
    monkeypatch.setenv(samples.ENV_CACHE_DIR, str(cache))
    series = load_sample("series")
    np.testing.assert_array_equal(series, xray_stack)
    assert _files_in(cache) == FRAME_NAMES
    assert sorted(frame_server.requests) == [f"/frames/{n}" for n in FRAME_NAMES]
    np.testing.assert_array_equal(load_sample("frame"), xray_stack[1])
    assert len(frame_server.requests) == 9


def test_download_with_wrong_hash_is_discarded(no_mirror, frame_server, tmp_path):
    cache = tmp_path / "cache"
    _flip_one_byte(frame_server.root / TUTORIAL)
    with pytest.raises(SampleDataError) as excinfo:
        fetch_frames([TUTORIAL], base_url=frame_server.url, cache_dir=cache)
    message = str(excinfo.value)
    assert TUTORIAL in message
    assert "discarded" in message
    assert frame_server.requests == [f"/frames/{TUTORIAL}"]  # it was really downloaded
    assert _files_in(cache) == []  # no copy, no partial or temporary file


def test_corrupt_cached_file_is_replaced_by_a_good_download(
    no_mirror, frame_server, xray_dir, tmp_path
):
    cache = _copy_frames(xray_dir, tmp_path / "cache", [TUTORIAL])
    _flip_one_byte(cache / TUTORIAL)
    (path,) = fetch_frames([TUTORIAL], base_url=frame_server.url, cache_dir=cache)
    assert _sha256(path) == _sha256(xray_dir / TUTORIAL)
    assert len(frame_server.requests) == 1
    assert _files_in(cache) == [TUTORIAL]


def test_corrupt_cached_file_is_dropped_when_the_download_is_bad_too(
    no_mirror, frame_server, xray_dir, tmp_path
):
    cache = _copy_frames(xray_dir, tmp_path / "cache", [TUTORIAL])
    _flip_one_byte(cache / TUTORIAL, offset=7000)
    _flip_one_byte(frame_server.root / TUTORIAL)
    with pytest.raises(SampleDataError, match="discarded"):
        fetch_frames([TUTORIAL], base_url=frame_server.url, cache_dir=cache)
    assert _files_in(cache) == []


def test_server_down_names_the_variable_and_the_url(no_mirror, tmp_path):
    url = _unused_port_url()
    cache = tmp_path / "cache"
    with pytest.raises(SampleDataError) as excinfo:
        fetch_frames([TUTORIAL], base_url=url, cache_dir=cache)
    message = str(excinfo.value)
    assert "NAPARI_XRAY_DATA_DIR" in message
    assert url + TUTORIAL in message
    assert _files_in(cache) == []


def test_http_error_names_the_url(no_mirror, frame_server, tmp_path):
    (frame_server.root / TUTORIAL).unlink()
    cache = tmp_path / "cache"
    with pytest.raises(SampleDataError) as excinfo:
        fetch_frames([TUTORIAL], base_url=frame_server.url, cache_dir=cache)
    assert frame_server.url + TUTORIAL in str(excinfo.value)
    assert "NAPARI_XRAY_DATA_DIR" in str(excinfo.value)
    assert _files_in(cache) == []


# --------------------------------------------------------------------------- layer tuples


def _single_image_tuple(result):
    assert isinstance(result, list) and len(result) == 1
    data, kwargs, layer_type = result[0]
    assert layer_type == "image"
    assert kwargs["colormap"] == "gray"
    return data, kwargs


def test_series_and_frame_layer_tuples(xray_dir, xray_stack, monkeypatch):
    monkeypatch.setenv(samples.ENV_DATA_DIR, str(xray_dir))
    registry = samples._registry()

    data, kwargs = _single_image_tuple(_samples.series_sample())
    np.testing.assert_array_equal(data, xray_stack)
    meta = kwargs["metadata"]
    assert meta["file_names"] == FRAME_NAMES
    assert meta["commit"] == registry["commit"]
    assert meta["url"] == registry["base_url"]
    assert "ChestX-ray8" in meta["source"] and "NIH" in meta["license"]

    data, kwargs = _single_image_tuple(_samples.frame_sample())
    np.testing.assert_array_equal(data, xray_stack[1])
    assert kwargs["metadata"]["file_names"] == [TUTORIAL]
    assert kwargs["name"] == "00000011_001"


def test_phantom_sample_needs_no_data(tmp_path, monkeypatch):
    # no mirror, and any download would go to a dead port
    monkeypatch.setenv(samples.ENV_DATA_DIR, str(tmp_path / "nowhere"))
    data, kwargs = _single_image_tuple(_samples.phantom_sample())
    assert data.shape == (9, 1024, 1024)
    assert data.dtype == np.uint8
    assert data.max() > data.min()
    assert kwargs["metadata"]["file_names"] == []
    assert "make_phantom" in kwargs["metadata"]["source"]

    from napari_xray.phantom import make_phantom

    np.testing.assert_array_equal(load_sample("phantom"), make_phantom())


# --------------------------------------------------------------------------- hostile servers


class _HostileHandler(SimpleHTTPRequestHandler):
    """Serves ``/<mode>/<frame>`` from the server's folder in one of three hostile ways.

    ``trickle``: the right headers, then 200 bytes every 0.1 s (2 KB/s) for at most
    ``server.trickle_seconds``; ``oversized``: the file plus 1 MB, announced in
    Content-Length; ``endless``: no Content-Length, the file then zeros, up to 64 MB.
    Every loop is bounded; the bytes sent are added to ``server.sent``.
    """

    protocol_version = "HTTP/1.0"

    def do_GET(self):
        _, mode, name = self.path.split("/", 2)
        data = (Path(self.server.folder) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if mode == "trickle":
            self.send_header("Content-Length", str(len(data)))
        elif mode == "oversized":
            data += bytes(1 << 20)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        sent, started = 0, time.monotonic()
        try:
            if mode == "trickle":
                while sent < len(data) and time.monotonic() - started < self.server.trickle_seconds:
                    self.wfile.write(data[sent : sent + 200])
                    self.wfile.flush()
                    sent += 200
                    time.sleep(0.1)
            elif mode == "oversized":
                self.wfile.write(data)
                sent = len(data)
            else:
                self.wfile.write(data)
                sent = len(data)
                while sent < 64 << 20:
                    self.wfile.write(bytes(1 << 16))
                    sent += 1 << 16
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.server.sent.append(sent)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def hostile_server(xray_dir):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    server.daemon_threads = True
    server.folder, server.sent, server.trickle_seconds = str(xray_dir), [], 10.0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield SimpleNamespace(url=f"http://{host}:{port}", server=server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_trickling_server_fails_within_the_deadline(
    no_mirror, hostile_server, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    monkeypatch.setenv(samples.ENV_DOWNLOAD_TIMEOUT, "1.5")
    start = time.monotonic()
    with pytest.raises(SampleDataError) as excinfo:
        fetch_frames([TUTORIAL], base_url=f"{hostile_server.url}/trickle/", cache_dir=cache)
    seconds = time.monotonic() - start
    message = str(excinfo.value)
    assert seconds < 4.0, f"{seconds:.1f} s"
    assert "did not finish within the 1.5 s deadline" in message
    assert samples.ENV_DOWNLOAD_TIMEOUT in message and samples.ENV_DATA_DIR in message
    assert _files_in(cache) == []  # the partial download is gone

    start = time.monotonic()  # the keyword wins over the environment
    with pytest.raises(SampleDataError, match="within the 0.5 s deadline"):
        fetch_frames([TUTORIAL], base_url=f"{hostile_server.url}/trickle/", cache_dir=cache,
                     timeout=0.5)  # fmt: skip
    assert time.monotonic() - start < 3.0
    assert _files_in(cache) == []


def test_a_bad_deadline_is_a_clear_error(no_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(samples.ENV_DOWNLOAD_TIMEOUT, "soon")
    with pytest.raises(SampleDataError, match=r"NAPARI_XRAY_DOWNLOAD_TIMEOUT='soon' is not a "
                       "positive number"):  # fmt: skip
        fetch_frames([TUTORIAL], cache_dir=tmp_path)


@pytest.mark.parametrize("mode", ["oversized", "endless"])
def test_a_server_sending_too_much_is_cut_off(no_mirror, hostile_server, tmp_path, mode):
    cache = tmp_path / "cache"
    size = samples._registry()["sizes"][TUTORIAL]
    with pytest.raises(SampleDataError) as excinfo:
        fetch_frames([TUTORIAL], base_url=f"{hostile_server.url}/{mode}/", cache_dir=cache)
    message = str(excinfo.value)
    assert f"than the {size} bytes of the registry's file" in message
    assert "partial download was removed" in message
    assert _files_in(cache) == []
    deadline = time.monotonic() + 10
    while not hostile_server.server.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    # refused early: what the server wrote is at most the file plus the socket buffers
    assert hostile_server.server.sent[0] < 24 << 20, hostile_server.server.sent


def test_the_registry_states_every_frame_size(xray_paths):
    sizes = samples._registry()["sizes"]
    assert sizes == {path.name: path.stat().st_size for path in xray_paths}
