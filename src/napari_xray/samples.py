"""Sample data: nine real ChestX-ray8 frames (downloaded or mirrored) and a phantom.

Three samples, by name (:func:`load_sample`; napari's File ▸ Open Sample uses
:mod:`napari_xray.plugin._samples`):

* ``series``  – the nine frames ``00000011_000.png`` … ``00000011_008.png`` as one
  ``(9, 1024, 1024)`` uint8 stack;
* ``frame``   – the tutorial's single frame ``00000011_001.png``, ``(1024, 1024)`` uint8;
* ``phantom`` – a synthetic chest phantom from :func:`napari_xray.phantom.make_phantom`,
  which needs no network and no files.

Where the real frames come from (first match wins):

1. ``NAPARI_XRAY_DATA_DIR``: a local folder holding the frames (a mirror). Every
   file is checked against the SHA-256 in ``sample_data/registry.json``; a
   missing or altered file is an error, never silently used.
2. Otherwise the user's cache (``pooch.os_cache("napari-xray")``, or the folder
   named by ``NAPARI_XRAY_CACHE_DIR``); missing files are downloaded with pooch
   from the NumPy tutorials repository at a pinned commit (or from
   ``NAPARI_XRAY_BASE_URL`` / the ``base_url`` argument) and hash-checked. A
   download whose hash does not match is deleted, never kept in the cache.

Downloads are bounded: all requested frames must arrive within one overall
deadline (``timeout``, default ``NAPARI_XRAY_DOWNLOAD_TIMEOUT``, else 300 s), so a
server trickling bytes fails in time; a server sending more bytes than the
registry's file holds is cut off. On every failure the partial download is
removed from the cache.

The registry (``sample_data/registry.json`` inside the installed package) names
the files, their SHA-256 and size, and the pinned download URL.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.errors import SampleDataError

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "ENV_BASE_URL",
    "ENV_CACHE_DIR",
    "ENV_DATA_DIR",
    "ENV_DOWNLOAD_TIMEOUT",
    "FRAME_NAMES",
    "SAMPLE_NAMES",
    "TUTORIAL_FRAME",
    "fetch_frames",
    "frames_metadata",
    "load_sample",
]

#: Environment variable naming a local folder that holds the frames (a mirror).
ENV_DATA_DIR = "NAPARI_XRAY_DATA_DIR"
#: Environment variable overriding the download cache folder.
ENV_CACHE_DIR = "NAPARI_XRAY_CACHE_DIR"
#: Environment variable overriding the registry's download base URL.
ENV_BASE_URL = "NAPARI_XRAY_BASE_URL"
#: Environment variable: seconds all the frames of one download may take.
ENV_DOWNLOAD_TIMEOUT = "NAPARI_XRAY_DOWNLOAD_TIMEOUT"
#: Default overall download deadline in seconds.
DEFAULT_DOWNLOAD_TIMEOUT = 300.0
# Frames whose size the registry does not state may be at most this large.
_MAX_UNLISTED_BYTES = 16 << 20

#: Names accepted by :func:`load_sample`.
SAMPLE_NAMES = ("series", "frame", "phantom")

#: The tutorial's single frame (``frame`` sample).
TUTORIAL_FRAME = "00000011_001.png"

FRAME_SHAPE = (1024, 1024)

_LICENSE = (
    "ChestX-ray8, NIH Clinical Center: use is unrestricted; link the NIH download "
    "site, acknowledge the NIH Clinical Center and cite Wang et al., CVPR 2017."
)
_CITATION = (
    "Wang X, Peng Y, Lu L, Lu Z, Bagheri M, Summers RM. ChestX-ray8: Hospital-scale "
    "Chest X-ray Database and Benchmarks on Weakly-Supervised Classification and "
    "Localization of Common Thorax Diseases. CVPR 2017."
)


# --------------------------------------------------------------------------- registry


def _registry_file():
    """``sample_data/registry.json`` of the installed package (wheel or editable)."""
    return files("napari_xray") / "sample_data" / "registry.json"


def _sample_entry_file():
    """The nine sample frames' rows of the data set's entry file, shipped with the package."""
    return files("napari_xray") / "sample_data" / "Data_Entry_2017_patient11.csv"


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, Any]:
    """Load ``registry.json`` (base_url, commit, source, ``files`` name → "sha256:…")."""
    path = _registry_file()
    if not path.is_file():
        raise SampleDataError(f"sample data registry not found at {path}; reinstall napari-xray")
    try:
        with path.open(encoding="utf-8") as fh:
            registry = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SampleDataError(
            f"sample data registry {path} cannot be read ({type(exc).__name__}: {exc}); "
            "reinstall napari-xray"
        ) from exc
    missing = {"base_url", "files"} - registry.keys()
    if missing:
        raise SampleDataError(
            f"sample data registry {path} lacks {sorted(missing)}; reinstall napari-xray"
        )
    return registry


def _registry_names() -> list[str]:
    return sorted(_registry()["files"])


FRAME_NAMES: tuple[str, ...] = tuple(f"00000011_{i:03d}.png" for i in range(9))


def _check_names(names: Iterable[str] | str | None) -> list[str]:
    valid = _registry_names()
    if names is None:
        return valid
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown sample frame(s) {unknown}; valid names are: {', '.join(valid)}")
    return names


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_hex(name: str) -> str:
    return _registry()["files"][name].split(":", 1)[-1].lower()


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


# --------------------------------------------------------------------------- fetching


def fetch_frames(
    names: Iterable[str] | str | None = None,
    *,
    base_url: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    timeout: float | None = None,
) -> list[Path]:
    """Return local, hash-verified paths of ChestX-ray8 sample frames.

    Parameters
    ----------
    names : iterable of str, str or None
        Registry file names such as ``"00000011_001.png"``, returned in the
        order given. ``None`` (default) means all nine frames, in order
        ``00000011_000.png`` … ``00000011_008.png``.
    base_url : str, optional
        Download from this URL (a mirror server, a test server) instead of the
        registry's pinned NumPy-tutorials URL. Defaults to the environment
        variable ``NAPARI_XRAY_BASE_URL``, then the registry. Ignored when
        ``NAPARI_XRAY_DATA_DIR`` is set.
    cache_dir : path, optional
        Download cache folder. Defaults to ``NAPARI_XRAY_CACHE_DIR``, then
        ``pooch.os_cache("napari-xray")``. Ignored when ``NAPARI_XRAY_DATA_DIR``
        is set.
    timeout : float, optional
        Seconds the whole download (every missing frame) may take. Defaults to
        ``NAPARI_XRAY_DOWNLOAD_TIMEOUT``, then 300. Ignored when nothing needs
        downloading.

    Returns
    -------
    list of pathlib.Path
        One existing file per requested name, each with the registry's SHA-256.
        With ``NAPARI_XRAY_DATA_DIR`` set these are the files in that folder
        (nothing is copied or downloaded); otherwise they are in the cache,
        downloaded first if missing or altered.

    Raises
    ------
    ValueError
        A name is not in the registry (the message lists the valid names).
    SampleDataError
        The mirror folder does not exist, lacks a file or holds a file whose
        SHA-256 differs from the registry; a download failed (offline, server
        down, HTTP error: the message names ``NAPARI_XRAY_DATA_DIR`` and the
        URL); the download did not finish within the deadline, or the server
        sent more bytes than the registry's file holds (the partial file was
        removed); a downloaded file failed its hash check (it was discarded);
        the cache folder is not writable; ``timeout`` (or the variable) is not a
        positive number.
    """
    names = _check_names(names)
    mirror = _env(ENV_DATA_DIR)
    if mirror is not None:
        return _from_mirror(Path(mirror).expanduser(), names)
    seconds = _download_timeout(timeout)
    return _download(names, base_url=base_url, cache_dir=cache_dir, timeout=seconds)


def _download_timeout(timeout: float | None) -> float:
    """The overall deadline in seconds: the argument, else the environment, else 300."""
    source, value = "timeout", timeout
    if value is None:
        source, value = ENV_DOWNLOAD_TIMEOUT, _env(ENV_DOWNLOAD_TIMEOUT)
    if value is None:
        return DEFAULT_DOWNLOAD_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise SampleDataError(
            f"{source}={value!r} is not a positive number of seconds; give e.g. 300 "
            "(or unset it for the default)"
        )
    return seconds


class _DownloadRefused(Exception):
    """A download stopped by napari-xray (deadline passed, too many bytes)."""


class _BoundedDownloader:
    """A pooch downloader with an overall deadline and a size limit per file.

    The body is read in pieces as they arrive (``read1``), so a trickling server
    is noticed within one socket read; pooch writes into a temporary file that it
    removes when this raises.
    """

    def __init__(self, deadline: float, timeout: float, max_bytes: int):
        self.deadline, self.timeout, self.max_bytes = deadline, timeout, max_bytes

    def _check_time(self, url: str) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _DownloadRefused(
                f"the download from {url} did not finish within the {self.timeout:g} s "
                f"deadline ({ENV_DOWNLOAD_TIMEOUT})"
            )
        return remaining

    def __call__(self, url: str, output_file, pooch_obj=None, check_only: bool = False):
        import requests

        remaining = self._check_time(url)
        timeouts = (min(10.0, remaining), min(30.0, remaining))
        with requests.get(url, stream=True, timeout=timeouts) as response:
            response.raise_for_status()
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise _DownloadRefused(
                    f"{url} announced {int(declared)} bytes, more than the {self.max_bytes} "
                    "bytes of the registry's file"
                )
            raw = response.raw
            read = getattr(raw, "read1", None) or raw.read
            received = 0
            with open(output_file, "wb") as out:
                while True:
                    block = read(1 << 16, decode_content=True)
                    self._check_time(url)
                    if not block:
                        break
                    received += len(block)
                    if received > self.max_bytes:
                        raise _DownloadRefused(
                            f"{url} sent more than the {self.max_bytes} bytes of the "
                            "registry's file"
                        )
                    out.write(block)


def _from_mirror(folder: Path, names: list[str]) -> list[Path]:
    if not folder.is_dir():
        raise SampleDataError(
            f"{ENV_DATA_DIR}={folder} is not a folder. Point {ENV_DATA_DIR} at a folder "
            f"holding {', '.join(FRAME_NAMES)}, or unset it to download the frames."
        )
    paths = []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise SampleDataError(
                f"{name} is missing from the mirror folder {folder} ({ENV_DATA_DIR}). "
                f"Copy it there (from {_registry()['base_url']}{name}) or unset "
                f"{ENV_DATA_DIR} to download it."
            )
        expected = _expected_hex(name)
        actual = _sha256(path)
        if actual != expected:
            raise SampleDataError(
                f"{path} does not match the registry: expected sha256:{expected}, "
                f"got sha256:{actual}. The file was not used; replace it with the "
                f"original from {_registry()['base_url']}{name} or unset {ENV_DATA_DIR}."
            )
        paths.append(path)
    return paths


def _download(
    names: list[str],
    *,
    base_url: str | None,
    cache_dir: str | os.PathLike | None,
    timeout: float,
) -> list[Path]:
    import pooch  # lazy: only needed when downloading
    import requests

    pooch.get_logger().setLevel(logging.WARNING)

    registry = _registry()
    url_base = base_url or _env(ENV_BASE_URL) or registry["base_url"]
    if not url_base.endswith("/"):
        url_base += "/"
    if cache_dir is not None:
        cache = Path(cache_dir).expanduser()
    elif _env(ENV_CACHE_DIR) is not None:
        cache = Path(_env(ENV_CACHE_DIR)).expanduser()
    else:
        cache = Path(pooch.os_cache("napari-xray"))

    fetcher = pooch.create(
        path=cache,
        base_url=url_base,
        registry={name: registry["files"][name] for name in names},
        retry_if_failed=0,
    )
    sizes = registry.get("sizes", {})
    deadline = time.monotonic() + timeout
    paths = []
    for name in names:
        url = fetcher.get_url(name)
        downloader = _BoundedDownloader(
            deadline, timeout, int(sizes.get(name, _MAX_UNLISTED_BYTES))
        )
        target = cache / name
        # pooch keeps a cached file whose hash is wrong when the re-download fails
        # too; drop it first so a bad file is never left in (or served from) the cache.
        if target.exists() and _sha256(target) != _expected_hex(name):
            target.unlink()
        try:
            path = Path(fetcher.fetch(name, downloader=downloader, progressbar=False))
        except _DownloadRefused as exc:
            raise SampleDataError(
                f"could not download {name}: {exc}; the partial download was removed from "
                f"{cache}. Try again later, raise {ENV_DOWNLOAD_TIMEOUT} (seconds) for a slow "
                f"connection, check {ENV_BASE_URL}, or set {ENV_DATA_DIR} to a local folder "
                "holding the frames."
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise SampleDataError(
                f"could not download {name} from {url} ({type(exc).__name__}: {exc}). "
                f"If you are offline, set {ENV_DATA_DIR} to a local folder holding the "
                f"frames {FRAME_NAMES[0]} … {FRAME_NAMES[-1]} (copies of {url_base}…)."
            ) from exc
        except ValueError as exc:
            if "hash" not in str(exc).lower():
                raise SampleDataError(
                    f"could not download {name} from {url}: {exc}. Set {ENV_DATA_DIR} to a "
                    "local folder holding the frames instead."
                ) from exc
            raise SampleDataError(
                f"{name} downloaded from {url} does not match the registry "
                f"(expected {registry['files'][name]}); the download was discarded and "
                f"nothing was kept in {cache}. Details: {exc} "
                f"Try again later, check {ENV_BASE_URL}, or set {ENV_DATA_DIR} to a folder "
                "holding the original frames."
            ) from exc
        except OSError as exc:
            raise SampleDataError(
                f"could not store {name} in the cache folder {cache}: {exc}. Set "
                f"{ENV_CACHE_DIR} to a writable folder, or {ENV_DATA_DIR} to a folder "
                "holding the frames."
            ) from exc
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- decoding


def _read_frames(paths: list[Path]) -> np.ndarray:
    """The hash-checked frames as one (n, H, W) uint8 stack, read with read_xray."""
    from napari_xray.io.read import read_xray

    return read_xray(list(paths))


# --------------------------------------------------------------------------- samples


def load_sample(name: str) -> np.ndarray:
    """Return one of the sample images as a numpy array.

    Parameters
    ----------
    name : {"series", "frame", "phantom"}
        ``"series"``: the nine real frames, ``(9, 1024, 1024)`` uint8, in order
        ``00000011_000`` … ``00000011_008``. ``"frame"``: the tutorial's frame
        ``00000011_001``, ``(1024, 1024)`` uint8. ``"phantom"``: the synthetic
        chest phantom from :func:`napari_xray.phantom.make_phantom`, ``(9, 1024,
        1024)`` uint8, made locally without network or files.

    Returns
    -------
    numpy.ndarray
        A new, writable uint8 array.

    Raises
    ------
    ValueError
        ``name`` is not one of :data:`SAMPLE_NAMES`.
    SampleDataError
        The real frames could not be fetched or failed their hash check (see
        :func:`fetch_frames`).
    """
    if name == "series":
        return _read_frames(fetch_frames())
    if name == "frame":
        return _read_frames(fetch_frames([TUTORIAL_FRAME]))[0]
    if name == "phantom":
        from napari_xray.phantom import make_phantom

        return make_phantom()
    raise ValueError(f"unknown sample {name!r}; valid names are: {', '.join(SAMPLE_NAMES)}")


def frames_metadata(names: Iterable[str] | str | None = None) -> dict[str, Any]:
    """Where the real frames ``names`` come from, for a layer's metadata.

    Parameters
    ----------
    names : iterable of str, str or None
        Registry file names, as for :func:`fetch_frames`; ``None`` means all nine.

    Returns
    -------
    dict
        ``file_names``, ``sha256`` (one ``"sha256:…"`` per file), ``source``,
        ``url``, ``commit``, ``license`` and ``citation``; and what the data set's
        entry file says about each frame (its nine rows ship with the package):
        ``frames``, ``pixel_spacing``, ``pixel_spacing_source`` and ``chestxray8``
        (see :func:`napari_xray.io.chestxray8.frames_entries`).

    Raises
    ------
    ValueError
        A name is not in the registry.
    """
    from napari_xray.io.chestxray8 import frames_entries

    names = _check_names(names)
    registry = _registry()
    entries = frames_entries(names, FRAME_SHAPE, Path(str(_sample_entry_file())))
    return {
        **entries,
        "file_names": list(names),
        "sha256": [registry["files"][n] for n in names],
        "source": registry.get("source", "NIH Clinical Center ChestX-ray8"),
        "url": registry["base_url"],
        "commit": registry.get("commit"),
        "license": _LICENSE,
        "citation": _CITATION,
    }
