"""File I/O: chest X-rays, batch results stores and GIFs to and from NumPy arrays.

``paths`` (what a path is, natural order), ``limits`` (size limits checked from
headers), ``png`` with ``png_chunks`` and ``dicom`` with ``dicom_file``,
``dicom_checks`` and ``dicom_codecs`` (checked decoding), ``read``
(:func:`~napari_xray.io.read.read_xray`), ``store`` (the batch results store) and
``gif`` (animated GIFs). Importing this package imports none of them.
"""
