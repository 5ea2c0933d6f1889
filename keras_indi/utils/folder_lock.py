"""A lock on a folder that one process writes at a time (the output folder of `keras-indi train`).

`FolderLock` holds an operating-system lock on a hidden file in the folder, ``flock`` on Linux
and macOS (``msvcrt.locking`` on Windows). The operating system releases it when the process
ends, however it ends (SIGKILL, a crash, a power cut when the folder is local), so a lock left
by a dead process never blocks the next run: it is simply taken over. The file holds the
holder's process id, host and start time, for the message a refused process prints.

>>> with FolderLock("runs/denoising", purpose="keras-indi train"):  # doctest: +SKIP
...     ...  # only this process writes runs/denoising here

No heavy imports: the command line uses it before Keras is loaded.
"""

import datetime
import errno
import json
import os
import socket

LOCK_NAME = ".keras-indi.lock"
# errno values of a file system that does not support locks.
_NO_LOCKS = {getattr(errno, name) for name in ("ENOLCK", "EOPNOTSUPP", "ENOSYS") if hasattr(errno, name)}


class FolderInUseError(RuntimeError):
    """The folder is locked by another live process (the message says which one)."""


def _try_lock(descriptor, folder):
    """Take the lock of the open file `descriptor` (in `folder`) without waiting; False if
    another process holds it. On a file system without locks, warns and returns True."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            os.lseek(descriptor, 0, os.SEEK_SET)
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in _NO_LOCKS:  # a file system without locks (some network ones)
            import sys

            print(
                f"warning: the file system of {folder!r} does not support locks: make sure that no "
                "other process writes this folder.",
                file=sys.stderr,
                flush=True,
            )
            return True
        raise
    return True


class FolderLock:
    """An exclusive lock on `folder` for the life of this object (or of a ``with`` block).

    `acquire` creates `folder` if needed and raises `FolderInUseError` when another live process
    holds the lock. `release` (or leaving the ``with`` block) unlocks and deletes the lock file,
    and deletes `folder` again when `acquire` created it and it is still empty.

    Args:
        folder: the folder to lock.
        purpose: what the holder does there, for the messages (e.g. ``"keras-indi train"``).
    """

    def __init__(self, folder, purpose="keras-indi"):
        self.folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.purpose = purpose
        self.descriptor = None
        self.created_folder = False

    def holder(self):
        """What the lock file says about its holder (a dict, maybe empty)."""
        try:
            with open(self.path) as file:
                holder = json.load(file)
            return holder if isinstance(holder, dict) else {}
        except (OSError, ValueError):
            return {}

    def acquire(self):
        if self.descriptor is not None:
            return self
        if not os.path.isdir(self.folder):
            try:
                os.makedirs(self.folder)
                self.created_folder = True
            except FileExistsError:  # created meanwhile by another process
                pass
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(descriptor, self.folder):
                os.close(descriptor)
                raise FolderInUseError(self._in_use_message())
            # A holder that released the lock deletes the file: if it did so between our
            # open and our lock, we hold the lock of a deleted file. Start again then.
            try:
                same = os.path.samestat(os.fstat(descriptor), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(descriptor)
        self.descriptor = descriptor
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "since": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, json.dumps(record).encode())
        return self

    def _in_use_message(self):
        holder = self.holder()
        who = f"process {holder['pid']}" if "pid" in holder else "another process"
        if holder.get("host") and holder.get("host") != socket.gethostname():
            who += f" on {holder['host']}"
        since = f", since {holder['since']}" if holder.get("since") else ""
        return (
            f"{self.folder!r} is in use by {holder.get('purpose', self.purpose)} ({who}{since}). Two runs "
            "writing one folder would overwrite each other's files: wait until that run ends (or stop "
            "it), or choose another folder."
        )

    def release(self):
        if self.descriptor is None:
            return
        try:
            os.remove(self.path)  # while still locked: no other process holds it now
        except OSError:
            pass
        os.close(self.descriptor)  # unlocks
        self.descriptor = None
        if self.created_folder:
            try:
                os.rmdir(self.folder)  # only if still empty
            except OSError:
                pass
            self.created_folder = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exception):
        self.release()
        return False
