"""The single-file executable's entry point: what the ``small-yi`` console script runs, plus two things
only a frozen program needs.

- ``small-yi -m smallyi.MODULE ARGS`` runs that module as ``python -m`` would: frozen, ``sys.executable``
  is this executable, and the server starts its GitOps rendering process as
  ``sys.executable -m smallyi.gitops.worker``.
- The onefile launcher runs Python in a child process and is the process others see and signal. It
  passes catchable signals on, but a SIGKILL (``kill -9``, the rendering process's time limit) would
  leave Python running on its own: the kernel is asked to kill it when the launcher dies.

PyInstaller freezes this script (``packaging/small-yi.spec``).
"""

import os
import signal
import sys


def onefile() -> bool:
    """Whether this is the onefile build: its files are unpacked into a ``_MEIxxxxxx`` temporary folder
    (a onedir build keeps them in ``_internal`` beside the executable, with no launcher process)."""
    return os.path.basename(getattr(sys, "_MEIPASS", "")).startswith("_MEI")


def die_with_launcher() -> None:
    """PR_SET_PDEATHSIG: SIGKILL this process when its parent, the onefile launcher, exits; and exit now
    if the launcher already has (it was killed while this process was starting)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    try:
        launched_by_us = os.readlink(f"/proc/{os.getppid()}/exe") == os.readlink("/proc/self/exe")
    except OSError:
        launched_by_us = False
    if not launched_by_us:
        os._exit(128 + signal.SIGKILL)


def run_module(argv: list[str]) -> None:
    """``-m MODULE ARGS``: only small-yi's own modules, which are the ones the executable carries."""
    import runpy

    module, args = argv[0], argv[1:]
    if not module.startswith("smallyi."):
        sys.exit(f"small-yi -m: {module} is not a small-yi module")
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    if getattr(sys, "frozen", False) and sys.platform == "linux" and onefile():
        die_with_launcher()
    if len(sys.argv) > 2 and sys.argv[1] == "-m":
        run_module(sys.argv[2:])
    else:
        from smallyi.cli.main import main

        main()
