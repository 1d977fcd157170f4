"""A Human3.6M copy in the smallest lossless form a GPU run can carry, and back.

    python scripts/device_data.py pack SRC_DIR DST.xz     # any folder, here, before the GPU run
    python scripts/device_data.py stage .dev/h36m .dev/carried.xz --weights DG_AUG
                                                          # the pack + weights/DG_AUG.* in one file
    python scripts/device_data.py unpack DST.xz OUT_DIR   # on the device (gpu_run.sh does it)

Why: what travels to a GPU machine is at most 64 MiB -- the tracked tree (with the
committed weights, about 60 MiB) plus what is carried. The compact pack's two npz are
36.9 MB; float32 arrays compress badly as they are, but with their bytes regrouped into
planes (all first bytes, then all second bytes, ...) xz takes them to about 70% of that
(25.5 MB measured on the shared pack). Lossless: every array comes back bit for bit, and
``unpack`` checks that the unpacked folder has the same ``geo.data.identity.data_identity``
as the packed one (npz are identified by their arrays, so the re-saved npz are the same
data: run folders and ``weights/`` made on either copy match).

The same goes for the committed bf16 weights a GPU run continues training from (``.pt``
files: 2-byte planes, about 68% of their size; they come back byte for byte, so their
sha256 sidecars still hold). A GPU run that continues DG+AUG carries one file: the pack and
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
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runs from a bare checkout too

FORMAT = "geo-device-data/1"
MAX_WEIGHT_BYTES = 16 << 20   # geo.weights.MAX_BYTES: no committed weight file is larger


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


def _outside(dst: Path, src: Path) -> None:
    """PackError unless ``dst`` lies outside the folder ``src``: a file written into the
    data would change its identity (and be packed into the next pack)."""
    real_src, real_dst = os.path.realpath(src), os.path.realpath(dst)
    if os.path.commonpath([real_src, real_dst]) == real_src:
        raise PackError(f"{dst}: inside the data folder {src}; expected a path outside it")


def pack(src, dst, preset: int = 6) -> dict:
    """Pack the folder ``src`` into the file ``dst`` (written atomically). Returns the header."""
    from geo.data.identity import data_identity
    from geo.results import atomic_write

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise PackError(f"{src}: not a folder; expected a Human3.6M copy (e.g. the compact pack)")
    _outside(dst, src)
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


MAX_HEADER = 16 << 20      # the header of the shared pack plus weights is a few KB
MAX_UNPACKED = 1 << 30     # what a GPU run can carry (64 MiB compressed) unpacks to far less


def _inflate(dec: lzma.LZMADecompressor, f, n: int, src) -> bytes:
    """The next ``n`` bytes of the xz stream ``f`` (never more in memory: a small file
    that would decompress to gigabytes is stopped at ``n``); PackError naming ``src``."""
    out = bytearray()
    try:
        while len(out) < n:
            if dec.needs_input:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
            else:
                chunk = b""
            out += dec.decompress(chunk, max_length=n - len(out))
            if dec.eof:
                break
    except lzma.LZMAError as e:
        raise PackError(f"{src}: cannot read as xz ({e}); expected a file made by `device_data.py pack`") from e
    return bytes(out)


def _check_header(header, src, root: Path) -> int:
    """The total payload bytes ``header`` declares, after checking every entry: a plain
    name inside ``root`` (:func:`geo.safety.confined`), sizes that are counts; PackError
    naming ``src`` otherwise, before anything is written."""
    from geo.safety import UnsafeFile, confined

    if not isinstance(header, dict) or header.get("format") != FORMAT:
        got = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise PackError(f"{src}: format {got!r}; expected {FORMAT!r}")
    files = header.get("files")
    if not isinstance(files, list) or not isinstance(header.get("identity"), str):
        raise PackError(f"{src}: the header has no 'files' list or 'identity'; expected a file made by `pack`")
    total, names = 0, set()
    for e in files:
        try:
            confined(root, e["name"], src)
            if e["name"] in names:
                raise PackError(f"{src}: {e['name']!r} is listed twice")
            names.add(e["name"])
            if e["kind"] == "bytes":
                ok = isinstance(e["size"], int) and e["size"] >= 0 and e.get("stride", 1) in (1, 2)
                total += e["size"] if ok else 0
            else:
                ok = e["kind"] == "npz" and all(
                    isinstance(k, str) and isinstance(nb, int) and nb >= 0 and isinstance(shape, list)
                    and np.dtype(dt).itemsize * int(np.prod(shape, dtype=np.int64)) == nb
                    and not np.dtype(dt).hasobject for k, dt, shape, nb in e["arrays"])
                total += sum(a[3] for a in e["arrays"]) if ok else 0
        except UnsafeFile as err:
            raise PackError(str(err)) from err
        except (KeyError, TypeError, ValueError) as err:
            raise PackError(f"{src}: header entry {str(e)[:200]} is malformed ({type(err).__name__}: {err})") from err
        if not ok:
            raise PackError(f"{src}: header entry {str(e)[:200]} has bad sizes; expected byte counts")
        if total > MAX_UNPACKED:
            raise PackError(f"{src}: declares more than {MAX_UNPACKED >> 20} MiB of data; refused")
    return total


def unpack(src, out) -> Path:
    """Unpack ``src`` (made by :func:`pack`) into the folder ``out``, which must not exist
    or be empty; checks the identity. The header is checked before anything is written
    (names stay inside ``out``, at most :data:`MAX_UNPACKED` bytes declared) and at most
    what it declares is decompressed. The folder appears complete or not at all."""
    from geo.commit import temp_dir
    from geo.data.identity import data_identity

    src, out = Path(src), Path(out)
    dec = lzma.LZMADecompressor()
    try:
        f = open(src, "rb")
    except OSError as e:
        raise PackError(f"{src}: cannot read ({e.strerror or e}); expected a file made by `device_data.py pack`") from e
    with f:
        n = int.from_bytes(_inflate(dec, f, 8, src).ljust(8, b"\0"), "little")
        if not 0 < n <= MAX_HEADER:
            raise PackError(f"{src}: header length {n}; expected a file made by `device_data.py pack`")
        try:
            header = json.loads(_inflate(dec, f, n, src))
        except ValueError as e:
            raise PackError(f"{src}: no header ({e}); expected a file made by `device_data.py pack`") from e
        total = _check_header(header, src, out)
        raw = _inflate(dec, f, total + 1, src)   # one byte more than declared: a longer payload is corrupt
    if len(raw) != total:
        raise PackError(f"{src}: payload of {len(raw)}{'+' if len(raw) > total else ''} bytes, the header declares "
                        f"{total}; the file is corrupt")
    if out.exists() and any(out.iterdir()):
        raise PackError(f"{out}: exists and is not empty; expected a new folder to unpack into")
    work = temp_dir(out)   # swept if this process is killed
    tmp = work / "data"    # no dot in its own name: data_identity skips those
    try:
        pos = 0
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
        got = data_identity(str(tmp))
        if got != header["identity"]:
            raise PackError(f"{src}: unpacked data has identity {got[:12]}, packed {header['identity'][:12]}; corrupt")
        os.chmod(tmp, 0o755)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def stage(data, dst, weights=(), preset: int = 6) -> dict:
    """Pack what a GPU run carries into ``dst``: the Human3.6M copy ``data`` as ``h36m/`` and
    the committed weights of each stem in ``weights`` (e.g. ``DG_AUG``: its ``.pt`` files
    and JSON sidecar) as ``weights/``."""
    from geo.weights import weights_dir

    data = Path(data)
    if not data.is_dir():
        raise PackError(f"{data}: not a folder; expected a Human3.6M copy")
    _outside(dst, data)
    from geo.commit import temp_dir
    from geo.safety import UnsafeFile, confined

    dst = Path(dst)
    work = temp_dir(dst)   # beside dst, swept if this process is killed (not left in /tmp)
    try:
        root = work / "carried"
        shutil.copytree(data, root / "h36m", ignore=shutil.ignore_patterns(".*"))
        for stem in weights:
            side = weights_dir() / f"{stem}.json"
            if not side.is_file():
                raise PackError(f"{side}: not found; expected committed weights (geo.weights)")
            try:   # the sidecar and the files it lists (not e.g. the regressor heads beside them)
                listed = json.loads(side.read_text())["files"]
                files = [side] + [confined(weights_dir(), fn, side) for fn in listed]
            except UnsafeFile as e:
                raise PackError(str(e)) from e
            except (ValueError, KeyError, TypeError) as e:
                raise PackError(f"{side}: no 'files' list ({e}); expected a geo.weights sidecar") from e
            (root / "weights").mkdir(exist_ok=True)
            for f in files:
                if not f.is_file():
                    raise PackError(f"{f}: listed in {side.name} but missing")
                if "/" in f.relative_to(weights_dir()).as_posix() or f.stat().st_size > MAX_WEIGHT_BYTES:
                    raise PackError(f"{f}: listed in {side.name}, but not a weights file of at most "
                                    f"{MAX_WEIGHT_BYTES >> 20} MiB beside it; not staged")
                shutil.copy2(f, root / "weights" / f.name)
        return pack(root, dst, preset)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--preset", type=int, default=6, help="xz preset 0-9 (6: about a minute for the pack)")
    st = sub.add_parser("stage", help="pack a Human3.6M copy and committed weights into one file for a GPU run")
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
