"""Real servers for the integration tests: mosquitto (with or without the
chat plugin), redis-server and FerretDB (MongoDB wire protocol, SQLite
backend), each on a free loopback port in a temporary folder.

Every start waits until the server answers a real request; a server that
does not start raises HarnessError with the tail of its log, so a test that
needs it fails loudly instead of passing or skipping."""
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time

BUILD_DIR = os.environ.get("CHAT_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SANITIZE = os.environ.get("CHAT_SANITIZE") in ("1", "ON", "TRUE", "true")
FERRETDB_DIRS = ["/usr/local/bin", os.path.expanduser("~/.cache/chatbroker/bin")]


class HarnessError(RuntimeError):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """A base port whose n consecutive ports are all free now, for a stack
    that numbers its nodes' ports from a base (make run). Taken below the
    kernel's ephemeral range (32768 and up), so an outgoing connection of
    another test cannot take one of them between the check and the use."""
    import random
    for _ in range(200):
        base = random.randrange(20000, 32000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise HarnessError("no %d consecutive free ports" % n)


def start_run_stack(workdir, env, timeout=40):
    """scripts/run.sh (make run) with env, its output in workdir/run.out.
    Waits for its closing "Stop:" line and returns (process, output); if it
    exits or takes longer, stops it and raises HarnessError with the output."""
    root = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    outfile = os.path.join(str(workdir), "run.out")
    with open(outfile, "w") as out:
        proc = subprocess.Popen([os.path.join(root, "scripts", "run.sh")], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline and "Stop:" not in text and proc.poll() is None:
        time.sleep(0.2)
        with open(outfile) as f:
            text = f.read()
    if "Stop:" not in text:
        stop_run_stack(proc)
        with open(outfile) as f:
            raise HarnessError("make run did not come up:\n" + f.read())
    return proc, text


def stop_run_stack(proc):
    """Ctrl-C to run.sh, as a person would; waits for it to finish."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    proc.wait(30)


def find_binary(name, extra_dirs=()):
    path = shutil.which(name)
    if path:
        return path
    for d in extra_dirs:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    raise HarnessError("%s is not installed (run scripts/install-deps.sh --test)" % name)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def asan_env():
    """The sanitized plugin needs the ASan runtime loaded first in a broker
    that is not itself instrumented."""
    lib = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                         text=True).stdout.strip()
    return {"LD_PRELOAD": lib, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
            "UBSAN_OPTIONS": "print_stacktrace=1"}


SOURCE_DIR = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__),
                                                                 "..", "..")
QUEUE_KEYS = ("max_inflight_messages", "max_inflight_bytes", "max_queued_messages",
              "max_queued_bytes", "allow_duplicate_messages")


def broker_queue_limits():
    """The per-client queue limits of the repository's mosquitto.conf, as
    its lines: every test broker keeps what production keeps for a slow
    client (and the plugin checks its bridge bounds against them)."""
    lines = {}
    with open(os.path.join(SOURCE_DIR, "mosquitto.conf")) as f:
        for line in f:
            words = line.split()
            if len(words) == 2 and words[0] in QUEUE_KEYS:
                lines[words[0]] = line.strip()
    if len(lines) != len(QUEUE_KEYS):
        raise HarnessError("mosquitto.conf lacks %s" % sorted(set(QUEUE_KEYS) - set(lines)))
    return [lines[k] for k in QUEUE_KEYS]


class Server:
    """A child process in its own process group, logging to a file."""

    name = "server"

    def __init__(self, workdir):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.logfile = os.path.join(self.dir, self.name + ".log")
        self.log_start = 0  # where this run's lines begin in the log file

    def command(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def ready(self):
        return port_open(self.port)

    def start(self, timeout=30):
        log = open(self.logfile, "ab")
        self.log_start = log.tell()
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, env=self.env(),
                                     start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError("%s exited with %s at start:\n%s"
                                   % (self.name, self.proc.returncode, self.log()[-3000:]))
            if self.ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise HarnessError("%s did not answer within %ss:\n%s"
                           % (self.name, timeout, self.log()[-3000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.logfile, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def run_log(self):
        """What the current run wrote: a restarted server is not ready on
        the strength of its previous run's lines."""
        try:
            with open(self.logfile, "rb") as f:
                f.seek(self.log_start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _signal(self, sig):
        if self.alive():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self):
        """Stops gracefully, then by force; idempotent."""
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(10)

    def kill(self):
        """kill -9, as a crash would."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self):
        self.stop()
        return self.start()


class Mosquitto(Server):
    name = "mosquitto"

    def __init__(self, workdir, plugin_opts=None, extra_conf="", plugin=True,
                 build_dir=None):
        super().__init__(workdir)
        self.plugin = plugin
        self.plugin_opts = dict(plugin_opts or {})
        self.extra_conf = extra_conf
        self.build_dir = build_dir or BUILD_DIR
        self.conf = os.path.join(self.dir, "mosquitto.conf")

    def write_conf(self):
        lines = ["per_listener_settings false",
                 "allow_anonymous %s" % ("false" if self.plugin else "true"),
                 "persistence false", "log_dest stdout", "log_type all",
                 "max_keepalive 3600"] + broker_queue_limits() + [
                 "set_tcp_nodelay true",
                 # as root, mosquitto would switch to the "mosquitto" user
                 # and lose access to the test's private key files
                 "user %s" % getpass.getuser(),
                 "listener %d 127.0.0.1" % self.port]
        if self.plugin:
            so = os.path.abspath(os.path.join(self.build_dir, "authplugin", "chat_auth.so"))
            if not os.path.exists(so):
                raise HarnessError("plugin not built: %s" % so)
            lines.append("plugin " + so)
            lines += ["plugin_opt_%s %s" % kv for kv in self.plugin_opts.items()]
        lines.append(self.extra_conf)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def command(self):
        self.write_conf()
        # mosquitto logs to stdout with fprintf and never flushes: into a
        # file that is 4 KiB blocks, so a test reading the log would see a
        # line only once enough others followed it. Line-buffered instead.
        line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
        return line_buffered + [find_binary("mosquitto", ["/usr/sbin"]), "-c", self.conf]

    def env(self):
        env = dict(os.environ)
        if SANITIZE and self.plugin:
            env.update(asan_env())
        return env

    def sanitizer_reports(self):
        text = self.log()
        return [l for l in text.splitlines()
                if "ERROR: AddressSanitizer" in l or "runtime error:" in l
                or "ERROR: LeakSanitizer" in l]


# One password for every harness Redis of a test run, so that a component
# pointed at another instance of the same run (a test's fresh Redis) still
# authenticates with the settings it was given.
_REDIS_PASSWORD = os.urandom(16).hex()


class Redis(Server):
    """redis-server as production runs it: every write in the append-only
    file, synced before the reply, so a restart never forgets an issued seq;
    and a password (AUTH), so every test exercises it. password=None starts
    one without; user="name" makes the password an ACL user's (the default
    user then has another one). The password is in password_file for the components
    (auth_settings() gives their settings)."""

    name = "redis"

    def __init__(self, workdir, password=True, user=None, replica_of=None, extra_conf=""):
        super().__init__(workdir)
        self.password = _REDIS_PASSWORD if password is True else password
        self.user = user
        # replica_of: the Redis this one starts as a replica of (its
        # password is this one's); extra_conf: more redis.conf lines
        self.replica_of = replica_of
        self.extra_conf = extra_conf
        self.password_file = None
        if self.password:
            self.password_file = os.path.join(self.dir, "redis.password")
            with open(self.password_file, "w") as f:
                f.write(self.password + "\n")
            os.chmod(self.password_file, 0o600)

    def command(self):
        # the password goes in a file, not on the command line (ps shows that)
        conf = os.path.join(self.dir, "redis.conf")
        with open(conf, "w") as f:
            if self.password and self.user:
                # Not "user default off": Redis 7.0 then replays the AOF's
                # MULTI/EXEC blocks (our scripts' effects) with NOPERM and
                # loses them at restart. The default user gets a password of
                # its own, which the components do not know.
                f.write("user default on >%s ~* &* +@all\n" % os.urandom(16).hex())
                f.write("user %s on >%s ~* &* +@all\n" % (self.user, self.password))
            elif self.password:
                f.write("requirepass %s\n" % self.password)
            if self.password and (self.replica_of is not None or self.extra_conf):
                # a primary too may be made a replica (by Sentinel)
                f.write("masterauth %s\n" % self.password)
                if self.user:
                    f.write("masteruser %s\n" % self.user)
            if self.replica_of is not None:
                f.write("replicaof 127.0.0.1 %d\n" % self.replica_of.port)
            f.write(self.extra_conf)
        os.chmod(conf, 0o600)
        return [find_binary("redis-server"), conf, "--port", str(self.port),
                "--bind", "127.0.0.1", "--dir", self.dir, "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--daemonize", "no"]

    def auth_settings(self):
        """The settings a component needs to log in to this Redis."""
        out = {}
        if self.password_file:
            out["redis_password_file"] = self.password_file
        if self.user:
            out["redis_user"] = self.user
        return out

    def conf_lines(self):
        """redis_port and the AUTH settings, as config file lines."""
        return "".join("%s %s\n" % kv for kv in
                       [("redis_port", self.port)] + list(self.auth_settings().items()))

    def cli_env(self):
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return env

    def call(self, *args):
        """One command through redis-cli; returns its output, stripped."""
        cmd = [find_binary("redis-cli"), "-p", str(self.port)]
        if self.user:
            cmd += ["--user", self.user]
        r = subprocess.run(cmd + list(map(str, args)), capture_output=True, text=True,
                           timeout=10, env=self.cli_env())
        if r.returncode != 0:
            raise HarnessError("redis-cli %s: %s" % (args, r.stderr))
        return r.stdout.strip()

    def hello(self):
        """The RESP bytes that log a raw connection in (b"" without a password)."""
        if not self.password:
            return b""
        words = [b"AUTH"] + ([self.user.encode()] if self.user else []) + [self.password.encode()]
        return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)

    def ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(self.hello() + b"PING\r\n")
                want = (b"+OK\r\n" if self.password else b"") + b"+PONG"
                got = b""
                while len(got) < len(want):
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    got += chunk
                return got.startswith(want)
        except OSError:
            return False

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port


    def info(self, section="replication"):
        """INFO section as a dict (empty when it does not answer)."""
        try:
            text = self.call("INFO", section)
        except (HarnessError, subprocess.TimeoutExpired):
            return {}
        return dict(l.split(":", 1) for l in text.splitlines() if ":" in l)


class Sentinel(Server):
    """redis-sentinel (Debian's package; redis-server --sentinel else)
    watching `primary` under `name`, with a password of its own when
    password is set (in password_file, for redis_sentinel_password_file).
    Fast timings, for tests: down after down_ms, failover within a few
    seconds."""

    name = "sentinel"

    def __init__(self, workdir, primary, name="chat", quorum=2, down_ms=1000,
                 password=None):
        super().__init__(workdir)
        self.primary, self.master_name, self.quorum = primary, name, quorum
        self.down_ms = down_ms
        self.password = password
        self.password_file = None
        if password:
            self.password_file = os.path.join(self.dir, "sentinel.password")
            with open(self.password_file, "w") as f:
                f.write(password + "\n")
            os.chmod(self.password_file, 0o600)
        self.conf = os.path.join(self.dir, "sentinel.conf")
        # the sentinel rewrites its file (what it learnt): written once
        self._written = False

    def command(self):
        if not self._written:
            lines = ["port %d" % self.port, "bind 127.0.0.1", "daemonize no",
                     "dir %s" % self.dir,
                     "sentinel monitor %s 127.0.0.1 %d %d"
                     % (self.master_name, self.primary.port, self.quorum),
                     "sentinel down-after-milliseconds %s %d" % (self.master_name, self.down_ms),
                     "sentinel failover-timeout %s 4000" % self.master_name,
                     "sentinel parallel-syncs %s 2" % self.master_name]
            if self.primary.password:
                lines.append("sentinel auth-pass %s %s" % (self.master_name,
                                                            self.primary.password))
                if self.primary.user:
                    lines.append("sentinel auth-user %s %s" % (self.master_name,
                                                                self.primary.user))
            if self.password:
                lines += ["requirepass %s" % self.password,
                          "sentinel sentinel-pass %s" % self.password]
            with open(self.conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.chmod(self.conf, 0o600)
            self._written = True
        binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        if os.path.exists(binary):
            return [binary, self.conf]
        return [find_binary("redis-server"), self.conf, "--sentinel"]

    def call(self, *args):
        cmd = [find_binary("redis-cli"), "-p", str(self.port)]
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        r = subprocess.run(cmd + list(map(str, args)), capture_output=True, text=True,
                           timeout=10, env=env)
        if r.returncode != 0:
            raise HarnessError("redis-cli (sentinel) %s: %s" % (args, r.stderr))
        return r.stdout.strip()

    def primary_port(self):
        """The port of the primary this sentinel names now (None: no answer)."""
        try:
            out = self.call("SENTINEL", "get-master-addr-by-name", self.master_name).split()
        except (HarnessError, subprocess.TimeoutExpired):
            return None
        return int(out[1]) if len(out) == 2 and out[1].isdigit() else None

    def ready(self):
        return port_open(self.port) and self.primary_port() is not None


def sentinel_settings(sentinels):
    """The settings a component needs to find the primary through these."""
    out = {"redis_sentinels": ",".join("127.0.0.1:%d" % s.port for s in sentinels),
           "redis_master_name": sentinels[0].master_name}
    if sentinels[0].password_file:
        out["redis_sentinel_password_file"] = sentinels[0].password_file
    return out


class FerretDB(Server):
    name = "ferretdb"

    def command(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        return [find_binary("ferretdb", FERRETDB_DIRS), "--handler=sqlite",
                "--sqlite-url=file:%s/" % data,
                "--listen-addr=127.0.0.1:%d" % self.port, "--telemetry=disable",
                "--debug-addr=-", "--log-level=warn"]

    def ready(self):
        if not port_open(self.port):
            return False
        import pymongo
        try:
            c = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=500)
            c.admin.command("ping")
            c.close()
            return True
        except pymongo.errors.PyMongoError:
            return False

    @property
    def url(self):
        return "mongodb://127.0.0.1:%d/" % self.port


class Bridge(Server):
    """chat-bridge for one broker. Ready when it is connected to the broker
    and its feed is reading the stream."""

    name = "bridge"

    def __init__(self, workdir, broker, redis, keys, node, build_dir=None, **settings):
        super().__init__(workdir)
        self.broker, self.redis, self.keys, self.node = broker, redis, keys, node
        self.binary = os.path.join(build_dir or BUILD_DIR, "bridge", "chat-bridge")
        self.conf = os.path.join(self.dir, "bridge.conf")
        self.settings = {"jwt_alg": "HS256", "jwt_key_file": keys.secret_file,
                         "node_name": node, "mqtt_port": broker.port,
                         "redis_port": redis.port}
        self.settings.update(redis.auth_settings())
        self.settings.update(settings)  # a setting given as None is left out

    def command(self):
        with open(self.conf, "w") as f:
            f.write("".join("%s %s\n" % kv for kv in self.settings.items()
                            if kv[1] is not None))
        if not os.path.exists(self.binary):
            raise HarnessError("bridge not built: %s" % self.binary)
        return [self.binary, "--config", self.conf]

    def env(self):
        env = dict(os.environ)
        env.pop("CHAT_CONFIG", None)
        return env

    def ready(self):
        text = self.run_log()
        # and Redis holds the store's state (loaded by one of the bridges)
        return ("connected to the broker" in text and "feed " in text
                and self.redis.call("EXISTS", "chat:restored") == "1")

    def sanitizer_reports(self):
        return [l for l in self.log().splitlines()
                if "ERROR: AddressSanitizer" in l or "runtime error:" in l
                or "ERROR: LeakSanitizer" in l]


class Keys:
    """An HS256 secret and the matching config file for chatctl."""

    def __init__(self, workdir, build_dir=None):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.secret_file = os.path.join(self.dir, "jwt.secret")
        with open(self.secret_file, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(self.secret_file, 0o600)
        self.conf_file = os.path.join(self.dir, "chat.conf")
        with open(self.conf_file, "w") as f:
            f.write("jwt_alg HS256\njwt_key_file %s\n" % self.secret_file)
        self.chatctl = os.path.join(build_dir or BUILD_DIR, "chatctl", "chatctl")

    @property
    def secret(self):
        with open(self.secret_file, "rb") as f:
            return f.read().rstrip(b"\r\n")

    def plugin_opts(self, **extra):
        opts = {"jwt_alg": "HS256", "jwt_key_file": self.secret_file,
                "topic_prefix": "chat", "jwt_leeway": "5"}
        opts.update({k: str(v) for k, v in extra.items()})
        return opts

    def mint(self, user, ttl="1h", role="user"):
        r = subprocess.run([self.chatctl, "--config", self.conf_file, "token", user,
                            "--ttl", ttl, "--role", role], capture_output=True, text=True)
        if r.returncode != 0:
            raise HarnessError("chatctl token %s failed: %s" % (user, r.stderr))
        return r.stdout.strip()


def stored_messages(store_url, conv):
    """(seq, message dict) of every stored message of conv, read straight
    from the store's database (SQLite file or MongoDB), ascending."""
    import json
    if store_url.startswith("sqlite:"):
        import sqlite3
        db = sqlite3.connect(store_url[len("sqlite:"):], timeout=10)
        try:
            rows = db.execute("SELECT seq, json FROM messages WHERE conv = ? ORDER BY seq",
                              (conv,)).fetchall()
        finally:
            db.close()
        return [(seq, json.loads(text)) for seq, text in rows]
    import pymongo
    client = pymongo.MongoClient(store_url, serverSelectionTimeoutMS=5000)
    try:
        db = client.get_default_database("chat")
        return [(d["seq"], d) for d in db.messages.find({"conv": conv}).sort("seq", 1)]
    finally:
        client.close()


class WsFront(Server):
    """chat-wsfront for one node: the web app, the HTTP API and MQTT over
    WebSocket at /mqtt, in front of `broker`. Ready when it answers HTTP."""

    name = "wsfront"

    def __init__(self, workdir, broker, redis, keys, node, store_url, build_dir=None,
                 static_dir=None, **settings):
        super().__init__(workdir)
        build = build_dir or BUILD_DIR
        self.binary = os.path.join(build, "wsfront", "chat-wsfront")
        self.conf = os.path.join(self.dir, "wsfront.conf")
        self.settings = {"jwt_alg": "HS256", "jwt_key_file": keys.secret_file,
                         "node_name": node, "mqtt_port": broker.port,
                         "redis_port": redis.port, "store_url": store_url,
                         "http_port": self.port,
                         "static_dir": static_dir or os.path.join(build, "wsfront", "app")}
        self.settings.update(redis.auth_settings())
        # a setting given as None is left out
        self.settings.update({k: None if v is None else str(v) for k, v in settings.items()})

    def command(self):
        with open(self.conf, "w") as f:
            f.write("".join("%s %s\n" % kv for kv in self.settings.items()
                            if kv[1] is not None))
        if not os.path.exists(self.binary):
            raise HarnessError("wsfront not built: %s" % self.binary)
        return [self.binary, "--config", self.conf]

    def env(self):
        env = dict(os.environ)
        env.pop("CHAT_CONFIG", None)
        if SANITIZE:
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        return env

    def ready(self):
        return port_open(self.port) and "listening on" in self.run_log()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def sanitizer_reports(self):
        return [l for l in self.log().splitlines()
                if "ERROR: AddressSanitizer" in l or "runtime error:" in l
                or "ERROR: LeakSanitizer" in l]
