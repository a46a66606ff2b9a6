"""Live outputs: :class:`SyncedOutputs` keeps the output layers of one input layer in
step with the engine, the frame on screen first.

On each update it computes the frame on screen at once and shows it (reusing the
output layers' buffers); once the parameters have rested
(:class:`~napari_xray.plugin.rest.RestClock`) it renames the layers after the new
parameters and computes the other frames of a stack in a worker, which stores
each frame in the buffers. Moving the frame slider to a frame not computed yet
computes that frame at once. Each update has a generation number; results of an
older generation are dropped. Workers never touch napari: only the GUI thread
adds, changes or removes layers, and the input data is only read.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from napari_xray.plugin.canvas import remove_layers_later
from napari_xray.plugin.layers import (
    displayed_frame,
    input_problem,
    layer_alive,
    same_layer,
    unwrap,
)
from napari_xray.plugin.rest import RestClock
from napari_xray.plugin.result_layers import OutputSpec, ResultLayers, value_range

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["SyncedOutputs"]


def _compute_frames(data, order: Sequence[int], jobs: Sequence[tuple]):
    """Yield ``(frame index, [result per job])`` for each frame in ``order``.

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


def _store_frames(frames, store):
    """Worker body: ``store(index, results)`` each frame of ``frames`` (from
    :func:`_compute_frames`), yield ``(index, what store returned)``.

    Storing here, off the GUI thread, spares it the copies (and the first touch of
    fresh memory, slow in a virtual machine).
    """
    for index, results in frames:
        if isinstance(results, Exception):
            yield index, results
            return
        yield index, store(index, results)


