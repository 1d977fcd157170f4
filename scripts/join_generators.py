"""One variant's successive training runs joined into one curve, for notebook 02.

    python scripts/join_generators.py OUT.json FIRST.json [LATER.json ...] [--label FIRST=NAME ...]

Each input is a generators JSON of ``python -m geo full-gpu --stages generators`` (or an
already joined one), oldest first; a run continued with ``--steps N`` logs only its own
steps, and this puts them back together per variant (``geo.train.history.join_files``:
each run must continue the one before, with the same configuration). Draw the result with
notebook 02's ``precomputed`` parameter. ``--label FILE=NAME`` names a file in the joined
record, e.g. a copy taken out of git history as "figures/cpu/generators.json at COMMIT".
"""
from __future__ import annotations

import argparse
import sys

from geo.train.history import join_files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the joined generators JSON to write")
    ap.add_argument("inputs", nargs="+", help="generators JSON files, oldest run first")
    ap.add_argument("--label", action="append", default=[], metavar="FILE=NAME",
                    help="what the joined record calls FILE (default: its path)")
    a = ap.parse_args(argv)
    names = dict(x.split("=", 1) for x in a.label if "=" in x)
    bad = [x for x in a.label if "=" not in x or x.split("=", 1)[0] not in a.inputs]
    if bad:
        ap.error(f"--label {bad}: expected FILE=NAME with FILE one of the inputs")
    try:
        blob = join_files(a.inputs, a.out, labels=[names.get(p, p) for p in a.inputs])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for v, g in blob["generators"].items():
        print(f"{v}: {g['steps']} steps in {len(g['segments'])} segments, held-out IoU "
              f"{g['history']['iou'][-1] if g['history']['iou'] else None}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
