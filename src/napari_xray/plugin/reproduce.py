"""Every napari-xray result as runnable Python, and recipes saved from a viewer.

:func:`as_python` writes the few lines that compute a result layer again from the
sample or file its input came from; :func:`save_recipe` writes the operations of a
viewer's results as a recipe (:mod:`napari_xray.recipe`) and :func:`apply_recipe`
runs one on another layer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_xray.plugin.layers import unwrap
from napari_xray.plugin.measuring import input_layer_of, result_entry
from napari_xray.recipe import RecipeStep, read_recipe, write_recipe

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["apply_recipe", "as_python", "recipe_steps", "save_recipe"]

#: At most this many results made from results are followed back to their input.
_MAX_CHAIN = 32


def _entry(layer) -> dict[str, Any]:
    entry = result_entry(layer)
    if entry is None:
        raise ValueError(f"'{layer.name}' is not a napari-xray result: it records no operation "
                         "(choose a layer a napari-xray filter made)")  # fmt: skip
    return entry


def input_expression(layer: Layer) -> tuple[str, bool]:
    """Python for ``layer``'s data, and whether it runs outside napari: its sample
    (``nx.load_sample("series")``), the files or folder napari-xray read it from, or
    else the layer itself in napari's console (``viewer.layers["name"].data``)."""
    source = getattr(layer, "source", None)
    sample = getattr(source, "sample", None)
    if sample and sample[0] == "napari-xray":
        return f"nx.load_sample({sample[1]!r})", True
    path, reader = getattr(source, "path", None), getattr(source, "reader_plugin", None)
    if path and reader == "napari-xray":
        metadata = layer.metadata if isinstance(layer.metadata, dict) else {}
        files = metadata.get("source_paths")
        # napari keeps only the first of several files opened as one stack.
        if not Path(path).is_dir() and isinstance(files, list) and len(files) > 1:
            path = [os.fspath(file) for file in files]
        else:
            path = os.fspath(path)
        # skip_bad as the reader: a folder's damaged files are left out the same way.
        return f"nx.read_xray({path!r}, skip_bad=True)", True
    return f"viewer.layers[{layer.name!r}].data", False


def _call(operation: str, parameters: dict[str, Any], argument: str) -> str:
    arguments = "".join(f", {name}={value!r}" for name, value in parameters.items())
    return f"nx.run_operation({operation!r}, {argument}{arguments})"


def as_python(layer: Layer, viewer: napari.Viewer | None = None) -> str:
    """Python that computes the napari-xray result ``layer`` again, bit for bit.

    ``viewer`` (default: napari's current viewer) holds the layer's input.
    ``napari_xray.as_python(viewer.layers["LoG σ=3 · chest X-ray series"])`` gives::

        import napari_xray as nx

        image = nx.load_sample("series")
        result = nx.run_operation("log", image, sigma=3.0)

    The input is the sample or file napari-xray read the input layer from (a layer
    made otherwise is read from napari's console, ``viewer.layers[...]``); a result
    of another result computes that one first; a result napari shows as a Labels
    layer (bool) is converted to its uint8 as well.

    Raises
    ------
    ValueError
        ``layer`` is not a napari-xray result.
    """
    layer = unwrap(layer)
    if viewer is None:
        import napari

        viewer = napari.current_viewer()
    # The result, then what it was made from, as recorded when each was computed (a
    # result re-run since then does not change what this one was made from).
    chain = [(layer.name, _entry(layer))]
    while isinstance(chain[-1][1].get("made_from"), dict) and len(chain) < _MAX_CHAIN:
        made_from = chain[-1][1]["made_from"]
        chain.append((chain[-1][1].get("input_layer"), made_from))
    root = chain[-1][1]
    source = input_layer_of(viewer, root)
    notes = []
    if source is not None:
        expression, _ = input_expression(source)
    else:
        expression = f"viewer.layers[{root.get('input_layer')!r}].data"
        notes.append(f"# the input layer {root.get('input_layer')!r} is no longer in the "
                     "viewer: this line reads whatever layer now has its name")  # fmt: skip
    lines = ["import napari_xray as nx", "", f"image = {expression}"]
    argument = "image"
    for position, (name, entry) in enumerate(reversed(chain)):
        target = "result" if position == len(chain) - 1 else f"step_{position + 1}"
        lines.append(f"{target} = {_call(entry['operation'], entry['parameters'], argument)}"
                     + (f"  # {name!r}" if target != "result" else ""))
        argument = target
    from napari.layers import Labels

    if isinstance(layer, Labels):
        lines[-1] += f'.astype("{layer.data.dtype}")  # napari shows it as a Labels layer'
    lines.extend(notes)
    if any(entry.get("complete") is False for _, entry in chain):
        lines.append("# napari was still computing some frames of this result; this computes "
                     "all of them")  # fmt: skip
    return "\n".join(lines) + "\n"


def recipe_steps(viewer: napari.Viewer) -> list[RecipeStep]:
    """The operations, parameters and colormaps of the viewer's napari-xray results, in
    layer list order, each distinct step once.

    A recipe runs each step on the image it is applied to, so results made from
    other results are left out; a colormap other than the operation's own (chosen
    in napari's layer controls) is left out too, and the replay shows its default.
    """
    from napari.layers import Image

    from napari_xray.engine.operations import get_operation

    steps: list[RecipeStep] = []
    for layer in unwrap(viewer).layers:
        try:
            entry = _entry(layer)
        except ValueError:
            continue
        if "made_from" in entry:
            continue  # made from another result: a recipe runs every step on the image
        colormap = layer.colormap.name if isinstance(layer, Image) else None
        if colormap not in get_operation(entry["operation"]).colormaps:
            colormap = None  # recoloured in napari: the recipe keeps the operation's own
        step = RecipeStep(entry["operation"], dict(entry["parameters"]), colormap)
        if step not in steps:
            steps.append(step)
    return steps


def save_recipe(viewer: napari.Viewer, path: str | os.PathLike) -> Path:
    """Write the viewer's napari-xray results (:func:`recipe_steps`) as a recipe file.

    ``napari-xray compare --recipe FILE`` and ``napari-xray batch --recipe FILE``
    run it headless; :func:`apply_recipe` runs it on another layer.
    """
    return write_recipe(path, recipe_steps(viewer))


def apply_recipe(viewer: napari.Viewer, layer: Layer, path: str | os.PathLike) -> list[Layer]:
    """Run every step of the recipe at ``path`` on ``layer``, each as a new result layer.

    Returns the new layers, in the recipe's order. A recipe that cannot be read is
    refused before anything is computed (:class:`~napari_xray.recipe.RecipeError`).
    """
    from napari_xray.plugin.console import add_filter

    steps = read_recipe(path)
    return [add_filter(viewer, layer, step.operation, new_layer=True, colormap=step.colormap,
                       **step.parameters) for step in steps]  # fmt: skip
