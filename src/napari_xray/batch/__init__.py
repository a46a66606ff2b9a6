"""Dataset-scale filtering on Dask into a resumable Zarr v3 store (``napari-xray batch``).

A store ``STORE.zarr`` is one group:

* group attributes ``napari_xray`` (format, version, frame shape, input dtype, the
  filters with their resolved parameters and output dtypes, chunking, compression)
  and ``report`` (counts, failures with reasons, the last run);
* ``<filter>``: one ``(N, H, W)`` array per operation key (``log``, ``gradient``, …),
  chunks of ``chunk_frames`` whole frames; float32 (or float16) results, bool for
  Canny and binary masks, the input dtype for the value mask; attributes with the
  title, parameters, colormap and contrast limits;
* ``status``: uint8 ``(N,)``, 0 to do, 1 done, 2 failed; one chunk per task block,
  with the ``file_names`` and absolute ``source_paths`` as attributes;
* ``fingerprint``: uint64 ``(N, 3)``, each done frame's input size, mtime and
  content hash, chunked like ``status``.

Every chunk carries a CRC-32C checksum. A run (:func:`napari_xray.batch.run.run_batch`)
lists the inputs and options (:mod:`~napari_xray.batch.inputs`), takes the store's
lock (:mod:`~napari_xray.batch.lock`), creates the store or reopens a compatible one
(:mod:`~napari_xray.batch.store`, :mod:`~napari_xray.batch.folders`), sets frames
whose input changed back to "to do" (:mod:`~napari_xray.batch.integrity`) and maps
one Dask task over each block of frames still to do
(:mod:`~napari_xray.batch.worker`). A task reads, filters and writes whole chunks
(Zarr writes each chunk atomically) and marks them done in ``status`` only after
their results and fingerprints are stored, so running the same command again
resumes a killed or interrupted run; a store made from other inputs or options is
refused. The report and the summary are :mod:`~napari_xray.batch.report`'s.
"""
