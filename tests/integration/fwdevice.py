"""The example firmware device (firmware-example/app, fw-chat) as a test
sees it: a subprocess whose stdout lines are events, read on a thread."""
import os
import re
import subprocess
import threading
import time

BUILD_DIR = os.environ.get("CHAT_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
BINARY = os.path.join(BUILD_DIR, "firmware-example", "fw-chat")
MSG = re.compile(r"^msg conv=(\S+) seq=(\d+) from=(\S+) body=(.*)$")


class Device:
    def __init__(self, port, user, token, room=None, device="board", **opts):
        assert os.path.exists(BINARY), "fw-chat not built: " + BINARY
        self.user = user
        args = [BINARY, "--host", "127.0.0.1", "--port", str(port), "--user", user,
                "--token", token]
        if device:
            args += ["--device", device]
        if room:
            args += ["--room", room]
        for k, v in opts.items():
            k = "--" + k.replace("_", "-")
            args += [k] if v is True else [k, str(v)]
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=env, text=True)
        self.lines = []
        self.times = []
        self.stderr = ""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.err_reader = threading.Thread(target=self._read_err, daemon=True)
        self.err_reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))
                self.times.append(time.time())

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr += line

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def count(self, prefix):
        return sum(1 for l in self.snapshot() if l.startswith(prefix))

    def wait_line(self, pred, timeout=10, after=0):
        """Waits for a line (index >= after) matching pred; returns its index."""
        if isinstance(pred, str):
            text = pred
            pred = lambda l: l.startswith(text)  # noqa: E731
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = self.snapshot()
            for i in range(after, len(lines)):
                if pred(lines[i]):
                    return i
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("device output has no matching line within %ss; it printed:\n%s\n%s"
                             % (timeout, "\n".join(self.snapshot()[-60:]), self.stderr[-3000:]))

    def messages(self, conv=None):
        """(conv, seq, from, body) of every shown message, in output order."""
        out = []
        for l in self.snapshot():
            m = MSG.match(l)
            if m and (conv is None or m.group(1) == conv):
                out.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
        return out

    def stop(self):
        """Stops the device (SIGTERM: it disconnects politely) and checks
        that it exited cleanly with no sanitizer report."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.reader.join(5)
        self.err_reader.join(5)
        assert "Sanitizer" not in self.stderr and "runtime error" not in self.stderr, \
            self.stderr[-4000:]
        assert self.proc.returncode == 0, "fw-chat exited with %s:\n%s" % (
            self.proc.returncode, self.stderr[-2000:])
