"""Every result as runnable Python and recipes: each widget's "Copy as Python" snippet,
run in napari's console namespace or in a fresh interpreter, recomputes its layer bit
for bit; a recipe saved from a viewer replays bit for bit on another layer, in
``compare --recipe`` (its profile table) and in ``batch --recipe`` (its store); bad
recipes are refused naming the file and the step."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import napari_xray as nx
from napari_xray.recipe import RECIPE_SCHEMA, RecipeError, read_recipe

pytestmark = pytest.mark.viewer

#: Each widget with one parameter off its default (as a user would set it).
CHANGED = {
    "Laplacian of Gaussian": ("sigma", 3.0),
    "Gaussian gradient magnitude": ("sigma", 1.5),
    "Sobel magnitude": ("normalize", False),
    "Fourier-Prewitt magnitude": ("sigma", 2.0),
    "Canny edges": ("sigma", 1.0),
    "Threshold mask": ("threshold", 120.0),
}


def _run_snippet(snippet: str, namespace: dict) -> np.ndarray:
    exec(compile(snippet, "<as_python>", "exec"), namespace)  # noqa: S102 - the test's point
    return namespace["result"]


@pytest.mark.realdata
def test_copy_as_python_recomputes_every_widgets_result_bit_for_bit(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    from napari_xray.plugin.threads import running_workers

    viewer = make_napari_viewer()
    (series,) = viewer.open_sample("napari-xray", "series")
    for title, (name, value) in CHANGED.items():
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-xray", title)
        assert widget.copy_as_python() is None and "Run first" in widget.status
        widget.input_layer = series
        widget.controls[name].value = value
        widget._run_button.native.click()
        qtbot.waitUntil(lambda w=widget: w.output_layer is not None and not w.busy
                        and not running_workers(), timeout=30_000)  # fmt: skip
        widget._copy_button.native.click()
        snippet = QApplication.clipboard().text()
        assert snippet == nx.as_python(widget.output_layer, viewer)
        assert 'image = nx.load_sample("series")' in snippet.replace("'", '"')
        layer = widget.output_layer
        assert layer.metadata["napari_xray"]["parameters"][name] == value
        result = _run_snippet(snippet, {})
        assert result.dtype == layer.data.dtype and result.shape == layer.data.shape
        np.testing.assert_array_equal(result, layer.data)
        assert "Copied the Python" in widget.status


@pytest.mark.realdata
def test_snippets_read_the_file_again_or_the_console_layer(make_napari_viewer, xray_dir, tmp_path):
    viewer = make_napari_viewer()
    (opened,) = [layer for layer in viewer.open(str(xray_dir), plugin="napari-xray")
                 if layer.ndim == 3]  # fmt: skip
    log = nx.add_filter(viewer, opened, "log", sigma=2.5)
    snippet = nx.as_python(log, viewer)
    assert f"nx.read_xray({str(xray_dir)!r}, skip_bad=True)" in snippet
    # Outside napari: a fresh interpreter runs the snippet and saves its result.
    saved = tmp_path / "result.npy"
    script = snippet + f"\nimport numpy\nnumpy.save({str(saved)!r}, result)\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(np.load(saved), log.data)

    # A layer made in the console: the snippet reads it from napari's console namespace.
    made = viewer.add_image(np.asarray(opened.data[:2]) // 2, name="halved")
    edges = nx.add_filter(viewer, made, "canny", sigma=2.0)
    snippet = nx.as_python(edges, viewer)
    assert "viewer.layers['halved'].data" in snippet and ".astype(\"uint8\")" in snippet
    np.testing.assert_array_equal(_run_snippet(snippet, {"viewer": viewer}), edges.data)
    with pytest.raises(ValueError, match="not a napari-xray result"):
        nx.as_python(made, viewer)

    # A result of a result: the snippet computes the first one first.
    gradient = nx.add_filter(viewer, log, "gradient", sigma=1.5)
    snippet = nx.as_python(gradient, viewer)
    assert snippet.count("nx.run_operation(") == 2 and "step_1 = nx.run_operation('log'" in snippet
    np.testing.assert_array_equal(_run_snippet(snippet, {}), gradient.data)


def _profile_columns(path) -> dict[str, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    values = np.array(rows[1:], dtype=float)
    return {name: values[:, index] for index, name in enumerate(rows[0])}


@pytest.mark.realdata
def test_a_saved_recipe_replays_bit_for_bit_in_napari_compare_and_batch(
    make_napari_viewer, tmp_path
):
    from napari_xray.io.store import open_store

    viewer = make_napari_viewer()
    (series,) = viewer.open_sample("napari-xray", "series")
    made = [nx.add_filter(viewer, series, "log", sigma=3.0),
            nx.add_filter(viewer, series, "sobel", colormap="hot"),
            nx.add_filter(viewer, series, "canny", sigma=1.5),
            nx.add_filter(viewer, series, "mask", threshold=120.0, mode="binary")]
    path = nx.save_recipe(viewer, tmp_path / "recipe.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["napari_xray_recipe"] == RECIPE_SCHEMA
    assert [step["operation"] for step in document["steps"]] == ["log", "sobel", "canny", "mask"]
    assert document["steps"][1]["colormap"] == "hot"
    assert document["steps"][0]["parameters"] == made[0].metadata["napari_xray"]["parameters"]

    # In napari, on another layer holding the same frames.
    copy = viewer.add_image(np.array(series.data), name="copy")
    replayed = nx.apply_recipe(viewer, copy, path)
    assert len(replayed) == len(made)
    for original, again in zip(made, replayed, strict=True):
        assert type(again) is type(original) and again.data.dtype == original.data.dtype
        np.testing.assert_array_equal(again.data, original.data)
        assert again.metadata["napari_xray"]["input_layer"] == "copy"
    assert replayed[1].colormap.name == "hot"

    # compare --recipe: its profile table holds every panel's values at full precision.
    line = (100.0, 100.0, 900.0, 700.0)
    run = subprocess.run(
        [sys.executable, "-m", "napari_xray", "compare", "--recipe", str(path), "--out",
         str(tmp_path / "compared"), "--line", ",".join(map(str, line)), "--frame", "4",
         "--quiet"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    columns = _profile_columns(tmp_path / "compared" / "profile.csv")
    titles = list(columns)[1:]
    assert len(titles) == 1 + len(made) and titles[0] == "Original"
    for title, layer in zip(titles[1:], made, strict=True):
        _, expected = nx.line_profile(np.asarray(layer.data[4]), line[:2], line[2:])
        np.testing.assert_array_equal(columns[title], expected)

    # batch --recipe: one array per operation, equal to the layers.
    store = tmp_path / "recipe.zarr"
    run = subprocess.run(
        [sys.executable, "-m", "napari_xray", "batch", *map(str, nx.fetch_frames()), "--out",
         str(store), "--recipe", str(path), "--workers", "1", "--no-progress"],
        capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    stored = {result.key: np.asarray(result.data) for result in open_store(store).results}
    assert list(stored) == ["log", "sobel", "canny", "mask"]
    for layer in made:
        key = layer.metadata["napari_xray"]["operation"]
        np.testing.assert_array_equal(stored[key].astype(layer.data.dtype), layer.data)


def test_bad_recipes_are_refused_naming_the_file_and_the_step(tmp_path):
    def recipe(document, name="r.json"):
        path = tmp_path / name
        path.write_text(json.dumps(document) if not isinstance(document, str) else document,
                        encoding="utf-8")
        return path

    good = {"napari_xray_recipe": 1, "steps": [{"operation": "log", "parameters": {}}]}
    assert read_recipe(recipe(good))[0].parameters == {"sigma": 1.0}
    cases = [
        ({**good, "napari_xray_recipe": RECIPE_SCHEMA + 1}, "newer napari-xray.*upgrade"),
        ({"steps": good["steps"]}, "not a napari-xray recipe: it has no"),
        ("{not json", "not a napari-xray recipe \\(JSON\\)"),
        ({**good, "steps": []}, "holds no steps"),
        ({**good, "steps": [{"operation": "blur"}]}, "step 1 .*unknown operation 'blur'"),
        ({**good, "steps": [good["steps"][0], {"operation": "log", "parameters": {"size": 3}}]},
         "step 2 .*\\(log\\): log has no parameter 'size'"),
        ({**good, "steps": [{"operation": "log", "parameters": {"sigma": -1}}]}, "step 1 .*log"),
        ({**good, "steps": [{"operation": "log", "colormap": "jet"}]}, "colormap 'jet'"),
    ]
    for number, (document, message) in enumerate(cases):
        path = recipe(document, f"case{number}.json")
        with pytest.raises(RecipeError, match=message) as caught:
            read_recipe(path)
        assert str(path) in str(caught.value) and caught.value.path == str(path)
    with pytest.raises(RecipeError, match="cannot read the recipe"):
        read_recipe(tmp_path / "missing.json")

    from napari_xray.recipe import batch_selection

    twice = read_recipe(recipe({**good, "steps": [
        {"operation": "mask", "parameters": {"mode": "keep"}},
        {"operation": "mask", "parameters": {"mode": "binary"}}]}))
    with pytest.raises(RecipeError, match="'mask' twice with different parameters"):
        batch_selection(twice)

    # The command line: exit status 2 and the message, nothing written.
    newer = recipe({**good, "napari_xray_recipe": 99}, "newer.json")
    for command in (["compare", "--out", str(tmp_path / "out")],
                    ["batch", str(tmp_path), "--out", str(tmp_path / "s.zarr")]):
        run = subprocess.run([sys.executable, "-m", "napari_xray", *command, "--recipe",
                              str(newer)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, run.stderr
        assert "newer napari-xray (recipe schema 99)" in run.stderr and str(newer) in run.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "s.zarr").exists()
    run = subprocess.run([sys.executable, "-m", "napari_xray", "batch", str(tmp_path), "--out",
                          str(tmp_path / "s.zarr"), "--recipe", str(newer), "--filters", "log"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2 and "leave out --filters and --param" in run.stderr


def test_layers_data_copies_the_selected_result_as_python(make_napari_viewer):
    from app_model.types import MenuItem
    from napari._app_model import get_app_model
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer()
    image = viewer.add_image(np.random.default_rng(2).integers(0, 255, (2, 40, 50), np.uint8),
                             name="chest")
    result = nx.add_filter(viewer, image, "sobel")
    app = get_app_model()
    assert "napari-xray.copy_as_python" in {
        item.command.id for item in app.menus.get_menu("napari/layers/data")
        if isinstance(item, MenuItem)}
    viewer.layers.selection.active = result
    QApplication.clipboard().setText("")
    app.commands.execute_command("napari-xray.copy_as_python").result()
    snippet = QApplication.clipboard().text()
    assert snippet == nx.as_python(result, viewer)
    np.testing.assert_array_equal(_run_snippet(snippet, {"viewer": viewer}), result.data)
    viewer.layers.selection.active = image  # not a result: nothing copied
    QApplication.clipboard().setText("unchanged")
    app.commands.execute_command("napari-xray.copy_as_python").result()
    assert QApplication.clipboard().text() == "unchanged"


def test_snippets_follow_what_each_result_was_made_from(make_napari_viewer, tmp_path):
    """Several files opened as one stack; a result of a result whose input was re-run
    since; an input removed and another layer given its name."""
    import imageio.v3 as iio

    rng = np.random.default_rng(5)
    files = []
    for index in range(3):
        files.append(tmp_path / f"f{index}.png")
        iio.imwrite(files[-1], rng.integers(0, 255, (64, 80), np.uint8))
    viewer = make_napari_viewer()
    (stack,) = viewer.open([str(f) for f in files], plugin="napari-xray", stack=True)
    assert stack.data.shape == (3, 64, 80)
    log = nx.add_filter(viewer, stack, "log", sigma=1.0)
    snippet = nx.as_python(log, viewer)
    assert f"nx.read_xray({[str(f) for f in files]!r}, skip_bad=True)" in snippet
    np.testing.assert_array_equal(_run_snippet(snippet, {}), log.data)

    gradient = nx.add_filter(viewer, log, "gradient", sigma=1.5)
    computed_from = np.array(gradient.data)
    nx.add_filter(viewer, stack, "log", sigma=3.0)  # the LoG layer, re-run in place
    assert log.metadata["napari_xray"]["parameters"]["sigma"] == 3.0
    snippet = nx.as_python(gradient, viewer)
    assert "step_1 = nx.run_operation('log', image, sigma=1.0)" in snippet
    np.testing.assert_array_equal(_run_snippet(snippet, {}), computed_from)

    plain = viewer.add_image(np.array(stack.data) // 3, name="plain")
    edges = nx.add_filter(viewer, plain, "sobel")
    viewer.layers.remove(plain)
    viewer.add_image(np.zeros((3, 64, 80), np.uint8), name="plain")
    snippet = nx.as_python(edges, viewer)
    assert "'plain' is no longer in the viewer" in snippet


def test_saved_recipes_always_read_back_and_steps_are_checked_strictly(
    make_napari_viewer, tmp_path
):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.random.default_rng(4).integers(0, 255, (2, 40, 50), np.uint8),
                             name="chest")
    sobel = nx.add_filter(viewer, image, "sobel")
    sobel.colormap = "viridis"  # recoloured in napari's layer controls
    nx.add_filter(viewer, sobel, "mask", threshold=50.0)  # a result of a result
    path = nx.save_recipe(viewer, tmp_path / "r.json")
    (step,) = read_recipe(path)
    assert (step.operation, step.colormap) == ("sobel", None)

    def refused(parameters, match):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"napari_xray_recipe": 1, "steps": [
            {"operation": parameters.pop("operation", "canny"), "parameters": parameters}]}),
            encoding="utf-8")
        with pytest.raises(RecipeError, match=match):
            read_recipe(bad)

    refused({"operation": "log", "sigma": float("nan")}, "sigma must be a finite number")
    refused({"operation": "log", "sigma": True}, "sigma must be a finite number")
    refused({"operation": "log", "sigma": "2"}, "sigma must be a finite number")
    refused({"operation": "sobel", "normalize": 5}, "normalize must be true or false")
    refused({"operation": "mask", "mode": 1}, "mode must be a string")
    refused({"low_threshold": 100, "high_threshold": 10}, "step 1 .*canny")
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"napari_xray_recipe": 1, "steps": [
        {"operation": "log", "parameters": {"sigma": 2}}] * 2}), encoding="utf-8")
    assert len(read_recipe(twice)) == 1  # one result, one panel
    before = len(viewer.layers)
    bad = tmp_path / "late.json"
    bad.write_text(json.dumps({"napari_xray_recipe": 1, "steps": [
        {"operation": "log"}, {"operation": "canny",
                               "parameters": {"low_threshold": 9, "high_threshold": 1}}]}),
        encoding="utf-8")
    with pytest.raises(RecipeError):
        nx.apply_recipe(viewer, image, bad)
    assert len(viewer.layers) == before  # refused before anything was added
