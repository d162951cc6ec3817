#!/usr/bin/env python3
"""A Hugging Face Hub stand-in for tests, on 127.0.0.1 only (standard library only).

Two servers: the Hub (resolve URLs, the repo API) and a CDN that the Hub redirects large (LFS)
files to, as huggingface.co does. Both count every request (GET /_stats) and can be told to
misbehave on the next requests for a file (GET /_fault?...), to test retries and resuming.

    python3 tests/hub/server.py --port 0 --cdn-port 0 \
        --repo sentence-transformers/all-MiniLM-L6-v2=.cache/models/all-MiniLM-L6-v2 \
        [--gated org/name --token SECRET]

The first line on stdout is {"port": P, "cdn_port": C}. The server exits when stdin closes, so
it never outlives the test that started it (`--forever`: until killed).

Hub: HEAD/GET /{repo}/resolve/{revision}/{path}
  - revision: main or the repo's commit (anything else: 404 RevisionNotFound)
  - small files: 200, ETag = git blob sha1, X-Repo-Commit, Content-Length, Range
  - LFS files (>= 1 MiB or weight extensions): 302 to the CDN with X-Linked-Etag (sha256),
    X-Linked-Size, X-Repo-Commit, and an ETag of the pointer file (which clients must not use)
  - unknown repo: 401 RepoNotFound; unknown file: 404 EntryNotFound (with X-Repo-Commit)
  - gated repos: 401 GatedRepo without a token, 403 GatedRepo with a wrong one
GET /api/models/{repo}[/revision/{revision}]: {"id", "sha", "siblings": [{"rfilename"}]}
GET /api/models/{repo}/tree/{revision}[/{path}]: the files (recursively) and folders, as the Hub lists them
CDN: HEAD/GET /{sha256}/{repo}/{path}?sig=...; ETag = sha256; Range. A request that carries
  Authorization is refused with 400 and counted (stats: cdn_authorization).
Both answer CORS as the Hub does, so that pages on another origin (the browser tests) can use
them: Access-Control-Allow-Origin on every answer, the headers a client reads exposed (ETag,
X-Repo-Commit, X-Linked-*, Content-Range, ...), and preflights (OPTIONS, not logged) allowing
Authorization and Range.
GET /_stats: {"requests": [{server, method, file, range, auth, status, ms}], "cdn_authorization": n}
  (ms: when the answer's status was sent, in milliseconds since the server started)
GET /_reset: clears the log and the faults.
GET /_rate?bytes_per_s=N: throttles every file body of both servers to N bytes/s in all, as one
  link shared by every connection would (0: unthrottled, the default; also `--rate N` at start).
GET /_fault?file=F&kind=K[&count=N][&skip=N][&after=BYTES][&status=S][&retry_after=SECS][&method=GET]
  kinds: status (answer S), drop (send AFTER body bytes then reset the connection), short (send
  AFTER bytes of a full Content-Length then close cleanly), corrupt (flip one byte of the body).
  count: how many requests it applies to (-1: until /_reset), after letting `skip` matching
  requests through. On either server. `file=*` matches every file.
  Hostile kinds (issue 17: a server that means harm; see tests/hub/hostile.rs):
    loop       302 back to the same URL
    chain      302 to a new URL each time (?hop=N), an endless chain
    offhost    302 to the same path on http://localhost:PORT (another host, the same server)
    huge       200 without Content-Length: the file, then endless bytes until the client hangs up
    huge_cl    the same with Content-Length: 10 GB
    lie        every answer says the file has `size` bytes (HEAD, Content-Range); the bytes are the
               file's, cut or padded with 'x' to that size
    cl         a 206 whose Content-Length is the range's length + `delta`
    commit     X-Repo-Commit is a new commit on every answer, and every revision is accepted
    drip       the body one byte every `interval` ms (default 1000)
    echo       answer `status` (default 403) with the request's token in X-Error-Message
    etag       the ETag (and X-Linked-Etag) is `value`; `value=$token` is the request's token
    commit_is  X-Repo-Commit is `value` (`$token` as for etag)
  GET /_stats also has "sent": {file: the most body bytes one huge answer wrote} and each
  request's "host".
"""

import argparse
import hashlib
import itertools
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What a page may read of an answer from another origin (huggingface.co exposes these too).
EXPOSED_HEADERS = ", ".join([
    "ETag", "X-Repo-Commit", "X-Linked-Etag", "X-Linked-Size", "Content-Range", "Content-Length",
    "Accept-Ranges", "X-Error-Code", "X-Error-Message", "Retry-After", "Link",
])

