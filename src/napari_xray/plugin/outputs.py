"""Live outputs: :class:`SyncedOutputs` keeps the output layers of one input layer in
step with the engine, the frame on screen first.

On each update it computes the frame on screen at once and shows it (reusing the
output layers' buffers), and once the parameters have rested for
:data:`STACK_DELAY_MS` renames the layers after the new parameters and computes
the other frames of a stack in a worker, one frame per yield. Moving the frame
slider to a frame not computed yet computes that frame at once. Each update has
a generation number; results of an older generation are dropped. Workers never
touch napari: only the GUI thread adds, changes or removes layers, and the
input data is only read.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from napari_xray.plugin.layers import displayed_frame, input_problem, layer_alive
from napari_xray.plugin.result_layers import OutputSpec, ResultLayers

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["STACK_DELAY_MS", "SyncedOutputs"]

#: Pause (ms) after a change before the rest of a stack is computed and the output
#: layers are renamed: while a slider is dragged only the frame on screen is
#: recomputed (renaming repaints the layer list and refreshes every layer picker),
#: and the rest follows once it rests, after the new frame has been drawn.
STACK_DELAY_MS = 40


def _compute_frames(data, order: Sequence[int], jobs: Sequence[tuple]):
    """Worker body: yield ``(frame index, [result per job])`` for each frame in ``order``.

    Runs in a worker thread and touches no napari object. An engine error is
    yielded as ``(index, exception)`` and ends the work.
    """
    for index in order:
        frame = np.asarray(data[index])
        try:
            results = [operation(frame, **params) for operation, params in jobs]
        except (ValueError, TypeError) as error:
            yield index, error
            return
        yield index, results


class SyncedOutputs:
    """Keeps the output layers of one input layer equal to engine results, frame on screen first.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layers it reads and writes (held weakly).
    description : str
        Shown with napari's progress bar while the stack is computed.

    Signals
    -------
    finished(int)
        A generation's result is complete (every frame computed).
    status(str)
        A sentence for a status line (progress, errors).
    """

    finished = Signal(int)
    status = Signal(str)

    def __init__(self, viewer: napari.Viewer, *, description: str = "napari-xray") -> None:
        self._viewer_ref = weakref.ref(viewer)
        self.description = description
        self.input_layer: Layer | None = None
        self.generation = 0
        self.completed_generation = 0
        self.preview_seconds = 0.0
        self._results: list[ResultLayers] = []
        self._computed: np.ndarray | None = None  # per frame of a stack: computed yet?
        self._worker = None
        self._rest: dict | None = None  # what waits for the parameters to rest
        self._after_rest_debounced = None
        self._started = 0.0
        self._elapsed = 0.0
        self._closed = False
        viewer.layers.events.removed.connect(self._on_layer_removed)
        viewer.dims.events.current_step.connect(self._on_current_step)

    # ------------------------------------------------------------------ state

    @property
    def viewer(self) -> napari.Viewer | None:
        """The viewer, or ``None`` once it has been garbage-collected."""
        return self._viewer_ref()

    @property
    def busy(self) -> bool:
        """True while the latest update is unfinished (frames or layer names pending)."""
        return self._rest is not None or (
            self.completed_generation != self.generation and self._worker is not None
        )

    @property
    def complete(self) -> bool:
        """True when the latest update's result is complete."""
        return self.completed_generation == self.generation and self.generation > 0

    def layers(self) -> list[Layer]:
        """The output layers still in the viewer, in spec order."""
        return [layer for result in self._results for layer in result.alive(self.viewer)]

    def owns(self, layer: Layer) -> bool:
        """True when ``layer`` is one of these output layers."""
        return any(result.owns(layer) for result in self._results)

    # ------------------------------------------------------------------ updates

    def update(
        self,
        input_layer: Layer,
        specs: Sequence[OutputSpec],
        *,
        wait: bool = False,
    ) -> list[list[Layer]]:
        """Show ``specs`` applied to ``input_layer``; returns the output layers per spec.

        The frame on screen is computed and shown before this returns; with
        ``wait=False`` the other frames follow from a worker (see
        :attr:`busy`, :attr:`finished`), with ``wait=True`` they are computed
        here (the engine runs frames in parallel threads) and the result is
        complete on return. Output layers of an earlier update with the same
        input are reused (their buffer is written in place) when the layer
        type still fits; a result that changes type (Image ↔ Labels) replaces
        its layer at the same position.

        Raises
        ------
        ValueError
            ``input_layer`` cannot be filtered (the message says why), or the
            engine rejected the parameters. Nothing was changed in that case.
        RuntimeError
            These outputs were closed.
        """
        if self._closed or self.viewer is None:
            raise RuntimeError("these live outputs were closed; create new ones")
        problem = input_problem(input_layer)
        if problem:
            raise ValueError(problem)
        started = time.perf_counter()
        data = input_layer.data
        index = displayed_frame(self.viewer, input_layer)
        frame = np.asarray(data if index is None else data[index])
        # Compute first: a ValueError here leaves layers and workers untouched.
        previews = [spec.operation(frame, **spec.params) for spec in specs]

        self.cancel()
        generation = self.generation
        previous = self._results if input_layer is self.input_layer else []
        results = []
        for position, spec in enumerate(specs):
            count = len(spec.colormap_list())
            old = previous[position] if position < len(previous) else None
            if old is None:
                results.append(ResultLayers(spec, [None] * count))
                continue
            layers = list(old.layers[:count])
            layers += [None] * (count - len(layers))
            results.append(ResultLayers(spec, layers, old.buffer, old.layer_type))
        # layers of the old results that no spec uses any more stay as they are
        self.input_layer = input_layer
        self._results = results
        self._computed = None if index is None else np.zeros(data.shape[0], dtype=bool)

        renames: list[tuple] = []
        for result, preview in zip(results, previews, strict=True):
            result.show_preview(self.viewer, input_layer, preview, index, renames)
        if self._computed is not None:
            self._computed[index] = True
        self.preview_seconds = time.perf_counter() - started
        self._started = started

        if self._computed is None or self._computed.all():
            self._complete(generation, announce=wait)
        elif wait:
            rest = np.flatnonzero(~self._computed)
            frames = np.asarray(data[rest])
            for result in results:
                values = result.spec.operation(frames, **result.spec.params)
                result.buffer[rest] = values
                result.track(values)
            self._computed[:] = True
            self._complete(generation)
        if wait:
            self._rename(renames)
        else:
            self._schedule_rest(generation, data, renames)
        return [list(result.layers) for result in results]

    def set_colormap(self, colormap: str, position: int = 0, view: int = 0) -> None:
        """Recolour one output layer (``view`` of spec ``position``) without recomputing it."""
        if position < len(self._results):
            self._results[position].recolour(self.viewer, colormap, view)

    def cancel(self) -> None:
        """Drop the results of the running update: bump the generation, ask the worker to quit."""
        self.generation += 1
        self._rest = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.quit()

    def settle(self) -> None:
        """Do now what waits for the parameters to rest: rename, start the other frames."""
        self._cancel_debounced()
        self._after_rest()

    def close(self) -> None:
        """Cancel work and stop following the viewer; the output layers stay."""
        if self._closed:
            return
        if self._rest is not None:
            self._rename(self._rest["renames"])  # the names of what the layers show
        self.cancel()
        self._closed = True
        self._cancel_debounced()
        self._after_rest_debounced = None
        viewer = self.viewer
        if viewer is None:
            return
        for emitter, callback in (
            (viewer.layers.events.removed, self._on_layer_removed),
            (viewer.dims.events.current_step, self._on_current_step),
        ):
            try:
                emitter.disconnect(callback)
            except (RuntimeError, ValueError, TypeError):  # pragma: no cover - already gone
                pass

    # ------------------------------------------------------------------ the rest of a stack

    def _rename(self, renames: list) -> None:
        for layer, name in renames:
            if layer_alive(self.viewer, layer) and layer.name != name:
                layer.name = name

    def _schedule_rest(self, generation: int, data, renames: list) -> None:
        """After :data:`STACK_DELAY_MS` without a newer change: rename, then the other frames."""
        if self._closed:
            return
        if self._after_rest_debounced is None:
            from superqt.utils import qdebounced

            self._after_rest_debounced = qdebounced(self._after_rest, timeout=STACK_DELAY_MS)
        self._rest = {"generation": generation, "data": data, "renames": renames}
        self._after_rest_debounced()

    def _cancel_debounced(self) -> None:
        debounced = self._after_rest_debounced
        if debounced is not None:
            try:
                debounced.cancel()
            except RuntimeError:  # pragma: no cover - Qt already deleted it (shutdown)
                pass

    def _after_rest(self) -> None:
        rest, self._rest = self._rest, None
        if rest is None or self._closed or rest["generation"] != self.generation:
            return
        self._rename(rest["renames"])
        if self.complete:
            self._announce()
            return
        if self._computed is None or not layer_alive(self.viewer, self.input_layer):
            return
        generation, data = rest["generation"], rest["data"]
        start = displayed_frame(self.viewer, self.input_layer) or 0
        count = len(self._computed)
        order = [i % count for i in range(start, start + count) if not self._computed[i % count]]
        if not order:
            self._complete(generation)
            return
        self._start_worker(generation, data, order)

    def _start_worker(self, generation: int, data, order: list[int]) -> None:
        from napari.qt.threading import create_worker

        from napari_xray.plugin.threads import start_worker

        count = data.shape[0]
        jobs = [(result.spec.operation, dict(result.spec.params)) for result in self._results]
        worker = create_worker(
            _compute_frames,
            data,
            order,
            jobs,
            _start_thread=False,
            _progress={"total": len(order), "desc": self.description},
        )
        worker.yielded.connect(lambda payload: self._on_frame(generation, payload))
        worker.returned.connect(lambda _=None: self._on_returned(generation))
        worker.finished.connect(lambda: self._on_worker_finished(worker))
        self._worker = worker
        self.status.emit(
            f"Frame on screen shown in {self.preview_seconds * 1000:.0f} ms; "
            f"computing the other {len(order)} of {count} frames…"
        )
        start_worker(worker)

    def _on_frame(self, generation: int, payload) -> None:
        if (
            self._closed
            or generation != self.generation
            or self._computed is None
            or self.viewer is None
        ):
            return  # a newer update (or removal/close) made this result stale
        index, values = payload
        if isinstance(values, Exception):
            self.cancel()
            self.status.emit(f"Frame {index + 1} could not be filtered: {values}")
            return
        if self._computed[index]:
            return  # already computed when the slider moved there
        self._write_frame(index, values)

    def _write_frame(self, index: int, values) -> None:
        shown = displayed_frame(self.viewer, self.input_layer) == index
        for result, value in zip(self._results, values, strict=True):
            result.write_frame(self.viewer, index, value, shown=shown)
        self._computed[index] = True

    def _on_returned(self, generation: int) -> None:
        if self._closed or generation != self.generation:
            return
        if self._computed is not None and self._computed.all():
            self._complete(generation)

    def _on_worker_finished(self, worker) -> None:
        if self._worker is worker:
            self._worker = None

    def _complete(self, generation: int, *, announce: bool = True) -> None:
        """Final contrast limits over the whole result; mark the metadata complete."""
        viewer = self.viewer
        for result in self._results:
            result.finish(viewer)
        self.completed_generation = generation
        if viewer is not None:
            from napari_xray.plugin.hub import viewer_hub

            viewer_hub(viewer).outputs_completed.emit(self.layers())
        self._elapsed = time.perf_counter() - self._started
        if announce:
            self._announce()
        self.finished.emit(generation)

    def _announce(self) -> None:
        frames = 1 if self._computed is None else len(self._computed)
        names = ", ".join(f"'{layer.name}'" for layer in self.layers()[:1])
        self.status.emit(
            f"Done: {frames} frame{'s' if frames > 1 else ''} in {self._elapsed * 1000:.0f} ms"
            + (f" → {names}." if names else ".")
        )

    # ------------------------------------------------------------------ viewer events

    def _on_layer_removed(self, event) -> None:
        layer = event.value
        if layer is self.input_layer:
            unfinished = self.generation > 0 and not self.complete
            self.cancel()
            self.input_layer = None
            if not unfinished:
                return
            # Half-computed outputs of a vanished input would be orphans: remove them,
            # after napari's own removal loop has finished.
            self._remove_later(self.layers())
            self.status.emit(
                f"Input layer '{layer.name}' was removed while its frames were being "
                "computed; the unfinished result was removed too."
            )
            return
        forgotten = [result.forget(layer) for result in self._results]
        if any(forgotten) and not self.layers() and self.busy:
            self.cancel()

    def _remove_later(self, layers: list) -> None:
        """Remove ``layers`` from the viewer on the next event-loop turn (if still there)."""
        if not layers:
            return
        from qtpy.QtCore import QTimer

        viewer_ref = self._viewer_ref

        def _remove() -> None:
            viewer = viewer_ref()
            for layer in layers:
                if layer_alive(viewer, layer):
                    viewer.layers.remove(layer)

        QTimer.singleShot(0, _remove)

    def _on_current_step(self, event=None) -> None:
        """The slider moved to a frame the worker has not reached yet: compute it now."""
        if self._closed or not self.busy or self._computed is None:
            return
        if not layer_alive(self.viewer, self.input_layer):
            return
        index = displayed_frame(self.viewer, self.input_layer)
        if index is None or index >= len(self._computed) or self._computed[index]:
            return
        frame = np.asarray(self.input_layer.data[index])
        try:
            values = [
                result.spec.operation(frame, **result.spec.params) for result in self._results
            ]
        except (ValueError, TypeError) as error:
            self.status.emit(f"Frame {index + 1} could not be filtered: {error}")
            return
        self._write_frame(index, values)
