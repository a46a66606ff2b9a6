from machine import print_fresh_memory, print_machine; print_machine(("numpy", "scipy", "napari", "vispy", "PyQt6")); print_fresh_memory()  # noqa: E702, I001, E501  # fmt: skip

# How responsive the window stays: Compare all, Restore and a 60-step σ drag in napari.
#
# Run under a (virtual) display::
#
#     xvfb-run -a .venv/bin/python benchmarks/bench_gui.py
#
# A QTimer ticking every 10 ms measures the event loop: the longest gap between two
# ticks is the longest time the window could not react (repaint, take a click).
# Baselines, measured the same way in the same run: napari's own cost of adding one
# (9, 1024, 1024) float32 layer, and of removing one. Every other stall is printed
# with its ratio to the add baseline.
#
# * **Compare all** clicks the dock's button (opened from the manifest as napari
#   does) and runs until every panel is on screen and every frame computed: the
#   first time (it makes the panel layers), then three times after a Restore (it
#   reuses them); for scale, napari's own cost of adding one more such layer to
#   the grid on screen;
# * **Restore** clicks it again;
# * **σ drag**, twice from σ = 2: the Gaussian gradient dock's σ handle dragged with
#   the mouse, 60 moves of one pixel to and fro, each queued as soon as the canvas
#   has drawn the one before. Its total time (first move to the last frame drawn)
#   is set against 60 single-frame computations with the same σ values, each
#   written into a plain layer and drawn the same way.
#
# The first Compare all also switches napari's grid on for the first time (printed
# for scale, in a new viewer, at the end) and makes the result buffers and the
# engine's frame buffers: new memory, whose first write the ``memory:`` line
# measures (slow on VMs whose host hands out pages on first touch).
#
# The real frames come from ``NAPARI_XRAY_DATA_DIR`` (default ``../shared/xray``) or
# the download cache. Figures from one run only; the machine's load average is printed.

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

#: The README's window size (the docks fit at 1,280 × 800).
WINDOW = (1280, 800)
DRAG_MOVES = 60
BASELINE_REPEATS = 5
COMPARE_REPEATS = 3
#: The drag goes to and fro over this many pixels of the σ slider (σ ≈ 2 … 3.5).
DRAG_BAND = 12


def _frames() -> np.ndarray:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "xray"
    if "NAPARI_XRAY_DATA_DIR" not in os.environ and default.is_dir():
        os.environ["NAPARI_XRAY_DATA_DIR"] = str(default)
    from napari_xray.samples import load_sample

    return load_sample("series")


class StallMeter:
    """The longest gap between the ticks of a 10 ms QTimer while something runs."""

    def __init__(self, app) -> None:
        from qtpy.QtCore import Qt, QTimer

        self.app = app
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.longest = 0.0
        self._last = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def run(self, start, done=lambda: True, settle: float = 0.5, timeout: float = 120.0):
        """Call ``start()``, run the event loop until ``done()`` and ``settle`` s more.

        Returns (longest stall, seconds until ``done()``), in seconds.
        """
        idle(self.app, 0.3)
        self.longest = 0.0
        self._last = time.perf_counter()
        self.timer.start()
        idle(self.app, 0.05)
        began = time.perf_counter()
        start()
        until(self.app, done, timeout)
        took = time.perf_counter() - began
        idle(self.app, settle)
        self.timer.stop()
        return self.longest, took


