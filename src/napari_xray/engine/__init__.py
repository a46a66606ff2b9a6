"""The engine: the tutorial's filters and masks, their one description, and statistics.

Pure functions, NumPy in and NumPy out (SciPy and OpenCV inside); nothing here
imports napari, Qt, Dask or any other part of napari-xray.
"""