class SyncedOutputs:
    """Keeps the output layers of one input layer equal to engine results, frame on screen first.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layers it reads and writes (held weakly).
    description : str
        Shown with napari's progress bar while the stack is computed.
    remove_orphans : bool
        Remove the output layers when the input layer is removed before they
        are complete (default); with False they stay.

    Signals
    -------
    finished(int)
        A generation's result is complete (every frame computed).
    status(str)
        A sentence for a status line (progress, errors).
    """

    finished = Signal(int)
    status = Signal(str)

    def __init__(
        self,
        viewer: napari.Viewer,
        *,
        description: str = "napari-xray",
        remove_orphans: bool = True,
    ) -> None:
        viewer = unwrap(viewer)
        self._viewer_ref = weakref.ref(viewer)
        self.description = description
        self.remove_orphans = remove_orphans
        self.input_layer: Layer | None = None
        self.generation = 0
        self.completed_generation = 0
        self.preview_seconds = 0.0
        self._results: list[ResultLayers] = []
        self._computed: np.ndarray | None = None  # per frame of a stack: computed yet?
        self._worker = None
        # Guards the buffers and ``_computed`` against the worker, which stores frames.
        self._lock = threading.Lock()
        self._rest: dict | None = None  # what waits for the parameters to rest
        self._clock = RestClock(viewer, self._after_rest)
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
        keep_layers: bool = False,
        create_layers: bool = True,
        hold_rest: bool = False,
    ) -> list[list[Layer]]:
        """Show ``specs`` applied to ``input_layer``; returns the output layers per spec.

        The frame on screen is computed and shown before this returns; with
        ``wait=False`` the other frames follow from a worker (see
        :attr:`busy`, :attr:`finished`), with ``wait=True`` they are computed
        here (the engine runs frames in parallel threads) and the result is
        complete on return. Output layers of an earlier update with the same
        input (with ``keep_layers``, of any input) are reused (their buffer is
        written in place) when the layer type still fits; a result that
        changes type (Image ↔ Labels) replaces its layer at the same position.
        With ``create_layers=False`` missing layers are not added here but by
        :meth:`add_layer` (the entries are ``None`` until then). With
        ``hold_rest`` the renaming and the other frames wait for :meth:`settle`.

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
        input_layer = unwrap(input_layer)
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
        reuse = keep_layers or same_layer(input_layer, self.input_layer)
        previous = self._results if reuse else []
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
            result.show_preview(
                self.viewer, input_layer, preview, index, renames, create=create_layers
            )
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
            self._schedule_rest(generation, data, renames, start=not hold_rest)
        return [list(result.layers) for result in results]

    def add_layer(
        self,
        position: int,
        view: int = 0,
        *,
        at: int | None = None,
        visible: bool = True,
        name_overlay: bool = False,
    ) -> Layer | None:
        """Add the missing layer ``view`` of spec ``position`` (as the result is now); returns it.

        It goes on top of the layer list, or to index ``at``. Returns the existing
        layer when it is there, ``None`` when the input is gone.
        """
        result = self._results[position]
        layer = result.layers[view]
        if layer_alive(self.viewer, layer):
            return layer
        if self._closed or not layer_alive(self.viewer, self.input_layer):
            return None
        return result.add_layer(
            self.viewer, self.input_layer, view, position=at, visible=visible,
            name_overlay=name_overlay,
        )

    def layer_at(self, position: int, view: int = 0) -> Layer | None:
        """Output layer ``view`` of spec ``position`` if it is in the viewer, else ``None``."""
        if position >= len(self._results):
            return None
        layers = self._results[position].layers
        layer = layers[view] if view < len(layers) else None
        return layer if layer_alive(self.viewer, layer) else None

    def set_colormap(self, colormap: str, position: int = 0, view: int = 0) -> None:
        """Recolour one output layer (``view`` of spec ``position``) without recomputing it."""
        if position < len(self._results):
            self._results[position].recolour(self.viewer, colormap, view)

    def cancel(self) -> None:
        """Drop the results of the running update: bump the generation, ask the worker to quit."""
        with self._lock:  # from here on, the worker stores nothing more
            self.generation += 1
        self._rest = None
        self._clock.stop()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.quit()

    def settle(self) -> None:
        """Do now what waits for the parameters to rest: rename, start the other frames."""
        self._clock.stop()
        self._after_rest()

    def close(self) -> None:
        """Cancel work and stop following the viewer; the output layers stay."""
        if self._closed:
            return
        if self._rest is not None:
            self._rename(self._rest["renames"])  # the names of what the layers show
        self.cancel()
        self._closed = True
        self._clock.close()
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

    def _schedule_rest(self, generation: int, data, renames: list, *, start: bool = True) -> None:
        """Once the parameters have rested (:class:`~napari_xray.plugin.rest.RestClock`):
        rename, then the other frames. With ``start=False`` that waits for :meth:`settle`."""
        if self._closed:
            return
        self._rest = {"generation": generation, "data": data, "renames": renames}
        self._clock.start(run=start)

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
            _store_frames,
            _compute_frames(data, order, jobs),
            self._frame_store(generation),
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

    def _frame_store(self, generation: int):
        """What the worker calls (in its thread) to store frame ``index`` of ``generation``.

        Returns the value range of each result, or ``None`` when the frame was not
        stored (a newer update, or computed already when the slider moved there).
        """
        results = list(self._results)

        def store(index: int, values: list):
            extremes = [value_range(value) for value in values]
            with self._lock:
                computed = self._computed
                if generation != self.generation or computed is None or computed[index]:
                    return None
                for result, value in zip(results, values, strict=True):
                    result.store(index, value)
                computed[index] = True
            return extremes

        return store

    def _on_frame(self, generation: int, payload) -> None:
        if (
            self._closed
            or generation != self.generation
            or self._computed is None
            or self.viewer is None
        ):
            return  # a newer update (or removal/close) made this result stale
        index, extremes = payload
        if isinstance(extremes, Exception):
            self.cancel()
            self.status.emit(f"Frame {index + 1} could not be filtered: {extremes}")
            return
        if extremes is None:
            return  # computed already when the slider moved there
        shown = displayed_frame(self.viewer, self.input_layer) == index
        for result, span in zip(self._results, extremes, strict=True):
            result.stored_frame(self.viewer, span, shown=shown)

    def _write_frame(self, index: int, values) -> None:
        """Store frame ``index`` computed in the GUI thread, and show it."""
        shown = displayed_frame(self.viewer, self.input_layer) == index
        with self._lock:
            for result, value in zip(self._results, values, strict=True):
                result.store(index, value)
            self._computed[index] = True
        for result, value in zip(self._results, values, strict=True):
            result.stored_frame(self.viewer, value_range(value), shown=shown)

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
        if same_layer(layer, self.input_layer):
            unfinished = self.generation > 0 and not self.complete
            self.cancel()
            self.input_layer = None
            if not unfinished or not self.remove_orphans:
                return
            # Half-computed outputs of a vanished input would be orphans: remove them,
            # after napari's own removal loop has finished.
            remove_layers_later(self.viewer, self.layers())
            self.status.emit(
                f"Input layer '{layer.name}' was removed while its frames were being "
                "computed; the unfinished result was removed too."
            )
            return
        forgotten = [result.forget(layer) for result in self._results]
        if any(forgotten) and not self.layers() and self.busy:
            self.cancel()

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
