"""How a DICOM header says its image should be displayed: the windows (WindowCenter /
WindowWidth, with their VOI LUT function) and VOI LUT sequences, as contrast limits
on the values the reader returns; and which patient-identifying attributes the
header held (never their values).

A window applies to the rescaled values (the Modality LUT's output), which is what
the reader returns; for MONOCHROME1 the reader inverts those values, so each
window is inverted with them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "IDENTIFYING_KEYWORDS",
    "display_windows",
    "identifying_attributes",
    "limits_window",
    "window_limits",
]

#: Attributes of the DICOM basic de-identification profile (PS3.15 Table E.1-1) that
#: name or locate a person, or date what happened to them; the reader records which
#: of them a file held, never their values.
IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName", "PatientBirthDate",
    "PatientBirthTime", "PatientAge", "PatientSex", "PatientSize", "PatientWeight",
    "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName",
    "MilitaryRank", "BranchOfService", "MedicalRecordLocator", "EthnicGroup",
    "Occupation", "AdditionalPatientHistory", "PatientComments", "PatientReligiousPreference",
    "ReferringPhysicianName", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "OperatorsName", "PhysiciansOfRecord",
    "RequestingPhysician", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "StationName", "AccessionNumber", "StudyID",
    "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate",
    "AcquisitionTime", "ContentDate", "ContentTime", "AcquisitionDateTime",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
    "DeviceSerialNumber", "StudyDescription", "SeriesDescription", "RequestAttributesSequence",
)  # fmt: skip


def window_limits(center: float, width: float, function: str = "LINEAR") -> tuple[float, float]:
    """The values a window maps to its darkest and brightest output (PS3.3 C.11.2.1).

    ``LINEAR``: ``c − 0.5 ∓ (w − 1) / 2``; ``LINEAR_EXACT`` and ``SIGMOID``
    (shown linear over the same span): ``c ∓ w / 2``.
    """
    if function == "LINEAR":
        half = (width - 1) / 2
        low, high = center - 0.5 - half, center - 0.5 + half
    else:
        low, high = center - width / 2, center + width / 2
    if not high > low:  # a LINEAR window of width 1 is a threshold at c − 0.5
        high = low + 1e-6 * max(1.0, abs(low))
    return low, high


def limits_window(low: float, high: float, function: str = "LINEAR") -> tuple[float, float]:
    """The window (center, width) whose limits are ``(low, high)``: the inverse of
    :func:`window_limits` (LINEAR: ``c = (low + high) / 2 + 0.5``, ``w = high − low + 1``;
    otherwise ``c = (low + high) / 2``, ``w = high − low``).

    For 8-bit limits 0…255, LINEAR gives the DICOM convention's WL 128, WW 256.
    """
    if function == "LINEAR":
        return (low + high) / 2 + 0.5, high - low + 1
    return (low + high) / 2, high - low


def display_windows(ds, inversion_sum: float | None = None) -> list[dict[str, Any]]:
    """Every display window of the header, first the default, as contrast limits.

    Each is ``{"name", "center", "width", "function", "limits"}``: ``center`` and
    ``width`` as the header states them, ``limits`` on the rescaled values,
    inverted like them when ``inversion_sum`` (the reader's ``lo + hi`` for
    MONOCHROME1) is given. A VOI LUT sequence's tables come
    first (DICOM prefers them), each as the span of values over which
    ``pydicom``'s ``apply_voi_lut`` output is not saturated; ``center`` and
    ``width`` describe that span. Windows whose width is not positive, or whose
    values are not finite, are left out.
    """
    windows = _lut_windows(ds) + _center_width_windows(ds)
    if inversion_sum is not None:
        for window in windows:
            low, high = window["limits"]
            window["limits"] = (inversion_sum - high, inversion_sum - low)
    return windows


def _values(ds, keyword: str) -> list:
    value = ds.get(keyword)
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        return [value]
    return list(value)


def _center_width_windows(ds) -> list[dict[str, Any]]:
    centers, widths = _values(ds, "WindowCenter"), _values(ds, "WindowWidth")
    names = [str(v) for v in _values(ds, "WindowCenterWidthExplanation")]
    function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper() or "LINEAR"
    windows = []
    for index, (center, width) in enumerate(zip(centers, widths, strict=False)):
        try:
            center, width = float(center), float(width)
        except (TypeError, ValueError):
            continue
        if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
            continue
        if function == "LINEAR" and width < 1:
            continue  # the standard requires w >= 1 for LINEAR
        name = names[index].strip() if index < len(names) else ""
        windows.append({
            "name": name or f"window {index + 1}", "center": center, "width": width,
            "function": function, "limits": window_limits(center, width, function),
        })  # fmt: skip
    return windows


def _lut_windows(ds) -> list[dict[str, Any]]:
    from pydicom.pixels import apply_voi_lut

    windows = []
    for index, item in enumerate(ds.get("VOILUTSequence") or []):
        try:
            entries, first, _bits = (int(v) for v in item.LUTDescriptor)
        except (AttributeError, TypeError, ValueError):
            continue
        entries = entries or 65536  # 0 means 2^16 entries
        inputs = np.arange(first - 1, first + entries + 1, dtype=np.int64)
        try:
            outputs = np.asarray(apply_voi_lut(inputs, ds, index=index, prefer_lut=True))
        except Exception:  # a damaged table: offer the other windows
            continue
        varying = np.flatnonzero((outputs > outputs.min()) & (outputs < outputs.max()))
        if varying.size == 0:
            continue
        low, high = float(inputs[varying[0]] - 1), float(inputs[varying[-1]] + 1)
        name = str(item.get("LUTExplanation") or f"VOI LUT {index + 1}").strip()
        windows.append({
            "name": name, "center": (low + high) / 2, "width": high - low, "function": "LUT",
            "limits": (low, high),
        })  # fmt: skip
    return windows


def identifying_attributes(ds) -> list[str]:
    """The :data:`IDENTIFYING_KEYWORDS` present (and not empty) in ``ds``, in that order."""
    present = []
    for keyword in IDENTIFYING_KEYWORDS:
        try:
            value = ds.get(keyword)
        except Exception:  # an undecodable value is still present
            present.append(keyword)
            continue
        if value not in (None, "", b"") and not (hasattr(value, "__len__") and len(value) == 0):
            present.append(keyword)
    return present
