"""Files a command writes (a backup, an export, a plot): checked before anything is computed or written, so a
path that cannot be written is one line naming it (BadInputError, exit 2) and nothing is left behind."""

from __future__ import annotations

import os
from pathlib import Path

from fks_pipelines.lib.errors import BadInputError


def check_output(output: Path, what: str, *, create_folders: bool = False) -> None:
    """``output`` is a file name whose folder exists and is writable (or, with ``create_folders``, whose nearest
    existing ancestor is a writable folder); else a BadInputError naming ``what`` and the path."""
    if not str(output).strip() or output.name in ("", ".", "..") or output.is_dir():
        raise BadInputError(f"{str(output)!r} is not a file name", where=what)
    parent = output.parent
    if create_folders:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if not parent.exists():
        raise BadInputError(f"cannot write {output}: no folder {parent}", where=what)
    if not parent.is_dir():
        raise BadInputError(f"cannot write {output}: {parent} is not a folder", where=what)
    if not os.access(parent, os.W_OK):
        raise BadInputError(f"cannot write {output}: {parent} is not writable", where=what)
