"""The engine: the tutorial's filters and masks, their one description, statistics, and
the pipeline that runs several operations on a stack in one pass.

Pure functions, NumPy in and NumPy out (SciPy and OpenCV inside); nothing here
imports napari, Qt, Dask or any other part of napari-xray.
"""
