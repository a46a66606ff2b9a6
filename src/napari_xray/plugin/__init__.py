"""The napari plugin: the only part of napari-xray that imports napari, magicgui or Qt.

``_reader``, ``_samples`` and ``_writer`` are the npe2 contributions (LayerDataTuples);
``widgets/`` holds the dock widgets; ``console`` the functions for napari's console;
the other modules turn engine results into layers and keep them up to date.
"""
