"""Run `keras-indi train` in this process with one injected fault (used by test_train_faults.py).

Usage: ``python fault_injection.py FAULT ARGUMENTS...`` where ARGUMENTS are those of
``keras-indi train`` and FAULT says what happens when, as ``ACTION@SELECTOR``:

* ACTION: ``kill`` (SIGKILL), ``term`` (SIGTERM), ``int`` (SIGINT, as Ctrl-C), ``enospc``
  (the disk is full from then on: every later write of the run raises ``OSError(ENOSPC)``),
  ``fsize`` (a 4 KiB file-size limit from then on: the operating system refuses every write
  past it, in C code such as HDF5's too), ``pause`` (write ``PAUSE_FILE`` and wait until it is
  deleted, to hold the run in the middle of a write) or ``none`` (only trace);
  ``kill``/``term``/``int`` take an optional delay, ``kill+0.02``: the signal is sent that many
  seconds after the event, while the write goes on.
* SELECTOR: ``[KIND:]PATTERN#N``: the N-th (1-based) write event of this process whose path
  (relative to ``--output``) matches the regular expression PATTERN (``re.search``), and whose
  kind is KIND when given. Write events are the operations on files under ``--output``:
  ``write`` (opening a file for writing), ``rename`` (its target), ``mkdir``, ``remove`` and
  ``rmtree``.

``TRACE_FILE`` (environment), when set, receives one line per write event: ``kind path``.
The audit hooks of ``sys.addaudithook`` see every such operation made from Python (not those
of C libraries such as HDF5, which ``fsize`` reaches). POSIX only (signals, ``resource``).
"""

import errno
import os
import re
import signal
import sys
import threading
import time

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
SIGNALS = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "int": signal.SIGINT}


def _path(value):
    if isinstance(value, int) or value is None:
        return None
    try:
        return os.path.abspath(os.fsdecode(value))
    except TypeError:
        return None


class Fault:
    """The audit hook: counts write events under `root` and fires the fault once."""

    def __init__(self, spec, root, trace_path=None):
        action, _, selector = spec.partition("@")
        action, _, delay = action.partition("+")
        self.action = action
        self.delay = float(delay) if delay else 0.0
        match = re.fullmatch(r"(?:(write|rename|mkdir|remove|rmtree):)?(.*?)(?:#(\d+))?", selector)
        self.kind, pattern, occurrence = match.groups()
        self.pattern = re.compile(pattern)
        self.occurrence = int(occurrence or 1)
        self.root = os.path.abspath(root) + os.sep
        self.trace = open(trace_path, "a") if trace_path else None
        self.seen = 0
        self.fired = False
        self.disk_full = False
        self.busy = False

    def _event(self, name, arguments):
        if name == "open":
            path, mode, flags = arguments
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITE_FLAGS
            )
            return ("write", _path(path)) if writing else None
        if name == "os.rename":
            return "rename", _path(arguments[1])
        if name == "os.mkdir":
            return "mkdir", _path(arguments[0])
        if name == "os.remove":
            return "remove", _path(arguments[0])
        if name == "shutil.rmtree":
            return "rmtree", _path(arguments[0])
        return None

    def __call__(self, name, arguments):
        if self.busy:
            return
        event = self._event(name, arguments)
        if event is None or event[1] is None or not event[1].startswith(self.root):
            return
        kind, path = event
        self.busy = True
        try:
            if self.trace is not None:
                self.trace.write(f"{kind} {path[len(self.root):]}\n")
                self.trace.flush()
            if self.disk_full and kind in ("write", "mkdir", "rename"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            if self.fired or (self.kind and kind != self.kind) or not self.pattern.search(path[len(self.root):]):
                return
            self.seen += 1
            if self.seen != self.occurrence:
                return
            self.fired = True
            self.fire(kind, path)
        finally:
            self.busy = False

    def fire(self, kind, path):
        if self.action in SIGNALS:
            number = SIGNALS[self.action]
            if self.delay:
                threading.Timer(self.delay, os.kill, (os.getpid(), number)).start()
            else:
                os.kill(os.getpid(), number)
                time.sleep(0.05)  # SIGKILL lands here; SIGINT/SIGTERM run their handler next
        elif self.action == "enospc":
            self.disk_full = True
            if kind in ("write", "mkdir", "rename"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        elif self.action == "fsize":
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write returns EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        elif self.action == "pause":
            pause_file = os.environ["PAUSE_FILE"]
            with open(pause_file, "w") as file:
                file.write(f"{kind} {path}\n")
            while os.path.exists(pause_file):
                time.sleep(0.05)


def main(argv):
    spec, arguments = argv[0], argv[1:]
    root = arguments[arguments.index("--output") + 1]
    sys.addaudithook(Fault(spec, root, os.environ.get("TRACE_FILE")))
    from keras_indi.apps.cli import main as cli_main

    return cli_main(["train", *arguments])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
