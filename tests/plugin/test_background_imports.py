"""Libraries napari loads on first use are imported beforehand, off the GUI thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_import_in_background_loads_the_missing_modules_in_another_thread():
    script = textwrap.dedent(
        """
        import sys, threading
        from napari_xray.plugin.threads import import_in_background

        assert "pandas" not in sys.modules
        thread = import_in_background("pandas", "sys")
        assert thread is not None and thread is not threading.current_thread()
        assert thread.daemon
        thread.join(60)
        assert "pandas" in sys.modules
        assert import_in_background("pandas", "sys") is None
        import_in_background("no_such_module_here").join(10)  # no error escapes the thread
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_compare_dock_preloads_what_the_first_panels_need(make_napari_viewer):
    from napari_xray.plugin.comparison import _PANEL_IMPORTS

    viewer = make_napari_viewer()
    viewer.window.add_plugin_dock_widget("napari-xray", "Compare all")
    # napari imports pandas for its first Labels layer (Canny, the binary mask) and
    # napari-xray needs matplotlib for nipy_spectral: both by the first click.
    import threading

    for thread in threading.enumerate():
        if thread.name == "napari-xray imports":
            thread.join(60)
    assert all(name in sys.modules for name in _PANEL_IMPORTS)
