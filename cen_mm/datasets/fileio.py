# Copyright (c) cen_mm contributors. All rights reserved.
"""Atomic creation of a generated data folder."""
import contextlib
import os
import os.path as osp
import shutil
import tempfile
from typing import Iterator

__all__ = ['atomic_output_dir']


@contextlib.contextmanager
def atomic_output_dir(out_dir: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a scratch folder that becomes ``out_dir`` only on success.

    The scratch folder is a sibling of ``out_dir`` (same file system), so the
    final step is one ``rename``: readers never see a partial ``out_dir``, an
    interrupted writer leaves no ``out_dir`` behind, and with ``overwrite``
    the previous content survives until the new one is complete. If another
    process creates ``out_dir`` first (e.g. several ranks generating the same
    deterministic data), its result is kept and the scratch folder dropped.

    Args:
        out_dir (str): The folder to create. An existing empty folder counts
            as absent.
        overwrite (bool): Replace an existing non-empty ``out_dir``.
            Defaults to False.

    Yields:
        str: The scratch folder to write into.

    Raises:
        FileExistsError: ``out_dir`` exists, is not empty and ``overwrite``
            is False.
    """
    out_dir = osp.abspath(out_dir)

    def occupied() -> bool:
        return osp.lexists(out_dir) and not (osp.isdir(out_dir)
                                             and not os.listdir(out_dir))

    if occupied() and not overwrite:
        raise FileExistsError(
            f'{out_dir} exists and is not empty; pass overwrite=True '
            '(--overwrite) to replace it')
    parent, name = osp.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{name}.tmp-', dir=parent)
    os.chmod(tmp, 0o755)  # mkdtemp's 0o700 would survive the rename
    try:
        yield tmp
        if overwrite and occupied():
            old = tempfile.mkdtemp(prefix=f'.{name}.old-', dir=parent)
            os.rename(out_dir, osp.join(old, name))
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
            return
        try:
            os.rename(tmp, out_dir)  # replaces an empty folder on POSIX
        except OSError:
            if not occupied():
                raise
            # Another process finished first (same deterministic content).
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