# Requests are logged with the milliseconds since this moment (`ms`), to see a load's timeline.
STARTED = time.monotonic()

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".onnx", ".pt", ".h5", ".msgpack")
LFS_MIN_SIZE = 1 << 20


class Repo:
    def __init__(self, repo_id, root):
        self.id = repo_id
        self.root = os.path.abspath(root)
        self.files = {}
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                self.files[rel] = full
        listing = "\n".join(f"{f}:{os.path.getsize(p)}" for f, p in sorted(self.files.items()))
        self.commit = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()
        self._hashes = {}
        self._lock = threading.Lock()

    def is_lfs(self, rel):
        return rel.endswith(LFS_SUFFIXES) or os.path.getsize(self.files[rel]) >= LFS_MIN_SIZE

    def sha256(self, rel):
        with self._lock:
            if rel not in self._hashes:
                h = hashlib.sha256()
                with open(self.files[rel], "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                self._hashes[rel] = h.hexdigest()
            return self._hashes[rel]

    def lfs_pointer(self, rel):
        """The pointer file git holds for an LFS file."""
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256(rel)}\nsize {os.path.getsize(self.files[rel])}\n".encode()

    def git_sha1(self, rel):
        """The git blob id: of the file itself, or of its LFS pointer for an LFS file (as git
        stores it). Computed once: the Hub lists them without reading the files."""
        with self._lock:
            if ("git", rel) in self._hashes:
                return self._hashes[("git", rel)]
        if self.is_lfs(rel):
            data = self.lfs_pointer(rel)
        else:
            with open(self.files[rel], "rb") as f:
                data = f.read()
        oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        with self._lock:
            self._hashes[("git", rel)] = oid
        return oid


class Link:
    """A link of `rate` bytes/s that every file body of both servers shares, as parallel
    connections share a real one: each slice of a body takes the link's next free time, and its
    sender waits until the slice would have passed. Idle time earns no credit, so there is no
    burst beyond one slice."""

    SLICE = 64 << 10

    def __init__(self, rate):
        self.rate = rate
        self.lock = threading.Lock()
        self.free_at = 0.0

    def send(self, connection, f, start, end):
        offset = start
        while offset < end:
            n = min(end - offset, self.SLICE) if self.rate else end - offset
            if self.rate:
                with self.lock:
                    now = time.monotonic()
                    self.free_at = max(now, self.free_at) + n / self.rate
                    done_at = self.free_at
            sent = connection.sendfile(f, offset, n)
            if sent == 0:
                break
            offset += sent
            if self.rate:
                wait = done_at - time.monotonic()
                if wait > 0:
                    time.sleep(wait)


class State:
    def __init__(self, repos, gated, token):
        self.repos = repos
        self.gated = set(gated)
        self.token = token
        self.lock = threading.Lock()
        self.log = []
        self.faults = []
        self.cdn_authorization = 0
        self.cdn_port = None
        self.port = None
        self.sent = {}
        self.commits = itertools.count(1)
        self.link = Link(0)

    def take_fault(self, file, method, kinds):
        with self.lock:
            for f in self.faults:
                if f["file"] in (file, "*") and f["kind"] in kinds and f.get("method", method) == method and f["count"] != 0:
                    if f["skip"] > 0:
                        f["skip"] -= 1
                        return None
                    if f["count"] > 0:
                        f["count"] -= 1
                    return dict(f)
        return None


