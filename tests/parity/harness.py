"""What the parity scripts share: a failure line that names the script
("<script>: FAIL: <message>", exit 1), and running a command that must
succeed."""
import os
import subprocess
import sys

SCRIPT = os.path.splitext(os.path.basename(sys.argv[0]))[0]
TAIL = 3000  # characters of a failed command's stdout and stderr shown: where its error is


def fail(msg):
    print(SCRIPT + ": FAIL: " + msg)
    sys.exit(1)


def run(*cmd):
    """cmd's standard output; fails naming the command, its exit code and output if it exits non-zero."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        fail("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-TAIL:], p.stderr[-TAIL:]))
    return p.stdout
