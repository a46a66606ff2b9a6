"""The operation docks' controls, opened from napari's menu and driven through Qt:
effective defaults, re-ranging to each input, the log-scale σ, tooltips, messages."""

from __future__ import annotations

import numpy as np
import pytest

from napari_xray.engine.operations import OPERATIONS

pytestmark = pytest.mark.viewer

WAIT_MS = 30_000


def _open(viewer, key: str):
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-xray", OPERATIONS[key].title)
    return widget


def _qt(widget, cls):
    """The ``cls`` Qt widget of a magicgui widget (itself or its first such child)."""
    native = widget.native
    return native if isinstance(native, cls) else native.findChild(cls)


def _choose(widget, layer) -> None:
    from qtpy.QtWidgets import QComboBox

    _qt(widget._image, QComboBox).setCurrentText(layer.name)


def _shown_tooltip(native) -> str:
    """The tooltip Qt shows over ``native``: its own, else the nearest parent's."""
    while native is not None:
        if native.toolTip():
            return native.toolTip()
        native = native.parentWidget()
    return ""


def test_every_parameter_has_help_and_every_control_a_tooltip(make_napari_viewer):
    from qtpy.QtWidgets import QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox

    viewer = make_napari_viewer()
    for key, operation in OPERATIONS.items():
        widget = _open(viewer, key)
        for other in (widget._image, widget._colormap, widget._auto, widget._new_layer,
                      widget._run_button):
            assert _shown_tooltip(other.native).endswith("."), (key, other.name)
        for parameter in operation.parameters:
            assert parameter.help.endswith("."), (key, parameter.name)
            root = widget.controls[parameter.name].widget.native
            inputs = [root] if isinstance(root, (QAbstractButton, QComboBox)) else []
            inputs += [
                child
                for child in root.findChildren(
                    (QAbstractSpinBox, QAbstractSlider, QComboBox, QAbstractButton)
                )
                if not child.isHidden()
            ]
            assert inputs, (key, parameter.name)
            for native in inputs:
                tooltip = _shown_tooltip(native)
                if isinstance(native, QAbstractButton) and native.text() == "auto":
                    assert "default" in tooltip and parameter.help in tooltip
                else:
                    assert parameter.help in tooltip, (key, parameter.name, type(native))


def test_canny_thresholds_show_the_engine_default_and_start_from_it(
    make_napari_viewer, qtbot, xray_stack
):
    operation = OPERATIONS["canny"]
    viewer = make_napari_viewer()
    chest = viewer.add_image(np.array(xray_stack[:2]), name="chest")
    widget = _open(viewer, "canny")
    low, high = widget.controls["low_threshold"], widget.controls["high_threshold"]
    assert low.auto and low.value is None
    assert (low.number_value, high.number_value) == (25.5, 51.0)  # 10 % / 20 % of 255
    from qtpy.QtWidgets import QDoubleSpinBox

    readout = low.widget.native.findChildren(QDoubleSpinBox)
    assert any(r.text() == "25.5" for r in readout), [r.text() for r in readout]
    assert not low.slider.enabled

    low._auto.native.click()  # untick: the number starts from the default it showed
    assert not low.auto and low.value == 25.5 and low.slider.enabled
    output = widget.run(wait=True)
    np.testing.assert_array_equal(output.data, operation(chest.data).astype(np.uint8))

    ones = viewer.add_image(np.random.default_rng(0).random((2, 64, 64), np.float32), name="0-1")
    _choose(widget, ones)
    assert high.auto and high.number_value == pytest.approx(0.2)  # 20 % of 1.0 for floats
    assert 0 < low.value < 1, "a set threshold keeps its place in the new, smaller range"


def test_mask_threshold_re_ranges_to_each_input(make_napari_viewer, qtbot, xray_stack):
    viewer = make_napari_viewer()
    chest = viewer.add_image(np.array(xray_stack[:2]), name="chest")
    widget = _open(viewer, "mask")
    threshold = widget.controls["threshold"]
    assert threshold.value == 150.0  # the tutorial's default, inside 0–255

    ones = viewer.add_image(np.random.default_rng(0).random((2, 64, 64), np.float32), name="0-1")
    _choose(widget, ones)
    low, high = threshold.widget.range
    assert 0 <= low < threshold.value < high <= 1, "150 must not be clipped to an empty mask"
    assert threshold.value == pytest.approx(150 / 255, abs=0.01)  # same relative position
    output = widget.run(wait=True)
    assert 0 < np.count_nonzero(output.data) < output.data.size

    from qtpy.QtWidgets import QSlider

    slider = threshold.slider.native.findChild(QSlider)
    slider.setValue(slider.maximum())  # dragged to the top
    assert threshold.value == pytest.approx(high, abs=1e-3)
    ct = viewer.add_image(
        np.linspace(-1024, 3071, 2 * 32 * 32).reshape(2, 32, 32).astype(np.int16), name="ct"
    )
    _choose(widget, ct)
    low, high = threshold.widget.range
    assert (low, high) == (-1024.0, 3071.0)
    assert threshold.value == pytest.approx(3071.0, abs=5), "the top of 0–1 is the top of int16"
    assert threshold.value != pytest.approx(0.999955)
    _choose(widget, chest)
    assert threshold.widget.range == (float(xray_stack[:2].min()), float(xray_stack[:2].max()))


def test_sigma_is_log_scaled_and_rounded_to_two_decimals(make_napari_viewer):
    from qtpy.QtWidgets import QDoubleSpinBox, QSlider

    viewer = make_napari_viewer()
    widget = _open(viewer, "log")
    sigma = widget.controls["sigma"]
    slider = sigma.slider.native.findChild(QSlider)
    spin = sigma.widget.native.findChild(QDoubleSpinBox)
    assert sigma.value == 1.0 and spin.decimals() == 2

    # equal slider distances are equal factors: 0.1 → 1 → 10 are evenly spaced
    positions = []
    for value in (0.1, 1.0, 10.0):
        spin.setValue(value)
        positions.append(slider.value())
    assert positions[1] - positions[0] == pytest.approx(positions[2] - positions[1], abs=1)

    spin.setValue(1.0)
    for _ in range(5):
        slider.triggerAction(QSlider.SliderAction.SliderPageStepAdd)
        assert sigma.value == round(sigma.value, 2) and sigma.value > 1.0
    spin.setValue(1.0)
    spin.stepBy(10)  # PageUp in the spin box
    assert sigma.value == 2.0
    spin.setValue(1.0)
    spin.stepBy(1)
    assert sigma.value == 1.1
    assert widget.parameters()["sigma"] == 1.1


def test_layer_names_put_the_operation_first(make_napari_viewer, xray_stack):
    viewer = make_napari_viewer()
    viewer.add_image(np.array(xray_stack[:2]), name="chest X-ray series")
    widget = _open(viewer, "log")
    from qtpy.QtWidgets import QDoubleSpinBox

    widget.controls["sigma"].widget.native.findChild(QDoubleSpinBox).setValue(3.0)
    output = widget.run(wait=True)
    assert output.name == "LoG σ=3 · chest X-ray series"
    assert OPERATIONS["mask"].layer_name({"mode": "binary"}) == "Mask > 150 binary"
    assert OPERATIONS["canny"].layer_name({"low_threshold": 30}) == "Canny σ=2, Low threshold=30"
