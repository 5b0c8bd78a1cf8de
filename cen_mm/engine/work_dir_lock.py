# Copyright (c) cen_mm contributors. All rights reserved.
"""One training per work dir at a time."""
import contextlib
import os
import os.path as osp
import socket
import time
from typing import Iterator

__all__ = ['work_dir_lock', 'LOCK_NAME']

LOCK_NAME = '.cen_mm_train.lock'


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[str]:
    """Hold an exclusive lock on ``work_dir`` for the ``with`` block.

    Two trainings writing into one work dir would mix their configs, logs
    and checkpoints (and remove each other's checkpoints); the second one
    is refused. The lock is an ``flock`` on ``{work_dir}/.cen_mm_train.lock``,
    released by the OS when the holder exits, even after SIGKILL, so a
    killed run never leaves a stale lock. The file records who holds it.
    Without ``fcntl`` (Windows) the block runs unlocked.

    Args:
        work_dir (str): The run's work dir (created if missing).

    Yields:
        str: The lock file's path.

    Raises:
        RuntimeError: Another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield ''
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 1024, 0).decode(errors='replace').strip()
            raise RuntimeError(
                f'work dir {work_dir} is in use by another training '
                f'({holder or "holder unknown"}; lock file {path}). Two '
                'runs in one work dir would mix configs, logs and '
                'checkpoints: wait for it to finish, or use another '
                '--work-dir.') from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, f'pid {os.getpid()} on {socket.gethostname()}, since '
            f'{time.strftime("%Y-%m-%d %H:%M:%S")}'.encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
