"""Generated DX and CR DICOM radiographs: windows, VOI LUT sequences, both spacing
tags, MONOCHROME1/2, and patient-identifying attributes with recognisable values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_IMAGE = "1.2.840.10008.5.1.4.1.1.1.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
#: Values that must never leave the file (the tests search every output for them).
IDENTIFYING_VALUES = {
    "PatientName": "DOE^JANE",
    "PatientID": "PID-314159",
    "PatientBirthDate": "19510203",
    "PatientAddress": "1 Test Road, Exampletown",
    "InstitutionName": "St Example Hospital",
    "ReferringPhysicianName": "WHO^DOCTOR",
    "AccessionNumber": "ACC-271828",
    "StudyDate": "20200304",
    "OperatorsName": "OPERATOR^ONE",
}


def radiograph_pixels(rows: int = 64, columns: int = 80, bits: int = 12, seed: int = 0):
    """A smooth chest-like gradient with noise, in ``bits`` stored bits (uint16)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns]
    base = 0.5 + 0.4 * np.sin(x / columns * np.pi) * np.cos((y / rows - 0.5) * np.pi)
    values = base * (2**bits - 1) + rng.normal(0, 20, (rows, columns))
    return np.clip(np.rint(values), 0, 2**bits - 1).astype(np.uint16)


def write_radiograph(
    path: Path,
    *,
    modality: str = "DX",
    photometric: str = "MONOCHROME2",
    bits: int = 12,
    pixels: np.ndarray | None = None,
    windows: list[tuple[float, float, str]] = (),
    voi_function: str | None = None,
    voi_luts: list[tuple[int, list[int], str]] = (),
    spacing: dict[str, tuple[float, float]] | None = None,
    identifying: dict[str, str] | None = None,
    rescale: tuple[float, float] | None = None,
    burned_in: str | None = None,
    series_uid: str | None = None,
) -> Path:
    """Write one radiograph; ``voi_luts`` items are (first mapped value, table, name)."""
    pixels = radiograph_pixels(bits=bits) if pixels is None else pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_IMAGE if modality == "DX" else CR_IMAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), series_uid or generate_uid()
    ds.Modality = modality
    ds.InstanceNumber = 1
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    for keyword, value in (IDENTIFYING_VALUES if identifying is None else identifying).items():
        setattr(ds, keyword, value)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    ds.PixelRepresentation = 0
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if windows:
        ds.WindowCenter = [w[0] for w in windows]
        ds.WindowWidth = [w[1] for w in windows]
        ds.WindowCenterWidthExplanation = [w[2] for w in windows]
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    if voi_luts:
        items = []
        for first, table, name in voi_luts:
            item = Dataset()
            item.LUTDescriptor = [len(table), first, 16]
            item.add_new("LUTData", "US", [int(v) for v in table])
            item.LUTExplanation = name
            items.append(item)
        ds.VOILUTSequence = Sequence(items)
    for keyword, value in (spacing or {}).items():
        setattr(ds, keyword, list(value))
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
