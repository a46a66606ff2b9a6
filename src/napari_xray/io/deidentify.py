"""De-identified copies of DICOM files, by the DICOM basic confidentiality profile
(PS3.15 Annex E) as ``dicognito`` applies it: names, IDs, addresses and the like
replaced with made-up values, dates shifted, UIDs remapped consistently, private
attributes removed, DeidentificationMethod noted. The pixel data is copied as it
is: text burned into the pixels is not searched, so PatientIdentityRemoved is set
to YES only when the file says BurnedInAnnotation NO."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from napari_xray.errors import XrayReadError

__all__ = ["deidentify"]


def deidentify(
    src: str | os.PathLike, dst: str | os.PathLike, *, seed: str | None = None
) -> list[Path]:
    """Write de-identified copies of the DICOM file or folder ``src`` to ``dst``.

    Parameters
    ----------
    src
        A DICOM file, or a folder whose DICOM files (as the reader lists them, in
        sub-folders too) are all copied, keeping their relative paths.
    dst
        The copy's path, or a folder to put it in (for a file); the folder of the
        copies (for a folder; created if needed, and may lie inside ``src``).
        Existing copies are replaced, each in one step; ``src`` is never changed.
    seed
        Makes the made-up values repeatable (the same seed, the same copy); files
        of one call share one mapping, so a series stays one series.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    XrayReadError
        ``src`` is missing, holds no DICOM file, or a file is not a readable DICOM
        image; ``dst`` is ``src`` itself (or one of its files).
    """
    from dicognito.anonymizer import Anonymizer

    from napari_xray.io.dicom import probe_dicom
    from napari_xray.io.paths import list_xray_files, path_kind

    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise XrayReadError(f"{src} does not exist; pass a DICOM file or a folder of them", src)
    if src.is_dir():
        inside = dst.resolve()
        files = [p for p in list_xray_files(src) if path_kind(p) == "dicom"
                 and not p.resolve().is_relative_to(inside)]  # earlier copies in src  # fmt: skip
        if not files:
            raise XrayReadError(f"folder {src} holds no DICOM files to de-identify", src)
        targets = [dst / p.relative_to(src) for p in files]
    else:
        files, targets = [src], [dst / src.name if dst.is_dir() else dst]
    for source, target in zip(files, targets, strict=True):
        if target.exists() and os.path.samefile(source, target):
            raise XrayReadError(
                f"{target} is the file to de-identify; pass another path for the copy", target
            )
        probe_dicom(source)  # a clear error for a damaged or non-image file, before writing
    anonymizer = Anonymizer(seed=seed)
    written = []
    for source, target in zip(files, targets, strict=True):
        written.append(_write_copy(source, target, anonymizer))
    return written


def _write_copy(source: Path, target: Path, anonymizer) -> Path:
    """One de-identified copy, written beside ``target`` and renamed into place."""
    import pydicom

    dataset = pydicom.dcmread(source)
    anonymizer.anonymize(dataset)
    dataset.remove_private_tags()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    # os.open with 0o666 honours the umask, as any new file would (mkstemp: 0600).
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as out:
            dataset.save_as(out)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return target
