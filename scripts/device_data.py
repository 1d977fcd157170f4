"""A Human3.6M copy in the smallest lossless form a GPU lease can carry, and back.

    python scripts/device_data.py pack SRC_DIR DST.xz     # any folder, here, before the lease
    python scripts/device_data.py stage .dev/h36m .dev/carried.xz --weights DG_AUG
                                                          # the pack + weights/DG_AUG.* in one file
    python scripts/device_data.py unpack DST.xz OUT_DIR   # on the device (gpu_run.sh does it)

Why: what travels to a lent GPU machine is at most 64 MiB -- the tracked tree (with the
committed weights, about 60 MiB) plus what is carried. The compact pack's two npz are
36.9 MB; float32 arrays compress badly as they are, but with their bytes regrouped into
planes (all first bytes, then all second bytes, ...) xz takes them to about 70% of that
(25.5 MB measured on the shared pack). Lossless: every array comes back bit for bit, and
``unpack`` checks that the unpacked folder has the same ``geo.experiments.data_identity``
as the packed one (npz are identified by their arrays, so the re-saved npz are the same
data: run folders and ``weights/`` made on either copy match).

The same goes for the committed bf16 weights a lease continues training from (``.pt``
files: 2-byte planes, about 68% of their size; they come back byte for byte, so their
sha256 sidecars still hold). A lease that continues DG+AUG carries one file: the pack and
``weights/DG_AUG.*`` staged in one folder (``scripts/gpu_run.sh`` unpacks it).

Format: xz of [8-byte little-endian header length][JSON header][payload]; the header lists
each file (relative name; ``bytes`` with their stride -- 1: as they are, 2: in 2-byte
planes -- or ``npz`` with each array's key, dtype, shape and byte count, the payload
holding each array's byte planes) and the identity.
Files and folders whose name starts with a dot are left out, as ``data_identity`` does.
"""
from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runs from a bare checkout too

FORMAT = "geo-device-data/1"


class PackError(ValueError):
    """Bad input to pack/unpack; the message names the file and what was expected."""


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _planes(a: np.ndarray) -> bytes:
    """An array's bytes regrouped by byte position (what makes float32 compress)."""
    b = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return b.reshape(-1, a.dtype.itemsize).T.tobytes() if a.dtype.itemsize > 1 else b.tobytes()


def _unplanes(buf: bytes, dtype: str, shape) -> np.ndarray:
    dt = np.dtype(dtype)
    b = np.frombuffer(buf, np.uint8)
    if dt.itemsize > 1:
        b = b.reshape(dt.itemsize, -1).T
    return np.ascontiguousarray(b).reshape(-1).view(dt).reshape(shape)


def pack(src, dst, preset: int = 6) -> dict:
    """Pack the folder ``src`` into the file ``dst`` (written atomically). Returns the header."""
    from geo.experiments import data_identity
    from geo.results import atomic_write

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise PackError(f"{src}: not a folder; expected a Human3.6M copy (e.g. the compact pack)")
    entries, payload = [], []
    for p in _files(src):
        name = p.relative_to(src).as_posix()
        if p.suffix == ".npz":
            try:
                with np.load(p, allow_pickle=False) as z:
                    arrays = [(k, z[k]) for k in sorted(z.files)]
            except (OSError, ValueError, EOFError) as e:
                raise PackError(f"{p}: cannot read as an npz ({e}); expected a numpy .npz archive") from e
            entries.append({"name": name, "kind": "npz",
                            "arrays": [[k, a.dtype.str, list(a.shape), a.nbytes] for k, a in arrays]})
            payload += [_planes(a) for _, a in arrays]
        else:
            b = p.read_bytes()
            stride = 2 if p.suffix == ".pt" and len(b) % 2 == 0 else 1   # bf16 weights: 2-byte planes
            entries.append({"name": name, "kind": "bytes", "size": len(b), "stride": stride})
            payload.append(_planes(np.frombuffer(b, f"<u{stride}")) if stride > 1 else b)
    if not entries:
        raise PackError(f"{src}: no files to pack")
    header = {"format": FORMAT, "identity": data_identity(str(src)), "files": entries}
    head = json.dumps(header).encode()
    comp = lzma.LZMACompressor(preset=preset)
    out = [comp.compress(len(head).to_bytes(8, "little") + head)]
    out += [comp.compress(b) for b in payload]
    out.append(comp.flush())
    atomic_write(dst, b"".join(out))
    return header


