"""One operation's result on one input, and the napari layers that show it.

:class:`OutputSpec` says what to show (an operation, its parameters, one layer
per colormap); :class:`ResultLayers` holds the result buffer for the whole
input and writes it into those layers: a preview frame, further frames, the
final contrast limits and the "complete" mark. How a result is shown (layer
type, colormap, contrast limits) comes from its
:class:`~napari_xray.engine.operations.Operation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xray.plugin.canvas import remove_layers
from napari_xray.plugin.layers import (
    METADATA_KEY,
    labels_colormap,
    layer_alive,
    napari_colormap,
    output_kwargs,
    output_metadata,
    output_name,
    same_layer,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

    from napari_xray.engine.operations import Operation

__all__ = ["OutputSpec", "ResultLayers", "value_range"]


def value_range(result: np.ndarray) -> tuple[float, float] | None:
    """``(min, max)`` of a numeric result; ``None`` for a bool or empty one."""
    if result.dtype.kind == "b" or not result.size:
        return None
    return float(result.min()), float(result.max())


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
        return self.colormaps or (self.operation.default_colormap,)

    def layer_name(self, view: int, input_layer: Layer) -> str:
        """The name of output layer ``view``: the fixed name, else input, operation, parameters."""
        fixed = self.names[view] if view < len(self.names) else None
        return fixed or output_name(input_layer, self.operation, self.params)


def _is_layer_type(layer: Layer, layer_type: str) -> bool:
    """True when ``layer`` is a napari layer of ``layer_type`` ("image" or "labels")."""
    from napari.layers import Image, Labels

    return isinstance(layer, Labels if layer_type == "labels" else Image)


class ResultLayers:
    """The result of one :class:`OutputSpec` on one input, and its layers (one per colormap).

    Parameters
    ----------
    spec : OutputSpec
    layers : list
        One napari layer (or ``None`` before it exists) per colormap of ``spec``.
    buffer : numpy.ndarray, optional
        The result array of an earlier update, reused when its shape, dtype and
        layer type still fit.
    layer_type : str
        ``"image"`` or ``"labels"``: the type of ``layers``.
    """

    def __init__(
        self,
        spec: OutputSpec,
        layers: list,
        buffer: np.ndarray | None = None,
        layer_type: str = "image",
    ) -> None:
        self.spec = spec
        self.layers = layers
        self.buffer = buffer
        self.layer_type = layer_type
        self.low = np.inf
        self.high = -np.inf
        #: Contrast limits and slider range of an image result (None for labels).
        self.limits: tuple[float, float] | None = None
        self.span: tuple[float, float] | None = None
        #: True once every frame is computed (set by :meth:`finish`).
        self.complete = False

    def track(
        self, result: np.ndarray | None, extremes: tuple[float, float] | None = None
    ) -> None:
        """Widen the running min/max of an image result by ``result`` (or its ``extremes``)."""
        if self.layer_type != "image":
            return
        extremes = value_range(result) if extremes is None else extremes
        if extremes is not None:
            self.low = min(self.low, extremes[0])
            self.high = max(self.high, extremes[1])

    def alive(self, viewer: napari.Viewer) -> list[Layer]:
        """The layers still in ``viewer``, in colormap order."""
        return [layer for layer in self.layers if layer_alive(viewer, layer)]

    def owns(self, layer: Layer) -> bool:
        """True when ``layer`` is one of these layers."""
        return any(same_layer(layer, candidate) for candidate in self.layers)

    def forget(self, layer: Layer) -> bool:
        """Stop tracking ``layer`` (removed from the viewer); True if it was one of these.

        Once no layer shows the result its buffer is let go (a later update makes a new one).
        """
        found = False
        for view, candidate in enumerate(self.layers):
            if same_layer(candidate, layer):
                self.layers[view] = None
                found = True
        if found and all(candidate is None for candidate in self.layers):
            self.buffer = None
        return found

    def store(self, index: int, value: np.ndarray) -> None:
        """Write frame ``index`` of the result into the buffer (if it still has one)."""
        buffer = self.buffer
        if buffer is not None:
            buffer[index] = value

    def show_preview(
        self,
        viewer: napari.Viewer,
        input_layer: Layer,
        result: np.ndarray,
        index: int | None,
        renames: list,
        *,
        create: bool = True,
    ) -> None:
        """Start a new result from the preview ``result`` of frame ``index`` and show it.

        The buffer (shaped like the input) is reused when it fits, else made
        anew; existing layers are pointed at it, and a layer of the wrong type
        (Image ↔ Labels) is replaced at its position. New names of existing
        layers are appended to ``renames`` as ``(layer, name)`` (renaming
        repaints the layer list, so the caller applies them later). With
        ``create=False`` missing layers are left for :meth:`add_layer`.
        """
        layer_type, dtype = self.spec.operation.presentation(result.dtype)
        shape = tuple(input_layer.data.shape)
        buffer = self.buffer
        if (
            buffer is None
            or buffer.shape != shape
            or buffer.dtype != dtype
            or self.layer_type != layer_type  # e.g. mask keep → binary: no stale values
        ):
            buffer = np.zeros(shape, dtype=dtype)
        self.layer_type = layer_type
        if index is None:
            buffer[...] = result
        else:
            buffer[index] = result
        self.buffer = buffer
        self.complete = False
        self.low, self.high = np.inf, -np.inf
        self.track(result)
        self.limits = self.span = None
        if layer_type == "image":
            self.limits, self.span = self.spec.operation.contrast_limits(
                result, self.low, self.high
            )
        spec = self.spec
        for view in range(len(spec.colormap_list())):
            layer = self.layers[view]
            if layer_alive(viewer, layer) and _is_layer_type(layer, layer_type):
                _point_at(layer, buffer, input_layer, self._metadata(input_layer),
                          self.limits, self.span)
                name = spec.layer_name(view, input_layer)
                if layer.name != name:
                    renames.append((layer, name))
                continue
            position = None
            if layer_alive(viewer, layer):  # wrong type: replace it where it was
                position = viewer.layers.index(layer)
                self.layers[view] = None
                remove_layers(viewer, [layer])
            if create:
                self.add_layer(viewer, input_layer, view, position=position)

    def add_layer(
        self,
        viewer: napari.Viewer,
        input_layer: Layer,
        view: int,
        *,
        position: int | None = None,
        visible: bool = True,
        name_overlay: bool = False,
    ) -> Layer | None:
        """Show view ``view`` of the result, as the buffer is now, in a new layer; returns it.

        The layer goes on top, or to ``position`` in the layer list; ``name_overlay``
        shows its name on the canvas. ``None`` when the result has no buffer.
        """
        from napari.layers import Layer

        if self.buffer is None:  # every layer of it was deleted meanwhile
            return None
        spec = self.spec
        kwargs = output_kwargs(
            self.layer_type,
            input_layer,
            name=spec.layer_name(view, input_layer),
            colormap=spec.colormap_list()[view],
            metadata=self._metadata(input_layer),
            contrast_limits=self.limits,
        )
        kwargs["visible"] = visible
        new_layer = Layer.create(self.buffer, kwargs, self.layer_type)
        if self.span is not None:
            new_layer.contrast_limits_range = self.span
        new_layer.name_overlay.visible = name_overlay  # before it is added: no extra redraw
        if position is None:
            viewer.layers.append(new_layer)
        else:
            viewer.layers.insert(position, new_layer)
        self.layers[view] = new_layer
        return new_layer

    def _metadata(self, input_layer: Layer) -> dict[str, Any]:
        spec = self.spec
        return output_metadata(spec.operation, spec.params, input_layer, complete=self.complete)

    def stored_frame(
        self, viewer: napari.Viewer, extremes: tuple[float, float] | None, *, shown: bool
    ) -> None:
        """A frame whose value range is ``extremes`` was stored in the buffer; repaint the
        layers when it is ``shown``."""
        self.track(None, extremes)
        if shown:
            for layer in self.alive(viewer):
                layer.refresh()

    def finish(self, viewer: napari.Viewer) -> None:
        """The result is complete: contrast limits over all of it, metadata marked complete."""
        if self.layer_type == "image" and self.buffer is not None:
            self.limits, self.span = self.spec.operation.contrast_limits(
                self.buffer, self.low, self.high
            )
        self.complete = True
        for layer in self.alive(viewer):
            entry = layer.metadata.get(METADATA_KEY)
            if isinstance(entry, dict):
                entry["complete"] = True
            if self.limits is not None:
                _set_contrast(layer, self.limits, self.span)

    def recolour(self, viewer: napari.Viewer, colormap: str, view: int = 0) -> None:
        """Show layer ``view`` in ``colormap`` without recomputing it."""
        layer = self.layers[view] if view < len(self.layers) else None
        if not layer_alive(viewer, layer):
            return
        colormaps = list(self.spec.colormap_list())
        colormaps[view] = colormap
        spec = self.spec
        self.spec = OutputSpec(spec.operation, spec.params, tuple(colormaps), spec.names)
        if self.layer_type == "labels":
            layer.colormap = labels_colormap(colormap)
        else:
            layer.colormap = napari_colormap(colormap)


def _set_contrast(layer: Layer, limits, span) -> None:
    """Set an image layer's contrast limits and slider range (only what changed)."""
    if list(layer.contrast_limits_range) != list(span):
        layer.contrast_limits_range = span
    if list(layer.contrast_limits) != list(limits):
        layer.contrast_limits = limits


def _point_at(layer: Layer, buffer, input_layer: Layer, metadata, limits, span) -> None:
    """Point an existing output layer at the new preview (one repaint)."""
    layer.metadata[METADATA_KEY] = dict(metadata)
    if not np.array_equal(layer.scale, input_layer.scale):
        layer.scale = input_layer.scale
    if not np.array_equal(layer.translate, input_layer.translate):
        layer.translate = input_layer.translate
    if limits is not None:
        _set_contrast(layer, limits, span)
    if layer.data is buffer:
        layer.refresh()
    else:
        layer.data = buffer
