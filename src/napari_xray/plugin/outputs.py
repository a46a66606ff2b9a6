"""Live results: keep output layers equal to engine results of one input layer.

:class:`LiveFilter` is the one piece of machinery behind every napari-xray widget
and the console functions. On each update it

1. computes the frame on screen synchronously (a few ms per 1024² frame) and
   shows it at once, reusing the output layer's own buffer (``refresh()``
   instead of a data swap);
2. once the parameters have rested for :data:`STACK_DELAY_MS` (a dragged slider
   only recomputes the frame on screen), renames the output layers after the
   new parameters (their metadata changes at once) and computes the other
   frames of a stack in a ``napari.qt.threading`` worker, one frame per yield
   (so it can be aborted between frames, and napari's progress bar advances),
   writing each yielded frame from the GUI thread. Moving the frame slider to a
   frame not computed yet computes that frame at once.

A generation counter makes every result of an older update drop: a newer
update, the removal of the input layer or of all outputs, or closing the viewer
bumps the generation and asks the worker to quit. Workers never touch napari;
only the GUI thread adds, changes or removes layers, and it never adds a layer
after the update call returned, so a deleted input leaves no orphan layer.
The input data is only read.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from napari_xray.plugin.layers import (
    METADATA_KEY,
    display_limits,
    displayed_frame,
    input_problem,
    labels_colormap,
    layer_alive,
    layer_kind,
    napari_colormap,
    output_kwargs,
    output_metadata,
    output_name,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

    from napari_xray.engine.operations import Operation

__all__ = ["STACK_DELAY_MS", "LiveFilter", "OutputSpec"]

#: Pause (ms) after a change before the rest of a stack is computed and the output
#: layers are renamed: while a slider is dragged only the frame on screen is
#: recomputed (renaming repaints the layer list and refreshes every layer picker),
#: and the rest follows once it rests, after the new frame has been drawn.
STACK_DELAY_MS = 40


@dataclass(frozen=True)
class OutputSpec:
    """One operation to show: its parameters, and one layer per colormap.

    ``names`` optionally fixes each layer's name (the comparison uses panel
    titles); by default a layer is named from input, operation and parameters.
    """

    operation: Operation
    params: Mapping[str, Any] = field(default_factory=dict)
    colormaps: tuple[str, ...] = ()
    names: tuple[str | None, ...] = ()

    def colormap_list(self) -> tuple[str, ...]:
        """The colormap of each output layer (the operation's default if none given)."""
        return self.colormaps or (self.operation.colormaps[0],)


@dataclass
class _Output:
    spec: OutputSpec
    layers: list  # one napari layer (or None) per colormap
    buffer: np.ndarray | None = None
    kind: str = "image"
    low: float = np.inf
    high: float = -np.inf

    def track(self, result: np.ndarray) -> None:
        """Widen the running min/max of an image result by ``result``."""
        if self.kind == "image" and result.size:
            self.low = min(self.low, float(result.min()))
            self.high = max(self.high, float(result.max()))


def _is_kind(layer, kind: str) -> bool:
    """True when ``layer`` is a napari layer of ``kind`` ("image" or "labels")."""
    from napari.layers import Image, Labels

    return isinstance(layer, Labels if kind == "labels" else Image)


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


class LiveFilter:
    """Keeps output layers equal to engine results of one input layer, frame on screen first.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layers it reads and writes.
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
        # A weak reference: per-viewer registries may hold live filters without
        # keeping a closed viewer (and its Qt window) alive.
        self._viewer_ref = weakref.ref(viewer)
        self.description = description
        self.input_layer: Layer | None = None
        self.generation = 0
        self.completed_generation = 0
        self.preview_seconds = 0.0
        self._outputs: list[_Output] = []
        self._valid: np.ndarray | None = None
        self._worker = None
        self._rest: dict | None = None  # what waits for the parameters to rest
        self._rest_timer = None
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
        return [
            layer
            for output in self._outputs
            for layer in output.layers
            if layer_alive(self.viewer, layer)
        ]

    def owns(self, layer: Layer) -> bool:
        """True when ``layer`` is one of this filter's output layers."""
        return any(layer is candidate for output in self._outputs for candidate in output.layers)

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
        input are reused (their buffer is written in place) when the result
        kind still fits; a result that changes kind (Image ↔ Labels) replaces
        its layer at the same position.

        Raises
        ------
        ValueError
            ``input_layer`` cannot be filtered (the message says why), or the
            engine rejected the parameters. Nothing was changed in that case.
        RuntimeError
            The filter was closed.
        """
        if self._closed or self.viewer is None:
            raise RuntimeError("this live filter was closed; create a new one")
        problem = input_problem(input_layer)
        if problem:
            raise ValueError(problem)
        started = time.perf_counter()
        data = input_layer.data
        index = displayed_frame(self.viewer, input_layer)
        frame = np.asarray(data if index is None else data[index])
        # Compute first: a ValueError here leaves layers and workers untouched.
        results = [spec.operation(frame, **spec.params) for spec in specs]

        self.cancel()
        generation = self.generation
        previous = self._outputs if input_layer is self.input_layer else []
        outputs = []
        for position, spec in enumerate(specs):
            count = len(spec.colormap_list())
            old = previous[position] if position < len(previous) else None
            layers = list(old.layers[:count]) if old is not None else []
            layers += [None] * (count - len(layers))
            buffer = old.buffer if old is not None else None
            kind = old.kind if old is not None else "image"
            outputs.append(_Output(spec=spec, layers=layers, buffer=buffer, kind=kind))
        # layers of the old outputs that no spec uses any more stay as they are
        self.input_layer = input_layer
        self._outputs = outputs
        self._valid = None if index is None else np.zeros(data.shape[0], dtype=bool)

        renames: list[tuple] = []
        for output, result in zip(outputs, results, strict=True):
            self._place(output, result, index, data.shape, renames)
        if self._valid is not None:
            self._valid[index] = True
        self.preview_seconds = time.perf_counter() - started
        self._started = started

        if self._valid is None or self._valid.all():
            self._complete(generation, announce=wait)
        elif wait:
            rest = np.flatnonzero(~self._valid)
            frames = np.asarray(data[rest])
            for output in outputs:
                result = output.spec.operation(frames, **output.spec.params)
                output.buffer[rest] = result
                output.track(result)
            self._valid[:] = True
            self._complete(generation)
        if wait:
            self._rename(renames)
        else:
            self._schedule_rest(generation, data, renames)
        return [[layer for layer in output.layers] for output in outputs]

    def set_colormap(self, colormap: str, position: int = 0, view: int = 0) -> None:
        """Recolour one output layer without recomputing it."""
        if position >= len(self._outputs):
            return
        output = self._outputs[position]
        layer = output.layers[view] if view < len(output.layers) else None
        if not layer_alive(self.viewer, layer):
            return
        colormaps = list(output.spec.colormap_list())
        colormaps[view] = colormap
        output.spec = OutputSpec(
            output.spec.operation, output.spec.params, tuple(colormaps), output.spec.names
        )
        if output.kind == "labels":
            layer.colormap = labels_colormap(colormap)
        else:
            layer.colormap = napari_colormap(colormap)

    def cancel(self) -> None:
        """Drop the results of the running update: bump the generation, ask the worker to quit."""
        self.generation += 1
        self._rest = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.quit()

    def close(self) -> None:
        """Cancel work and stop following the viewer; the output layers stay."""
        if self._closed:
            return
        if self._rest is not None:
            self._rename(self._rest["renames"])  # the names of what the layers show
        self.cancel()
        self._closed = True
        timer, self._rest_timer = self._rest_timer, None
        if timer is not None:
            try:
                timer.stop()
            except RuntimeError:  # Qt already deleted it (application shutting down)
                pass
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

    # ------------------------------------------------------------------ internals

    def _place(
        self, output: _Output, result: np.ndarray, index: int | None, shape, renames: list
    ) -> None:
        """Write the preview ``result`` into ``output``'s buffer and show it in its layers.

        New names of existing layers are appended to ``renames`` (applied later).
        """
        kind, dtype = layer_kind(result)
        buffer = output.buffer
        if (
            buffer is None
            or buffer.shape != tuple(shape)
            or buffer.dtype != dtype
            or output.kind != kind  # e.g. mask keep → binary: no stale values as labels
        ):
            buffer = np.zeros(shape, dtype=dtype)
        output.kind = kind
        if index is None:
            buffer[...] = result
        else:
            buffer[index] = result
        output.buffer = buffer
        output.low, output.high = np.inf, -np.inf
        output.track(result)
        limits = span = None
        if kind == "image":
            limits, span = display_limits(result, output.low, output.high)
        spec = output.spec
        metadata = output_metadata(spec.operation, spec.params, self.input_layer, complete=False)
        for view, colormap in enumerate(spec.colormap_list()):
            name = spec.names[view] if view < len(spec.names) and spec.names[view] else None
            name = name or output_name(self.input_layer, spec.operation, spec.params)
            layer = output.layers[view]
            if layer_alive(self.viewer, layer) and _is_kind(layer, kind):
                self._update_layer(layer, buffer, metadata, limits, span)
                if layer.name != name:
                    renames.append((layer, name))
                continue
            position = None
            if layer_alive(self.viewer, layer):  # wrong kind: replace it where it was
                position = self.viewer.layers.index(layer)
                output.layers[view] = None
                self.viewer.layers.remove(layer)
            kwargs = output_kwargs(
                kind,
                self.input_layer,
                name=name,
                colormap=colormap,
                metadata=metadata,
                contrast_limits=limits,
            )
            from napari.layers import Layer

            new_layer = Layer.create(buffer, kwargs, kind)
            if span is not None:
                new_layer.contrast_limits_range = span
            if position is None:
                self.viewer.layers.append(new_layer)
            else:
                self.viewer.layers.insert(position, new_layer)
            output.layers[view] = new_layer

    def _update_layer(self, layer, buffer, metadata, limits, span) -> None:
        """Point an existing output layer at the new preview (one repaint)."""
        layer.metadata[METADATA_KEY] = dict(metadata)
        source = self.input_layer
        if not np.array_equal(layer.scale, source.scale):
            layer.scale = source.scale
        if not np.array_equal(layer.translate, source.translate):
            layer.translate = source.translate
        if limits is not None:
            if list(layer.contrast_limits_range) != list(span):
                layer.contrast_limits_range = span
            if list(layer.contrast_limits) != list(limits):
                layer.contrast_limits = limits
        if layer.data is buffer:
            layer.refresh()
        else:
            layer.data = buffer

    def _rename(self, renames: list) -> None:
        for layer, name in renames:
            if layer_alive(self.viewer, layer) and layer.name != name:
                layer.name = name

    def _schedule_rest(self, generation: int, data, renames: list) -> None:
        """After :data:`STACK_DELAY_MS` without a newer change: rename, then the other frames."""
        if self._closed:
            return
        if self._rest_timer is None:
            from qtpy.QtCore import QTimer

            self._rest_timer = QTimer()
            self._rest_timer.setSingleShot(True)
            self._rest_timer.setInterval(STACK_DELAY_MS)
            self._rest_timer.timeout.connect(self._after_rest)
        self._rest = {"generation": generation, "data": data, "renames": renames}
        self._rest_timer.start()

    def settle(self) -> None:
        """Do now what waits for the parameters to rest: rename, start the other frames."""
        if self._rest_timer is not None:
            try:
                self._rest_timer.stop()
            except RuntimeError:  # pragma: no cover - Qt already deleted it
                pass
        self._after_rest()

    def _after_rest(self) -> None:
        rest, self._rest = self._rest, None
        if rest is None or self._closed or rest["generation"] != self.generation:
            return
        self._rename(rest["renames"])
        if self.complete:
            self._announce()
            return
        if self._valid is None or not layer_alive(self.viewer, self.input_layer):
            return
        generation, data = rest["generation"], rest["data"]
        start = displayed_frame(self.viewer, self.input_layer) or 0
        count = len(self._valid)
        order = [i % count for i in range(start, start + count) if not self._valid[i % count]]
        if not order:
            self._complete(generation)
            return
        self._start_worker(generation, data, order)

    def _start_worker(self, generation: int, data, order: list[int]) -> None:
        from napari.qt.threading import create_worker

        count = data.shape[0]
        jobs = [(output.spec.operation, dict(output.spec.params)) for output in self._outputs]
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
        from napari_xray.plugin.threads import start_worker

        self.status.emit(
            f"Frame on screen shown in {self.preview_seconds * 1000:.0f} ms; "
            f"computing the other {len(order)} of {count} frames…"
        )
        start_worker(worker)

    def _on_frame(self, generation: int, payload) -> None:
        if (
            self._closed
            or generation != self.generation
            or self._valid is None
            or self.viewer is None
        ):
            return  # a newer update (or removal/close) made this result stale
        index, results = payload
        if isinstance(results, Exception):
            self.cancel()
            self.status.emit(f"Frame {index + 1} could not be filtered: {results}")
            return
        if self._valid[index]:
            return  # already computed when the slider moved there
        self._write_frame(index, results)

    def _write_frame(self, index: int, results) -> None:
        shown = displayed_frame(self.viewer, self.input_layer) == index
        for output, result in zip(self._outputs, results, strict=True):
            output.buffer[index] = result
            output.track(result)
            if shown:
                for layer in output.layers:
                    if layer_alive(self.viewer, layer):
                        layer.refresh()
        self._valid[index] = True

    def _on_returned(self, generation: int) -> None:
        if self._closed or generation != self.generation:
            return
        if self._valid is not None and self._valid.all():
            self._complete(generation)

    def _on_worker_finished(self, worker) -> None:
        if self._worker is worker:
            self._worker = None

    def _complete(self, generation: int, *, announce: bool = True) -> None:
        """Final contrast limits over the whole result; mark the metadata complete."""
        for output in self._outputs:
            limits = span = None
            if output.kind == "image" and output.buffer is not None:
                limits, span = display_limits(output.buffer, output.low, output.high)
            for layer in output.layers:
                if not layer_alive(self.viewer, layer):
                    continue
                entry = layer.metadata.get(METADATA_KEY)
                if isinstance(entry, dict):
                    entry["complete"] = True
                if limits is not None:
                    if list(layer.contrast_limits_range) != list(span):
                        layer.contrast_limits_range = span
                    if list(layer.contrast_limits) != list(limits):
                        layer.contrast_limits = limits
        self.completed_generation = generation
        viewer = self.viewer
        if viewer is not None:
            from napari_xray.plugin.hub import viewer_hub

            viewer_hub(viewer).outputs_completed.emit(self.layers())
        self._elapsed = time.perf_counter() - self._started
        if announce:
            self._announce()
        self.finished.emit(generation)

    def _announce(self) -> None:
        frames = 1 if self._valid is None else len(self._valid)
        names = ", ".join(f"'{layer.name}'" for layer in self.layers()[:1])
        self.status.emit(
            f"Done: {frames} frame{'s' if frames > 1 else ''} in {self._elapsed * 1000:.0f} ms"
            + (f" → {names}." if names else ".")
        )

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
        touched = False
        for output in self._outputs:
            for view, candidate in enumerate(output.layers):
                if candidate is layer:
                    output.layers[view] = None
                    touched = True
        if touched and not self.layers() and self.busy:
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
        if self._closed or not self.busy or self._valid is None:
            return
        if not layer_alive(self.viewer, self.input_layer):
            return
        index = displayed_frame(self.viewer, self.input_layer)
        if index is None or index >= len(self._valid) or self._valid[index]:
            return
        frame = np.asarray(self.input_layer.data[index])
        try:
            results = [
                output.spec.operation(frame, **output.spec.params) for output in self._outputs
            ]
        except (ValueError, TypeError) as error:
            self.status.emit(f"Frame {index + 1} could not be filtered: {error}")
            return
        self._write_frame(index, results)