def unpack(src, out) -> Path:
    """Unpack ``src`` (made by :func:`pack`) into the folder ``out``, which must not exist
    or be empty; checks the identity. The folder appears complete or not at all."""
    from geo.experiments import data_identity

    src, out = Path(src), Path(out)
    try:
        raw = lzma.decompress(src.read_bytes())
    except (OSError, lzma.LZMAError) as e:
        raise PackError(f"{src}: cannot read as xz ({e}); expected a file made by `device_data.py pack`") from e
    n = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise PackError(f"{src}: no header ({e}); expected a file made by `device_data.py pack`") from e
    if header.get("format") != FORMAT:
        raise PackError(f"{src}: format {header.get('format')!r}; expected {FORMAT!r}")
    if out.exists() and any(out.iterdir()):
        raise PackError(f"{out}: exists and is not empty; expected a new folder to unpack into")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.partial-", dir=out.parent))  # no dot: data_identity skips those
    try:
        pos = 8 + n
        for e in header["files"]:
            path = tmp / e["name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            if e["kind"] == "bytes":
                stride = e.get("stride", 1)
                b = raw[pos:pos + e["size"]]
                path.write_bytes(_unplanes(b, f"<u{stride}", (-1,)).tobytes() if stride > 1 else b)
                pos += e["size"]
                continue
            arrays = {}
            for k, dtype, shape, nbytes in e["arrays"]:
                arrays[k] = _unplanes(raw[pos:pos + nbytes], dtype, shape)
                pos += nbytes
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            path.write_bytes(buf.getvalue())
        if pos != len(raw):
            raise PackError(f"{src}: {len(raw) - pos} bytes left over; the file is corrupt")
        got = data_identity(str(tmp))
        if got != header["identity"]:
            raise PackError(f"{src}: unpacked data has identity {got[:12]}, packed {header['identity'][:12]}; corrupt")
        os.chmod(tmp, 0o755)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def stage(data, dst, weights=(), preset: int = 6) -> dict:
    """Pack what a lease carries into ``dst``: the Human3.6M copy ``data`` as ``h36m/`` and
    the committed weights of each stem in ``weights`` (e.g. ``DG_AUG``: its ``.pt`` files
    and JSON sidecar) as ``weights/``."""
    from geo.weights import weights_dir

    data = Path(data)
    if not data.is_dir():
        raise PackError(f"{data}: not a folder; expected a Human3.6M copy")
    with tempfile.TemporaryDirectory(prefix="geo-lease-") as t:
        root = Path(t) / "carried"
        shutil.copytree(data, root / "h36m", ignore=shutil.ignore_patterns(".*"))
        for stem in weights:
            side = weights_dir() / f"{stem}.json"
            if not side.is_file():
                raise PackError(f"{side}: not found; expected committed weights (geo.weights)")
            try:   # the sidecar and the files it lists (not e.g. the regressor heads beside them)
                files = [side] + [weights_dir() / fn for fn in json.loads(side.read_text())["files"]]
            except (ValueError, KeyError, TypeError) as e:
                raise PackError(f"{side}: no 'files' list ({e}); expected a geo.weights sidecar") from e
            (root / "weights").mkdir(exist_ok=True)
            for f in files:
                if not f.is_file():
                    raise PackError(f"{f}: listed in {side.name} but missing")
                shutil.copy2(f, root / "weights" / f.name)
        return pack(root, dst, preset)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--preset", type=int, default=6, help="xz preset 0-9 (6: about a minute for the pack)")
    st = sub.add_parser("stage", help="pack a Human3.6M copy and committed weights into one file for a lease")
    st.add_argument("data")
    st.add_argument("dst")
    st.add_argument("--weights", nargs="*", default=[], help="stems in weights/, e.g. DG_AUG")
    st.add_argument("--preset", type=int, default=6)
    u = sub.add_parser("unpack")
    u.add_argument("src")
    u.add_argument("out")
    a = ap.parse_args(argv)
    try:
        if a.cmd in ("pack", "stage"):
            h = pack(a.src, a.dst, a.preset) if a.cmd == "pack" else stage(a.data, a.dst, a.weights, a.preset)
            raw = sum(f["size"] if f["kind"] == "bytes" else sum(x[3] for x in f["arrays"]) for f in h["files"])
            print(f"{a.dst}: {Path(a.dst).stat().st_size / 1e6:.1f} MB for {len(h['files'])} files "
                  f"({raw / 1e6:.1f} MB of arrays and bytes); identity {h['identity'][:12]}")
        else:
            print(f"unpacked into {unpack(a.src, a.out)}")
    except PackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
