"""The leader of a script command's process group, so that the command never outlives the
process that runs it: ``python -S _lifeline.py FD PROGRAM ARG...``.

FD is the read end of a pipe whose write end only the adapter holds, and nothing is ever
written to it. When the adapter's process dies, however it dies (a worker killed with
SIGKILL, its whole process group killed, the OOM killer), the pipe reads end-of-file and this
process kills its group, the command with everything it started there. Otherwise it runs
PROGRAM, waits for it and ends the way it ended. It ignores SIGTERM: the adapter's one SIGTERM
to the group is meant for the command. Standard library only; it must start fast.
"""

import os
import signal
import sys
import threading

# Python ignores these at start-up; the command gets the usual defaults
_DEFAULTS = (signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ)


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    os.killpg(0, signal.SIGKILL)  # the adapter is gone: so is the command


def main() -> None:
    fd = int(sys.argv[1])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.set_inheritable(fd, False)
    threading.Thread(target=_watch, args=(fd,), daemon=True).start()
    pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ, setsigdef=_DEFAULTS)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # killed by a signal: end the same way, so the adapter sees it
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL needs no reset
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code & 0xFF)


if __name__ == "__main__":
    main()
