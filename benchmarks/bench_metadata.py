from machine import print_machine; print_machine()  # noqa: E702, I001  # fmt: skip

# Reading ChestX-ray8's metadata at the data set's size.
#
# Run:  .venv/bin/python benchmarks/bench_metadata.py
#
# Writes an entry file of 112,120 rows in the released format (the nine sample
# rows, renamed image by image, header and trailing commas included) and a box
# file of 984 rows, then times in one process, median (min) of five runs:
#
#   * napari_xray.read_entries / read_boxes (every field checked and converted);
#   * csv.reader alone (split into strings, nothing checked): the floor of any
#     parser built on the csv module;
#   * pandas.read_csv of the same file (what a script would use).
#
# Target (issue 12): 112,120 entry rows in under 2 s.

import csv  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from machine import timed  # noqa: E402

import napari_xray as nx  # noqa: E402

ROWS = 112_120
BOXES = 984
REPEATS = 5
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "Data_Entry_2017_patient11.csv"


def write_entry_file(path: Path) -> None:
    header, *rows = SAMPLE.read_text().splitlines()
    with path.open("w") as out:
        out.write(header + "\n")
        for index in range(ROWS):
            fields = rows[index % len(rows)].split(",")
            patient, follow_up = divmod(index, 100)
            fields[0] = f"{patient + 1:08d}_{follow_up:03d}.png"
            fields[2], fields[3] = str(follow_up), str(patient + 1)
            out.write(",".join(fields) + "\n")


def write_box_file(path: Path) -> None:
    with path.open("w") as out:
        out.write("Image Index,Finding Label,Bbox [x,y,w,h],,,\n")
        for index in range(BOXES):
            out.write(f"{index + 1:08d}_000.png,Infiltrate,{225.084745762712 + index % 300},"
                      f"547.019216763771,86.7796610169491,79.1864406779661,,,\n")


def csv_only(path: Path) -> list:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        entries, boxes = Path(folder) / "Data_Entry_2017.csv", Path(folder) / "BBox_List_2017.csv"
        write_entry_file(entries)
        write_box_file(boxes)
        assert len(nx.read_entries(entries, problems=[])) == ROWS
        ours = timed(lambda: nx.read_entries(entries, problems=[]), REPEATS)
        floor = timed(lambda: csv_only(entries), REPEATS)
        pandas = timed(lambda: pd.read_csv(entries, header=None, skiprows=1, usecols=range(11)),
                       REPEATS)
        box_time = timed(lambda: nx.read_boxes(boxes, problems=[]), REPEATS)
    print(f"\nentry file, {ROWS:,} rows ({entries.name}); median (min) ms:")
    print(f"  napari_xray.read_entries   {ours[0] * 1e3:7.0f} ({ours[1] * 1e3:5.0f})"
          f"   target < 2000 ms: {'met' if ours[0] < 2 else 'missed'}")  # fmt: skip
    print(f"  csv.reader alone           {floor[0] * 1e3:7.0f} ({floor[1] * 1e3:5.0f})"
          f"   read_entries / csv = {ours[0] / floor[0]:.2f}×")  # fmt: skip
    print(f"  pandas.read_csv            {pandas[0] * 1e3:7.0f} ({pandas[1] * 1e3:5.0f})"
          f"   read_entries / pandas = {ours[0] / pandas[0]:.2f}×")  # fmt: skip
    print(f"box file, {BOXES} rows: read_boxes {box_time[0] * 1e3:.1f} "
          f"({box_time[1] * 1e3:.1f}) ms")  # fmt: skip


if __name__ == "__main__":
    main()
