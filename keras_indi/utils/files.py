"""Writing files so that a crash never leaves one half-written, and their digests (no Keras
import here).

The command line's fast restore path (`keras_indi.backend.restore_programs`) writes its PNG
files with these, without importing Keras; `keras_indi.callbacks` uses them for checkpoints
and logs.
"""

import hashlib
import os
import uuid


def file_digest(path):
    """The SHA-256 of a file's content, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_path(path):
    """Flush a file or a directory entry to disk (best effort: not every filesystem allows it)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def temporary_sibling(path):
    """A hidden, unique temporary path in the folder of `path`, with the same extension
    (Keras picks the file format from it): ``dir/.name.tmp-1a2b3c4d.keras``.

    >>> temporary_sibling("runs/model.keras").startswith("runs/.model.tmp-")
    True
    """
    folder, name = os.path.split(os.fspath(path))
    stem, extension = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.tmp-{uuid.uuid4().hex[:8]}{extension}")


def replace_atomically(path, write):
    """Call ``write(temporary)`` on a temporary file next to `path`, flush it to disk and
    rename it onto `path` (``os.replace``): `path` is never seen half-written, and a failure
    (a kill, a full disk, an error) leaves the previous `path` intact."""
    path = os.fspath(path)
    temporary = temporary_sibling(path)
    try:
        write(temporary)
        fsync_path(temporary)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise
    fsync_path(os.path.dirname(os.path.abspath(path)))