def make_handler(state, server_name):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # As real servers do: without it the body waits on the client's delayed ACK of the
            # headers (tens of ms per request).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def end_headers(self):
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Expose-Headers", EXPOSED_HEADERS)
            super().end_headers()

        def do_OPTIONS(self):
            # A CORS preflight: any method this server has, the headers asked for (Authorization,
            # Range). Browsers send them on their own; they are not requests of the protocol.
            self.send_response(204)
            self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers", "*"))
            self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def record(self, file, status):
            with state.lock:
                state.log.append({
                    "server": server_name,
                    "method": self.command,
                    "file": file,
                    "range": self.headers.get("Range"),
                    "auth": self.headers.get("Authorization") is not None,
                    "host": self.headers.get("Host"),
                    "status": status,
                    "ms": round((time.monotonic() - STARTED) * 1000, 1),
                })

        def reply(self, status, headers=(), body=b"", file=None):
            if file is not None:
                self.record(file, status)
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def do_HEAD(self):
            self.route()

        def do_GET(self):
            self.route()

        def route(self):
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            if path.startswith("/_"):
                return self.control(path, urllib.parse.parse_qs(url.query))
            if server_name == "cdn":
                return self.cdn(path)
            if path.startswith("/api/models/"):
                return self.api(path[len("/api/models/"):])
            return self.resolve(path)

        def control(self, path, query):
            q = {k: v[0] for k, v in query.items()}
            if path == "/_stats":
                with state.lock:
                    body = json.dumps({"requests": state.log, "cdn_authorization": state.cdn_authorization, "sent": state.sent}).encode()
                return self.reply(200, [("Content-Type", "application/json")], body)
            if path == "/_reset":
                with state.lock:
                    state.log.clear()
                    state.faults.clear()
                    state.cdn_authorization = 0
                    state.sent.clear()
                return self.reply(200, body=b"ok")
            if path == "/_fault":
                fault = {"file": q["file"], "kind": q["kind"], "count": int(q.get("count", 1)), "skip": int(q.get("skip", 0))}
                for key in ("after", "status", "retry_after", "size", "delta", "interval"):
                    if key in q:
                        fault[key] = int(q[key])
                if "value" in q:
                    fault["value"] = q["value"]
                if "method" in q:
                    fault["method"] = q["method"]
                with state.lock:
                    state.faults.append(fault)
                return self.reply(200, body=b"ok")
            if path == "/_rate":
                state.link.rate = float(q.get("bytes_per_s", 0))
                return self.reply(200, body=b"ok")
            return self.reply(404)

        def find_repo(self, rest):
            """(repo, remainder) for the longest repo id that `rest` starts with."""
            for repo_id in sorted(state.repos, key=len, reverse=True):
                if rest == repo_id or rest.startswith(repo_id + "/"):
                    return state.repos[repo_id], rest[len(repo_id) + 1:]
            return None, rest

        def authorized(self, repo, file):
            if repo.id not in state.gated:
                return True
            auth = self.headers.get("Authorization")
            if auth is None:
                self.reply(401, [("X-Error-Code", "GatedRepo"), ("X-Error-Message", "Access to this repository is restricted.")], file=file)
                return False
            if auth != f"Bearer {state.token}":
                self.reply(403, [("X-Error-Code", "GatedRepo"), ("X-Error-Message", "Your token has no access.")], file=file)
                return False
            return True

        def api(self, rest):
            repo, tail = self.find_repo(rest)
            if repo is None:
                return self.reply(401, [("X-Error-Code", "RepoNotFound")], file="")
            if not self.authorized(repo, ""):
                return
            kind, _, rest = tail.partition("/")
            revision, _, prefix = rest.partition("/")
            if kind and (kind not in ("revision", "tree") or revision not in ("main", repo.commit)):
                return self.reply(404, [("X-Error-Code", "RevisionNotFound")], file="")
            if kind == "tree":
                # Every file under `prefix` (the listing is always recursive here), with its folders.
                entries, folders = [], set()
                for f in sorted(repo.files):
                    if prefix and not f.startswith(prefix.rstrip("/") + "/"):
                        continue
                    parts = f.split("/")
                    for i in range(1, len(parts)):
                        folders.add("/".join(parts[:i]))
                    size = os.path.getsize(repo.files[f])
                    entry = {"type": "file", "oid": repo.git_sha1(f), "size": size, "path": f}
                    if repo.is_lfs(f):
                        entry["lfs"] = {"oid": repo.sha256(f), "size": size, "pointerSize": len(repo.lfs_pointer(f))}
                    entries.append(entry)
                entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(folders)]
                return self.reply(200, [("Content-Type", "application/json")], json.dumps(entries).encode(), file="")
            body = json.dumps({"id": repo.id, "modelId": repo.id, "sha": repo.commit, "private": False,
                               "siblings": [{"rfilename": f} for f in sorted(repo.files)]}).encode()
            return self.reply(200, [("Content-Type", "application/json")], body, file="")

        def resolve(self, path):
            repo, tail = self.find_repo(path.lstrip("/"))
            if repo is None or not tail.startswith("resolve/"):
                return self.reply(401, [("X-Error-Code", "RepoNotFound"), ("X-Error-Message", "Repository not found")], file="")
            revision, _, file = tail[len("resolve/"):].partition("/")
            if not self.authorized(repo, file):
                return
            fault = state.take_fault(file, self.command, ("status",))
            if fault:
                headers = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
                return self.reply(fault.get("status", 503), headers, file=file)
            if self.redirected(file):
                return
            commit_fault = state.take_fault(file, self.command, ("commit", "commit_is"))
            if revision not in ("main", repo.commit) and not (commit_fault and commit_fault["kind"] == "commit"):
                return self.reply(404, [("X-Error-Code", "RevisionNotFound")], file=file)
            commit = [("X-Repo-Commit", repo.commit)]
            if commit_fault:
                value = self.fault_value(commit_fault) if commit_fault["kind"] == "commit_is" else f"{next(state.commits):040x}"
                commit = [("X-Repo-Commit", value)]
            echo = state.take_fault(file, self.command, ("echo",))
            if echo:
                said = f"you sent {self.headers.get('Authorization')}"
                return self.reply(echo.get("status", 403), commit + [("X-Error-Message", said)], file=file)
            if file not in repo.files:
                return self.reply(404, commit + [("X-Error-Code", "EntryNotFound"), ("X-Error-Message", "Entry not found")], file=file)
            etag_fault = state.take_fault(file, self.command, ("etag",))
            lie = state.take_fault(file, self.command, ("lie",))
            size = lie["size"] if lie else os.path.getsize(repo.files[file])
            if repo.is_lfs(file):
                sha = self.fault_value(etag_fault) if etag_fault else repo.sha256(file)
                location = f"http://127.0.0.1:{state.cdn_port}/{repo.sha256(file)}/{repo.id}/{urllib.parse.quote(file)}?sig=test"
                return self.reply(302, commit + [
                    ("Location", location),
                    ("X-Linked-Etag", f'"{sha}"'),
                    ("X-Linked-Size", str(size)),
                    ("ETag", '"0000000000000000000000000000000000000000"'),
                ], file=file)
            etag = self.fault_value(etag_fault) if etag_fault else repo.git_sha1(file)
            self.send_file(repo, file, f'"{etag}"', commit, lie)

        def fault_value(self, fault):
            value = fault.get("value", "")
            if value == "$token":
                return (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            return value

        def redirected(self, file):
            """Answers a redirect fault (loop, chain, offhost); False when there is none."""
            fault = state.take_fault(file, self.command, ("loop", "chain", "offhost"))
            if not fault:
                return False
            url = urllib.parse.urlsplit(self.path)
            if fault["kind"] == "loop":
                location = self.path
            elif fault["kind"] == "chain":
                hop = int(urllib.parse.parse_qs(url.query).get("hop", ["0"])[0])
                location = f"{url.path}?hop={hop + 1}"
            else:
                port = state.port if server_name == "hub" else state.cdn_port
                location = f"http://localhost:{port}{self.path}"
            self.reply(302, [("Location", location)], file=file)
            return True

        def cdn(self, path):
            parts = path.lstrip("/").split("/", 1)
            if len(parts) != 2:
                return self.reply(404)
            repo, file = self.find_repo(parts[1])
            if repo is None or file not in repo.files or repo.sha256(file) != parts[0]:
                return self.reply(404, file=file)
            if self.headers.get("Authorization") is not None:
                with state.lock:
                    state.cdn_authorization += 1
                return self.reply(400, body=b"the CDN must never receive the Hub token", file=file)
            fault = state.take_fault(file, self.command, ("status",))
            if fault:
                headers = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
                return self.reply(fault.get("status", 503), headers, file=file)
            if self.redirected(file):
                return
            self.send_file(repo, file, f'"{parts[0]}"', [], state.take_fault(file, self.command, ("lie",)))

        def send_file(self, repo, file, etag, extra, lie=None):
            full = repo.files[file]
            size = lie["size"] if lie else os.path.getsize(full)
            if self.command == "GET" and self.endless(repo, file, etag, extra):
                return
            start, end, status = 0, size, 200
            header = self.headers.get("Range")
            if header and header.startswith("bytes="):
                a, _, b = header[len("bytes="):].partition("-")
                try:
                    start = int(a)
                    end = min(int(b) + 1, size) if b else size
                except ValueError:
                    start, end = size, size
                if start >= size or start >= end:
                    return self.reply(416, [("Content-Range", f"bytes */{size}")], file=file)
                status = 206
            headers = extra + [("ETag", etag), ("Accept-Ranges", "bytes"), ("Content-Type", "application/octet-stream")]
            if status == 206:
                headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
            fault = None if self.command == "HEAD" else state.take_fault(file, self.command, ("drop", "short", "corrupt", "cl", "drip"))
            self.record(file, status)
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            delta = fault.get("delta", 0) if fault and fault["kind"] == "cl" else 0
            self.send_header("Content-Length", str(end - start + delta))
            self.end_headers()
            if self.command == "HEAD":
                return
            if lie:
                with open(full, "rb") as f:
                    f.seek(start)
                    data = f.read(end - start)
                self.wfile.write(data + b"x" * (end - start - len(data)))
                return
            if fault and fault["kind"] == "cl":
                with open(full, "rb") as f:
                    f.seek(start)
                    self.wfile.write(f.read(end - start))
                self.close_connection = True
                return
            if fault and fault["kind"] == "drip":
                with open(full, "rb") as f:
                    f.seek(start)
                    data = f.read(end - start)
                self.trickle(file, data, fault.get("interval", 1000) / 1000)
                return
            with open(full, "rb") as f:
                if fault and fault["kind"] in ("drop", "short"):
                    f.seek(start)
                    self.wfile.write(f.read(min(fault.get("after", (end - start) // 2), end - start)))
                    self.wfile.flush()
                    if fault["kind"] == "drop":
                        # An abrupt reset (RST), as a dropped connection looks to the client. A
                        # reset throws away bytes not yet read, so the client gets a moment first:
                        # the test then knows where the body broke.
                        time.sleep(0.3)
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    else:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    self.connection.close()
                    self.close_connection = True
                    return
                if fault and fault["kind"] == "corrupt":
                    f.seek(start)
                    data = bytearray(f.read(end - start))
                    data[len(data) // 2] ^= 0xFF
                    self.wfile.write(bytes(data))
                    return
                # The kernel copies the file: the server is not the bottleneck of a benchmark
                # (unless throttled to a link's rate on purpose).
                state.link.send(self.connection, f, start, end)

        def count_sent(self, file, n):
            with state.lock:
                state.sent[file] = max(state.sent.get(file, 0), n)

        def trickle(self, file, data, interval):
            """One byte every `interval` seconds, until the data ends or the client hangs up."""
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(interval)
            except OSError:
                pass
            self.close_connection = True

        def endless(self, repo, file, etag, extra):
            """A huge/huge_cl answer: the whole file, then bytes without end (until the client
            hangs up); True when it answered."""
            fault = state.take_fault(file, "GET", ("huge", "huge_cl"))
            if not fault:
                return False
            self.record(file, 200)
            self.send_response(200)
            for k, v in extra + [("ETag", etag), ("Content-Type", "application/octet-stream")]:
                self.send_header(k, v)
            if fault["kind"] == "huge_cl":
                self.send_header("Content-Length", str(10 ** 10))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            with open(repo.files[file], "rb") as f:
                data = f.read()
            filler = b"x" * (1 << 16)
            sent = 0
            try:
                self.wfile.write(data)
                sent += len(data)
                while True:
                    self.wfile.write(filler)
                    sent += len(filler)
            except OSError:
                pass
            self.count_sent(file, sent)
            return True

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cdn-port", type=int, default=0)
    parser.add_argument("--repo", action="append", default=[], help="ORG/NAME=FOLDER")
    parser.add_argument("--gated", action="append", default=[], help="a repo id that needs --token")
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--forever", action="store_true", help="ignore stdin; run until killed")
    parser.add_argument("--rate", type=float, default=0, help="bytes/s of every file body together (0: unthrottled)")
    args = parser.parse_args()
    repos = {}
    for spec in args.repo:
        repo_id, _, folder = spec.partition("=")
        if not os.path.isdir(folder):
            sys.exit(f"{folder} is not a folder")
        repos[repo_id] = Repo(repo_id, folder)
    state = State(repos, args.gated, args.token)
    state.link.rate = args.rate
    hub = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state, "hub"))
    cdn = ThreadingHTTPServer(("127.0.0.1", args.cdn_port), make_handler(state, "cdn"))
    hub.daemon_threads = cdn.daemon_threads = True
    state.cdn_port = cdn.server_address[1]
    state.port = hub.server_address[1]
    for server in (hub, cdn):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": hub.server_address[1], "cdn_port": state.cdn_port}), flush=True)
    try:
        if args.forever:
            threading.Event().wait()
        # Until whoever started it goes away.
        while sys.stdin.buffer.read(1 << 16):
            pass
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
