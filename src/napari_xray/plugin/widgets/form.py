"""The scrolling form the napari-xray docks are built on, with labels that never clip.

:class:`DockForm` is a magicgui Container that napari docks inside a scroll area
(the dock shrinks to :data:`MIN_DOCK_HEIGHT` and its contents scroll), and
:func:`keep_labels_unclipped` keeps a form's label column as wide as napari's
stylesheet draws the labels.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import Container

__all__ = ["MIN_DOCK_HEIGHT", "DockForm", "fit_label_column", "keep_labels_unclipped"]

#: Height (px) a dock's scroll area may shrink to: eight docks fit beside a 800 px canvas.
MIN_DOCK_HEIGHT = 40


def _row_labels(container) -> list:
    """The QLabels magicgui puts before the rows of ``container`` (rows with a label)."""
    labels = []
    for widget in container:
        # magicgui wraps each labelled row in a _LabeledWidget; its label is a Label widget.
        labeled = widget._labeled_widget() if hasattr(widget, "_labeled_widget") else None
        if labeled is not None and widget.label:
            labels.append(labeled._label_widget.native)
    return labels


def fit_label_column(container) -> None:
    """Make the label column of a magicgui form as wide as its widest label needs.

    magicgui measures labels with the default font when the form is built; napari's
    stylesheet, applied once the form is docked, draws them larger, and the labels
    were clipped ("Low threshold" at 339 px). This measures them in the style
    they are drawn in.
    """
    labels = _row_labels(container)
    if not labels:
        return
    for label in labels:
        label.setMinimumWidth(0)
        label.ensurePolished()
    width = max(label.sizeHint().width() for label in labels)
    for label in labels:
        label.setMinimumWidth(width)


def keep_labels_unclipped(container) -> None:
    """Refit ``container``'s label column (:func:`fit_label_column`) whenever its style changes."""
    from qtpy.QtCore import QEvent, QObject

    watched = (QEvent.Type.Show, QEvent.Type.StyleChange, QEvent.Type.FontChange)

    class _Refit(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
            if event.type() in watched:
                fit_label_column(container)
            return False

    target = container.root_native_widget
    refit = _Refit(target)
    target.installEventFilter(refit)
    fit_label_column(container)


class DockForm(Container):
    """A magicgui form that napari docks inside its scroll area, labels never clipped.

    napari docks a magicgui widget's ``native``; for a ``scrollable`` Container
    that is the widget *inside* the scroll area, so the scroll area was lost and
    long forms grew the window past the screen. Here ``native`` is the scroll
    area itself (magicgui's ``root_native_widget``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(scrollable=True, **kwargs)
        from qtpy.QtWidgets import QFrame, QSizePolicy

        root = self.root_native_widget
        root.setFrameShape(QFrame.Shape.NoFrame)
        root.setMinimumHeight(MIN_DOCK_HEIGHT)
        # No taller than the form: the height left goes to docks that use it (Statistics).
        root.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    @property
    def native(self) -> Any:
        """The scroll area that holds the form (what napari docks)."""
        return self.root_native_widget

    def finish_form(self) -> None:
        """Call once every row is added: rows packed at the top (a dock taller than
        the form leaves the space below it, not between its rows), and the label
        column kept fitted to napari's style."""
        self._widget._layout.addStretch(1)
        keep_labels_unclipped(self)
