"""What a file says is data, never code and never a path: the one gate for reading files.

Three helpers, used wherever geo reads a file it did not just write:

* :func:`load_tensors` -- ``torch.load`` with ``weights_only=True``: tensors, dicts, lists,
  numbers and strings come back; a pickle that would run code (``__reduce__``) is refused.
* :func:`confined` -- a file name read from a file (a sidecar's ``files``, a pack's
  header) as a path inside one folder: one plain relative name, no ``..``, not absolute,
  and no symlinked folder on the way out of it.
* :func:`plain_name` -- a value read from a file that becomes part of an *output* path
  (a profile, a tag) must be one plain file-name component, or nothing is written.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path, PurePosixPath


class UnsafeFile(ValueError):
    """A file asks for something geo never does for a file: run code, or name a path
    outside its folder. The message names the file and what was expected."""


def load_tensors(src, where=None, map_location="cpu"):
    """``torch.load`` of ``src`` (a path or bytes) restricted to plain data
    (``weights_only=True``): a file whose unpickling would call anything else raises
    :class:`UnsafeFile`, one that is no torch file at all ValueError, both naming
    ``where`` (default: ``src``)."""
    import pickle

    import torch

    where = where if where is not None else src
    f = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
    try:
        return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any global it does not know: the file holds more than
        # tensors and numbers (perhaps code), and is not loaded
        raise UnsafeFile(f"{where}: holds objects other than tensors, dicts, lists and numbers "
                         "(refused by torch.load(weights_only=True)); expected a file written by geo") from e
    except (OSError, EOFError, RuntimeError, ValueError, IndexError, KeyError, TypeError) as e:
        raise ValueError(f"{where}: not a torch file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                         "expected a file written by geo") from e


def confined(root, name, where=None) -> Path:
    """``root / name`` for a relative ``name`` read from a file (``where``, for the
    message), after checking that it stays inside ``root``: a non-empty string, relative,
    with no ``..``, ``\\`` or NUL, whose folders stay inside ``root`` once symlinks are
    resolved.
    Anything else raises :class:`UnsafeFile`."""
    src = f"{where}: " if where is not None else ""
    if not isinstance(name, str) or not name or "\0" in name or "\\" in name:
        raise UnsafeFile(f"{src}file name {name!r} is not a plain relative name; expected e.g. 'DG_AUG.phi.pt'")
    pure = PurePosixPath(name)
    if pure.is_absolute() or os.path.isabs(name) or any(p in ("..", "") for p in name.split("/")):
        raise UnsafeFile(f"{src}file name {name!r} leaves its folder {root}; expected a name inside it")
    root = Path(root)
    path = root / pure
    # the folders on the way must not lead out (a symlinked sub-folder); the file itself
    # may be a link the user made (weights linked into a folder)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path.parent)]) != real_root:
        raise UnsafeFile(f"{src}file name {name!r} resolves outside its folder {root} (a symlink?); "
                         "expected a file inside it")
    return path


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def plain_name(value, what: str) -> str:
    """``value`` when it can be one component of an output path: letters, digits and
    ``_ . + -``, starting with a letter or digit (so never ``..``, ``/`` or hidden);
    else :class:`UnsafeFile` naming ``what`` (where the value came from)."""
    if not isinstance(value, str) or not _PLAIN.fullmatch(value) or len(value) > 100:
        raise UnsafeFile(f"{what} {value!r} cannot name a folder or file; expected a plain name "
                         "(letters, digits, '_', '.', '+', '-')")
    return value
