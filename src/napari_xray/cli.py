"""The ``napari-xray`` command line: ``compare``, ``view`` and ``batch``.

Each subcommand has a function that adds its parser and one that runs it; the
code they drive is imported only when a subcommand runs, so ``napari-xray
--help`` loads neither the engine nor napari. Problems the user can fix end in a
one-line message and exit status 2; a batch with failed frames in exit status 3;
Ctrl-C, at any moment of a run, in one line and exit status 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence

from napari_xray import __version__
from napari_xray.errors import XrayError

__all__ = [
    "EXIT_FAILED_FRAMES",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "add_batch_parser",
    "add_compare_parser",
    "add_view_parser",
    "batch_command",
    "build_parser",
    "compare_command",
    "main",
    "view_command",
]

#: Exit status for a problem the user can fix (bad input, option or file).
EXIT_USAGE = 2
#: Exit status of ``batch`` when it finished but some frames failed (listed on stderr).
EXIT_FAILED_FRAMES = 3
#: Exit status after Ctrl-C.
EXIT_INTERRUPTED = 130

# Whether Ctrl-C was pressed during this main() and whether its line was printed.
_INTERRUPT: dict = {"signalled": False, "reported": False}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog can be made only when its help is shown."""

    def __init__(self, *args, epilog_factory: Callable[[], str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.epilog_factory = epilog_factory

    def format_help(self) -> str:
        if self.epilog_factory is not None:
            self.epilog = self.epilog_factory()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = _Parser(
        prog="napari-xray",
        description="Explore chest X-rays with edge filters: headless comparison, napari "
        "viewer and Dask batch processing.",
    )
    parser.add_argument("--version", action="version", version=f"napari-xray {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_compare_parser(subparsers)
    add_explain_parser(subparsers)
    add_view_parser(subparsers)
    add_batch_parser(subparsers)
    return parser


def _on_interrupt(signum, frame) -> None:
    """SIGINT: the first raises KeyboardInterrupt; another one (during cleanup) exits now."""
    if _INTERRUPT["signalled"]:
        if not _INTERRUPT["reported"]:
            sys.stderr.write("napari-xray: interrupted\n")
            sys.stderr.flush()
        import os

        os._exit(EXIT_INTERRUPTED)
    if _unraisable_hook_frame(frame) is not None:
        # Raised here, Python would print it as the hook's traceback and drop it.
        _raise_at_next_line()
        return
    _disarm_delivery()
    _INTERRUPT["signalled"] = True
    raise KeyboardInterrupt


def _interrupted(message: str) -> int:
    """Report Ctrl-C in one line (once); returns the exit status."""
    if not _INTERRUPT["reported"]:
        _INTERRUPT["reported"] = True
        print(message, file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def _on_unraisable(unraisable) -> None:
    """Python drops a KeyboardInterrupt raised inside a finalizer or weakref callback
    (it prints "Exception ignored in …" and carries on): deliver that Ctrl-C again."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        _INTERRUPT["signalled"] = False
        import threading

        if threading.current_thread() is threading.main_thread():
            _raise_at_next_line()
        else:
            import _thread

            _thread.interrupt_main()  # its handler runs in the main thread, not in here
        return
    _INTERRUPT["previous_hook"](unraisable)


def _unraisable_hook_frame(frame):
    """The frame of :func:`_on_unraisable` that ``frame`` runs in, or None."""
    while frame is not None:
        if frame.f_code is _on_unraisable.__code__:
            return frame
        frame = frame.f_back
    return None


def _raise_at_next_line() -> None:
    """Raise KeyboardInterrupt in the main thread at its next line outside the hook.

    A signal cannot do it: its handler runs at the hook's next call, inside the hook.
    A trace function is called at the next line of the frames the hook will return
    to (or at the next call), and what it raises is raised there. If that is another
    finalizer, the hook is called again and arms this again.
    """
    if "armed" in _INTERRUPT:
        return
    frames = []
    frame = _unraisable_hook_frame(sys._getframe()).f_back
    while frame is not None:
        frames.append((frame, frame.f_trace))
        frame.f_trace = _deliver_interrupt
        frame = frame.f_back
    _INTERRUPT["armed"] = (sys.gettrace(), frames)
    sys.settrace(_deliver_interrupt)


def _deliver_interrupt(frame, event, arg):
    """The trace function of :func:`_raise_at_next_line`.

    Not in the hook, and not in :func:`main`'s own frame or its cleanup: raised
    there (the command has returned), it would escape ``main`` as a traceback.
    """
    if _unraisable_hook_frame(frame) is not None or frame.f_code in _NOT_DELIVERED_IN:
        return None
    _disarm_delivery()
    _INTERRUPT["signalled"] = True
    raise KeyboardInterrupt


def _disarm_delivery() -> None:
    """Undo :func:`_raise_at_next_line` (no-op when it is not armed)."""
    armed = _INTERRUPT.pop("armed", None)
    if armed is None:
        return
    previous_trace, frames = armed
    sys.settrace(previous_trace)
    for frame, previous in frames:
        frame.f_trace = previous


def _install_interrupt_handling():
    """Route Ctrl-C through :func:`_on_interrupt`; returns the handler it replaced.

    Called first thing in :func:`main`, before any heavy import, so a
    KeyboardInterrupt that arrives anywhere inside ``main`` (parsing, imports,
    computing, cleanup, even inside a finalizer) ends in one line and status 130,
    and a second Ctrl-C during the cleanup of the first (closing a Dask cluster,
    writing a report) ends the process at once instead of printing a traceback.
    A process started with Ctrl-C ignored keeps ignoring it (returns None).
    """
    _INTERRUPT.update(signalled=False, reported=False)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return None  # started with Ctrl-C ignored (nohup, a background job): keep it so
    try:
        previous = signal.signal(signal.SIGINT, _on_interrupt)
    except ValueError:  # not the main thread: leave the handler alone
        return None
    _INTERRUPT["previous_hook"] = sys.unraisablehook
    sys.unraisablehook = _on_unraisable
    return previous


def _restore_interrupt_handling(previous) -> None:
    """Hand back the handlers :func:`_install_interrupt_handling` replaced.

    Not after a real Ctrl-C: the process is ending, and another Ctrl-C during the
    interpreter's own cleanup (atexit handlers) must still exit at once.
    """
    _disarm_delivery()  # a Ctrl-C from a finalizer that main() finished before
    if previous is None or _INTERRUPT["signalled"]:
        return
    signal.signal(signal.SIGINT, previous)
    sys.unraisablehook = _INTERRUPT.pop("previous_hook", sys.__unraisablehook__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success).

    Statuses: 0 done; 2 a problem the user can fix (one line on stderr); 3 a
    ``batch`` that finished with failed frames (listed on stderr); 130 Ctrl-C (one
    line, no traceback).
    """
    previous = command = None
    try:
        try:
            previous = _install_interrupt_handling()
            parser = build_parser()
            args = parser.parse_args(argv)
            command = args.command
            return int(args.run(args) or 0)
        except KeyboardInterrupt as interrupt:
            detail = f": {interrupt.args[0]}" if interrupt.args else ""
            return _interrupted(f"napari-xray: interrupted{detail}")
        except (XrayError, ValueError, OSError) as error:
            # XrayError: every problem napari-xray names itself; plain ValueError: the
            # parameter checks of the engine and of compare; OSError: a file that cannot
            # be read or written.
            print(f"napari-xray {command}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
    except KeyboardInterrupt:  # while an error above was being reported
        return _interrupted("napari-xray: interrupted")
    finally:
        _restore_interrupt_handling(previous)


#: Where a re-delivered Ctrl-C is never raised (see :func:`_deliver_interrupt`).
_NOT_DELIVERED_IN = frozenset(
    f.__code__ for f in (main, _restore_interrupt_handling, _disarm_delivery, _interrupted)
)


# --------------------------------------------------------------------------- compare


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``napari-xray compare`` on ``subparsers``; returns its parser."""
    parser = subparsers.add_parser(
        "compare",
        help="run the tutorial's whole comparison headless and write figure, GIF, "
        "histogram and statistics",
        description="Read INPUT (default: the nine ChestX-ray8 frames, or the synthetic "
        "phantom with a notice when they cannot be had), run every panel of the tutorial's "
        "comparison on the whole stack and write comparison.png, stack.gif, histogram.png, "
        "statistics.csv and statistics.json into DIR.",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="PNG/DICOM files or folders (default: the ChestX-ray8 series)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--frame", type=int, default=0, help="frame shown in the figure (default: 0)"
    )
    parser.add_argument(
        "--gif-duration",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="seconds per frame in the GIF (default: 0.5)",
    )
    parser.add_argument(
        "--line",
        default=None,
        metavar="Y0,X0,Y1,X1",
        help="also write profile.png and profile.csv: every panel's profile along this "
        "line (pixels: row, column of each end) through the shown frame; write "
        "--line=Y0,X0,Y1,X1 when Y0 is negative",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        metavar="FILE",
        help="show the operations of this recipe (napari_xray.save_recipe) instead of the "
        "tutorial's set, beside the original",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(run=compare_command)
    return parser


def compare_command(args: argparse.Namespace) -> int:
    """``napari-xray compare``: write the comparison's outputs, list them; returns 0."""
    from napari_xray.compare import load_input, parse_line, write_comparison
    from napari_xray.engine.operations import COMPARISON
    from napari_xray.recipe import comparison_panels, read_recipe

    line = parse_line(args.line) if args.line is not None else None
    # A recipe is read (and refused) before any input is.
    panels = comparison_panels(read_recipe(args.recipe)) if args.recipe is not None else COMPARISON
    # The notice that the phantom replaces the real frames is never hidden (--quiet too).
    comparison = load_input(args.inputs, notice=lambda m: print(m, file=sys.stderr, flush=True))
    written = write_comparison(
        comparison,
        args.out,
        frame_index=args.frame,
        gif_duration=args.gif_duration,
        show_progress=None if not args.quiet else False,
        line=line,
        panels=panels,
    )
    if not args.quiet:
        shape = "×".join(str(n) for n in comparison.stack.shape)
        print(f"compared {comparison.source} ({shape} {comparison.stack.dtype}); wrote:")
        for path in written:
            print(f"  {path}")
    return 0


# --------------------------------------------------------------------------- view


# --------------------------------------------------------------------------- explain


def add_explain_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``napari-xray explain`` on ``subparsers``; returns its parser."""
    parser = subparsers.add_parser(
        "explain",
        help="show what the tutorial gets wrong on one frame: four pairs as figures",
        description="Read INPUT (default: the nine ChestX-ray8 frames, or the synthetic "
        "phantom with a notice when they cannot be had) and write, for one frame, the "
        "tutorial's four mistakes beside napari-xray's results with their difference maps "
        "and captions: explain-1-wraparound.png … explain-4-canny.png, explain.png (all "
        "four) and explain.json (the captions and their figures) into DIR.",
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="PNG/DICOM files or folders (default: the ChestX-ray8 series)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--frame", type=int, default=0,
                        help="the frame explained (default: 0; the tutorial's is 1)")
    parser.add_argument("--quiet", action="store_true", help="no list of the files written")
    parser.set_defaults(run=explain_command)
    return parser


def explain_command(args: argparse.Namespace) -> int:
    """``napari-xray explain``: write the four pairs' figures, list them; returns 0."""
    from napari_xray.compare import load_input
    from napari_xray.explain import write_explanation

    comparison = load_input(args.inputs, notice=lambda m: print(m, file=sys.stderr, flush=True))
    count = comparison.stack.shape[0]
    if not -count <= args.frame < count:
        raise ValueError(f"--frame {args.frame} is out of range; the input has {count} "
                         f"frame(s) (0…{count - 1})")  # fmt: skip
    written = write_explanation(comparison.stack, args.out, frame_index=args.frame,
                                source=comparison.source)  # fmt: skip
    if not args.quiet:
        print(f"explained frame {args.frame % count} of {comparison.source}; wrote:")
        for path in written:
            print(f"  {path}")
    return 0


def add_view_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``napari-xray view`` on ``subparsers``; returns its parser."""
    parser = subparsers.add_parser(
        "view",
        help="open napari with the X-ray series (or INPUT) and the comparison widget",
        description="Open napari with the nine ChestX-ray8 frames (or INPUT: a PNG, a DICOM "
        "file or a folder of frames) and the napari-xray comparison widget docked. Without "
        "the real frames (offline, no NAPARI_XRAY_DATA_DIR) the synthetic phantom opens.",
    )
    parser.add_argument("input", nargs="?", metavar="INPUT", help="PNG, DICOM or folder to open")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="switch the compare-all grid on right away",
    )
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="set everything up but do not start napari's event loop (for scripted checks)",
    )
    parser.set_defaults(run=view_command)
    return parser


def view_command(args: argparse.Namespace) -> int:
    """``napari-xray view``: open the viewer and run napari until its window closes; returns 0."""
    import napari

    from napari_xray.plugin.viewer import open_viewer

    viewer = open_viewer(args.input, compare=args.compare)
    if args.no_run:
        viewer.close()
        return 0
    napari.run()
    return 0


# --------------------------------------------------------------------------- batch


def _batch_epilog() -> str:
    """Every operation with its parameters' defaults (imports the engine); exit statuses."""
    from napari_xray.engine.operations import OPERATIONS, PRESETS

    return "Operations and their parameters (defaults): " + "; ".join(
        f"{op.key}: " + (", ".join(f"{p.name}={p.default}" for p in op.parameters) or "none")
        for op in OPERATIONS.values()
    ) + ". Presets for --filters: " + "; ".join(
        f"{name} = {','.join(keys)}" for name, keys in PRESETS.items()
    ) + (
        f". Exit status: 0 every frame done; {EXIT_FAILED_FRAMES} the run finished but some "
        "frames failed (each listed on stderr with its file and the reason; rerun to retry "
        f"them); {EXIT_USAGE} an error the message names (bad input or option, another run "
        f"holding the store's lock, --strict stopped at a bad file); {EXIT_INTERRUPTED} "
        "interrupted (rerun the same command to resume)."
    )


def add_batch_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``napari-xray batch`` on ``subparsers``; returns its parser."""
    from napari_xray.batch.inputs import COMPRESSIONS, FLOAT_DTYPES

    parser = subparsers.add_parser(
        "batch",
        help="filter a whole dataset on Dask into a resumable Zarr store",
        description=(
            "Filter every input frame with the selected operations on a Dask cluster and "
            "write one (N, H, W) array per operation into a Zarr v3 store that napari opens "
            "lazily. Rerun the same command to resume an interrupted or killed run; inputs "
            "changed since their frame was done are computed again. One run per store at a "
            "time (STORE.zarr.lock)."
        ),
        epilog_factory=_batch_epilog,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="PNG/DICOM files, folders or glob patterns (quote globs)")
    parser.add_argument("--out", "-o", required=True, metavar="STORE.zarr",
                        help="the Zarr store to create or resume")
    parser.add_argument("--filters", default=None, metavar="LIST",
                        help="comma-separated operations or presets (default: all; listed "
                        "below)")
    parser.add_argument("--param", "-p", action="append", default=[], metavar="KEY.NAME=VALUE",
                        help="override a parameter, e.g. log.sigma=2 (repeatable)")
    parser.add_argument("--recipe", default=None, metavar="FILE",
                        help="run exactly the operations and parameters of this recipe "
                        "(napari_xray.save_recipe) instead of --filters and --param")
    parser.add_argument("--dtype", choices=FLOAT_DTYPES, default="float32",
                        help="dtype of floating-point results (default float32; float16 is "
                        "lossy: 11 significant bits, each value within 4.9e-4 of itself, "
                        "and a frame whose results reach 65,520 fails)")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="none",
                        help="codec of floating-point results (default none; lz4 = Blosc LZ4 "
                        "+ shuffle, zstd = level 1); masks are always compressed")
    parser.add_argument("--chunk-frames", type=int, default=1, metavar="N",
                        help="frames per Zarr chunk and per completion record (default 1)")
    parser.add_argument("--frames-per-task", type=int, default=None, metavar="N",
                        help="frames per Dask task and per chunk of the status array "
                        "(default: 1/32 of the frames, at most 64)")
    parser.add_argument("--shape", default=None, metavar="HxW",
                        help="frame size, rows x columns (default: the most common size among "
                        "the inputs' headers); inputs of other sizes are reported as failures")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler-address", default=None, metavar="tcp://HOST:PORT",
                       help="run on this existing Dask cluster (default: DASK_SCHEDULER_ADDRESS,"
                       " else a local cluster)")
    where.add_argument("--scheduler-file", default=None, metavar="FILE",
                       help="run on the cluster described by this scheduler file")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--strict", action="store_true",
                        help="stop with an error at the first bad file instead of skipping it")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete an existing napari-xray store at --out and start again")
    parser.add_argument("--verify", action="store_true",
                        help="read back every done frame (chunk checksums) and its input "
                        "(content hash) and compute again what is damaged or changed")
    parser.add_argument("--where", default=None, metavar="CONDITIONS",
                        help="only the images whose ChestX-ray8 entry row meets every "
                        "condition, e.g. 'finding=Effusion,view=PA' (keys: finding, view, "
                        "sex, patient; A|B for either)")
    parser.add_argument("--entries", default=None, metavar="Data_Entry_2017.csv",
                        help="the ChestX-ray8 entry file (default: beside the first input, "
                        "else in NAPARI_XRAY_CHESTXRAY8_DIR); the store keeps the inputs' rows")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=batch_command)
    return parser


def batch_command(args: argparse.Namespace) -> int:
    """``napari-xray batch``: run the batch, print its summary and problems.

    Returns 0 when every frame is done, :data:`EXIT_FAILED_FRAMES` when some
    failed (they are listed on stderr). User errors raise
    :class:`~napari_xray.errors.BatchError` and Ctrl-C ``KeyboardInterrupt``;
    :func:`main` turns them into exit status 2 and 130.
    """
    from napari_xray.batch.run import run_batch

    filters, params = args.filters, args.param
    if args.recipe is not None:
        from napari_xray.recipe import RecipeError, batch_selection, read_recipe

        if filters is not None or params:
            raise RecipeError("--recipe names the operations and their parameters itself: "
                              "leave out --filters and --param", args.recipe)
        filters, params = batch_selection(read_recipe(args.recipe), args.recipe)
    summary = run_batch(
        args.inputs,
        args.out,
        filters=filters,
        params=params,
        float_dtype=args.dtype,
        compression=args.compression,
        chunk_frames=args.chunk_frames,
        frames_per_task=args.frames_per_task,
        shape=args.shape,
        scheduler_address=args.scheduler_address,
        scheduler_file=args.scheduler_file,
        workers=args.workers,
        strict=args.strict,
        overwrite=args.overwrite,
        verify=args.verify,
        progress=not args.no_progress,
        where=args.where,
        entries=args.entries,
    )
    print(summary.format(), flush=True)
    problems = summary.format_problems()
    if problems:
        print(problems, file=sys.stderr, flush=True)
    return EXIT_FAILED_FRAMES if summary.failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