def idle(app, seconds: float) -> None:
    """Run the event loop for ``seconds``."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.002)


def until(app, condition, timeout: float = 120.0) -> None:
    """Run the event loop until ``condition()``."""
    deadline = time.perf_counter() + timeout
    while not condition():
        app.processEvents()
        time.sleep(0.001)
        if time.perf_counter() > deadline:
            raise TimeoutError("the viewer did not get there in time")


class Stepper:
    """Run ``steps`` (callables), each queued as soon as the canvas has drawn the one before."""

    def __init__(self, viewer, steps) -> None:
        from napari_xray.plugin.canvas import draw_emitter

        self.steps, self.waiting, self.done = list(steps), False, False
        self.draws = draw_emitter(viewer)
        self.draws.connect(self._on_draw, position="last")
        self.finished_at = 0.0

    def start(self) -> None:
        self._next()

    def _on_draw(self, event=None) -> None:
        if self.waiting:
            from qtpy.QtCore import QTimer

            self.waiting = False
            self.finished_at = time.perf_counter()
            QTimer.singleShot(0, self._next)

    def _next(self) -> None:
        if not self.steps:
            self.draws.disconnect(self._on_draw)
            self.done = True
            return
        self.waiting = True
        self.steps.pop(0)()


def drag_steps(slider, moves: int, band: int) -> list:
    """``moves`` one-pixel mouse moves of ``slider``'s handle, to and fro within ``band``
    pixels right of where it starts, between a press and a release."""
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QStyle, QStyleOptionSlider

    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    handle = slider.style().subControlRect(
        QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider
    )
    half = handle.width() // 2 + 2
    point, direction, points = handle.center(), 1, []
    low, high = point.x(), min(point.x() + band, slider.width() - half)
    for _ in range(moves):
        if not low <= point.x() + direction <= high:
            direction = -direction
        point = point + QPoint(direction, 0)
        points.append(point)
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    press = handle.center()
    steps = [lambda p=p: QTest.mouseMove(slider, p) for p in points]
    steps[0] = lambda p=points[0]: (QTest.mousePress(slider, left, none, press),
                                    QTest.mouseMove(slider, p))
    last = steps[-1]
    steps[-1] = lambda: (last(), QTest.mouseRelease(slider, left, none, points[-1]))
    return steps


def main() -> int:
    """Run the benchmark and print its figures; returns 0."""
    import napari
    from qtpy.QtWidgets import QApplication, QPushButton, QSlider

    from napari_xray.engine.operations import get_operation
    from napari_xray.plugin.canvas import remove_layers
    from napari_xray.plugin.hub import viewer_hub

    stack = _frames()
    viewer = napari.Viewer(show=True, title="napari-xray GUI benchmark")
    viewer.window._qt_window.resize(*WINDOW)
    app = QApplication.instance()
    meter = StallMeter(app)
    idle(app, 0.5)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"window {WINDOW[0]}×{WINDOW[1]}; frames {stack.shape} {stack.dtype}; "
          f"load average {load:.2f}")

    # ---------------------------------------------------------------- baselines
    source = viewer.add_image(stack, name="chest X-ray series")
    rng = np.random.default_rng(0)
    arrays = [rng.random(stack.shape, dtype=np.float32) for _ in range(BASELINE_REPEATS + 1)]

    def add_and_remove(data, name) -> tuple[float, float]:
        holder: list = []
        added = meter.run(lambda: holder.append(viewer.add_image(data, name=name)))[0]
        return added, meter.run(lambda: remove_layers(viewer, holder))[0]

    add_and_remove(arrays[0], "warm-up")  # napari's first float32 layer compiles its shaders
    adds, removes = zip(*(add_and_remove(data, "baseline") for data in arrays[1:]), strict=True)
    add, remove = float(np.median(adds)), float(np.median(removes))
    print(f"baseline: napari adds one (9, 1024, 1024) float32 layer: longest stall "
          f"{add * 1000:.0f} ms (median of {', '.join(f'{a * 1000:.0f}' for a in adds)})")
    print(f"baseline: napari removes one such layer: longest stall {remove * 1000:.0f} ms "
          f"(median of {', '.join(f'{r * 1000:.0f}' for r in removes)})")

    def report(what: str, stall: float, took: float) -> None:
        print(f"{what:<44} longest stall {stall * 1000:5.0f} ms = {stall / add:4.2f}× add; "
              f"done in {took:5.2f} s")

    # ---------------------------------------------------------------- compare all, restore
    _dock, compare = viewer.window.add_plugin_dock_widget("napari-xray", "Compare all")
    (button,) = [b for b in compare.native.findChildren(QPushButton) if b.text() == "Compare all"]
    idle(app, 0.5)
    hub = viewer_hub(viewer)

    def compared() -> bool:
        return hub.comparison is not None and not hub.comparison.busy

    compares, restores = [], []
    for attempt in range(1 + COMPARE_REPEATS):
        stall, took = meter.run(button.click, compared)
        what = "first: makes the 8 panel layers" if attempt == 0 else "again: reuses them"
        report(f"Compare all ({what})", stall, took)
        if attempt:
            compares.append(stall)
        stall, took = meter.run(button.click)
        report("Restore previous view", stall, took)
        restores.append(stall)
    compare_median, restore_median = float(np.median(compares)), float(np.median(restores))
    print(f"median longest stall: Compare all (reusing) {compare_median * 1000:.0f} ms = "
          f"{compare_median / add:.2f}× add; Restore {restore_median * 1000:.0f} ms = "
          f"{restore_median / add:.2f}× add")
    # For scale: napari's own cost of adding one more such layer to the grid on screen.
    stall, took = meter.run(button.click, compared)
    in_grid, _ = add_and_remove(arrays[1], "one more")
    print(f"for scale: napari adds one such layer to the comparison grid on screen: "
          f"longest stall {in_grid * 1000:.0f} ms = {in_grid / add:.2f}× add")
    meter.run(button.click)

    # ---------------------------------------------------------------- σ drag
    _dock, gradient = viewer.window.add_plugin_dock_widget(
        "napari-xray", "Gaussian gradient magnitude"
    )
    gradient.input_layer = source
    output = gradient.run(wait=True)
    idle(app, 0.5)
    control = gradient.controls["sigma"]
    native = control.slider.native
    slider = native if isinstance(native, QSlider) else native.findChild(QSlider)
    operation = get_operation("gradient")
    frame_index = viewer.dims.current_step[0]
    reference = viewer.add_image(np.array(output.data), name="reference", colormap="gray",
                                 visible=False)
    viewer.layers.selection.active = output
    renames: list[str] = []
    output.events.name.connect(lambda event: renames.append(output.name))
    ratios = []
    for round_ in (1, 2):
        control.value = 2.0  # each round from σ = 2
        until(app, lambda: not gradient.busy)
        idle(app, 0.3)
        renames.clear()
        sigmas: list[float] = []
        steps = [lambda step=step, sigmas=sigmas: (step(), sigmas.append(control.value))
                 for step in drag_steps(slider, DRAG_MOVES, DRAG_BAND)]
        drag = Stepper(viewer, steps)
        began = time.perf_counter()
        stall, _ = meter.run(drag.start, lambda drag=drag: drag.done and not gradient.busy)
        drag_seconds = drag.finished_at - began
        report(f"σ drag {round_}, {DRAG_MOVES} moves (to the last draw)", stall, drag_seconds)
        print(f"  renamed {len(renames)}× ({renames[-1] if renames else '-'}); σ "
              f"{min(sigmas):g}…{max(sigmas):g}, {len(set(sigmas))} values")
        renames.clear()

        # the reference: the same σ values, one frame computed into a plain layer, drawn
        output.visible, reference.visible = False, True
        idle(app, 0.3)

        def single(sigma: float) -> None:
            reference.data[frame_index] = operation(stack[frame_index], sigma=sigma)
            reference.refresh()

        plain = Stepper(viewer, [lambda s=s: single(s) for s in sigmas])
        began = time.perf_counter()
        stall_ref, _ = meter.run(plain.start, lambda plain=plain: plain.done)
        plain_seconds = plain.finished_at - began
        output.visible, reference.visible = True, False
        ratios.append(drag_seconds / plain_seconds)
        print(f"  reference, {DRAG_MOVES} single-frame computations + one redraw each: "
              f"{plain_seconds:.2f} s (longest stall {stall_ref * 1000:.0f} ms); the drag "
              f"took {drag_seconds / DRAG_MOVES * 1000:.0f} ms a step against "
              f"{plain_seconds / DRAG_MOVES * 1000:.0f}: {ratios[-1]:.2f}× the reference")
    print(f"σ drag against the reference: {', '.join(f'{r:.2f}×' for r in ratios)}")
    viewer.close()

    # For scale with the first Compare all: napari's own first switch to a 3 × 3 grid.
    fresh = napari.Viewer(show=True, title="napari-xray GUI benchmark: grid")
    fresh.window._qt_window.resize(*WINDOW)
    for index in range(9):
        fresh.add_image(arrays[index % len(arrays)], name=f"layer {index}")
    idle(app, 1.0)
    stall, _ = meter.run(lambda: setattr(fresh.canvas.grid, "enabled", True))
    print(f"for scale: napari switches a new viewer with nine such layers to its grid: "
          f"longest stall {stall * 1000:.0f} ms = {stall / add:.2f}× add")
    fresh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
