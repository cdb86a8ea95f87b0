"""A small LazyFS-like FUSE filesystem: written data reaches the disk only on fsync.

Power-loss tests (RELIABILITY.md G.1 row S6) need a filesystem that forgets
what an application wrote but never synced, the way a machine that loses power
forgets its page cache. LazyFS (github.com/dsrhaslab/lazyfs) does that, but is
a C++ build that cannot be installed here; this is a Python stand-in on
``mfusepy`` (ctypes bindings for libfuse 3), run as its own process::

    python tests/lazyfs.py BACKING MOUNT CONTROL [--ignore-fsync]

What it shares with LazyFS:

* file *data* written through MOUNT is kept in this process's own page cache
  (4 KiB pages) and reaches BACKING only on ``fsync``/``fdatasync`` of that
  file; ``close`` (FUSE flush/release) persists nothing, as in LazyFS;
* the file size is cached with the data: ``write`` past the end and
  ``truncate`` change the size seen through MOUNT at once, the backing file
  is cut or extended at the next fsync;
* reads see the cached pages merged over the backing file;
* ``lazyfs::clear-cache`` drops every unsynced write (the power loss).

What it does differently:

* control is a Unix stream socket at CONTROL (LazyFS reads commands from a
  FIFO and signals completion on a second one): a client sends one command
  line and gets one reply line once the command is done, so a test knows the
  cache is gone before it goes on;
* only ``clear-cache`` and ``display-cache-usage`` exist (no checkpoint and
  none of LazyFS's torn-write/split-write fault injections);
* metadata operations (create, mkdir, unlink, rename, chmod, utimens) go
  straight to BACKING and are never lost. LazyFS also persists these directly;
  a power loss that loses a create or a rename needs a stricter model than
  either offers;
* the cache is unbounded (LazyFS evicts pages when its configured size is full,
  which writes them to the backing file without fsync);
* ``--ignore-fsync`` makes fsync a no-op, a disk that lies about its cache:
  then nothing written survives a power loss, which lets a test show that its
  checks catch lost data.

SQLite's ``-shm`` file is mapped shared: FUSE without ``direct_io`` supports
that (the kernel writes dirty mapped pages back through ``write``), so it is
cached like any other file; it is not durable state, and SQLite rebuilds it
after a crash. The kernel's own page cache of the mount can still hold data
this process dropped, so a test unmounts and mounts again after a power loss.
Unmounting never persists the cache: stopping this process is a power loss too.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = 4096
CLEAR = "lazyfs::clear-cache"
USAGE = "lazyfs::display-cache-usage"


@dataclass
class CachedFile:
    """The unsynced state of one backing inode.

    ``valid`` is how much of the backing file still counts: a truncate below it
    hides the backing bytes past the cut until an fsync makes the cut real, so
    a later extension reads zeros there, as it would on a real filesystem.
    """

    size: int
    valid: int
    pages: dict[int, bytearray] = field(default_factory=dict)

    def dirty_bytes(self) -> int:
        return len(self.pages) * PAGE


class LazyOperations:
    """The FUSE operations; built by :func:`main` on top of ``mfusepy.Operations``."""

    use_ns = True  # times as integer nanoseconds (mfusepy's non-deprecated mode)

    def __init__(self, backing: str, control: str, *, ignore_fsync: bool = False) -> None:
        self.root = os.path.realpath(backing)
        self.control = control
        self.ignore_fsync = ignore_fsync
        self.mutex = threading.RLock()
        self.cache: dict[int, CachedFile] = {}  # backing inode -> unsynced state
        self.open_inodes: dict[int, int] = {}  # fh (a backing fd) -> inode
        self.stats = {"synced": 0, "dropped_files": 0, "dropped_bytes": 0}

    # -- helpers -----------------------------------------------------------------

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _cached(self, ino: int, fd: int) -> CachedFile:
        entry = self.cache.get(ino)
        if entry is None:
            size = os.fstat(fd).st_size
            entry = self.cache[ino] = CachedFile(size=size, valid=size)
        return entry

    def _clean_page(self, entry: CachedFile, fd: int, index: int) -> bytearray:
        """Page ``index`` as the backing file holds it, zero past ``entry.valid``."""
        start = index * PAGE
        page = bytearray(os.pread(fd, PAGE, start)) if start < entry.valid else bytearray()
        page.extend(bytes(PAGE - len(page)))
        cut = entry.valid - start
        if 0 <= cut < PAGE:
            page[cut:] = bytes(PAGE - cut)
        return page

    def _persist(self, ino: int, fd: int) -> None:
        """What fsync does: write this inode's cached pages and size, then sync them."""
        entry = self.cache.pop(ino, None)
        if entry is not None:
            for index, page in sorted(entry.pages.items()):
                start = index * PAGE
                if start < entry.size:
                    os.pwrite(fd, bytes(page[: entry.size - start]), start)
            os.ftruncate(fd, entry.size)
            self.stats["synced"] += entry.dirty_bytes()
        os.fsync(fd)

    def _drop_if_gone(self, ino: int) -> None:
        """Forget a deleted inode's cache once nothing holds it open (its number is reused)."""
        if ino not in self.open_inodes.values():
            self.cache.pop(ino, None)

    def clear_cache(self) -> str:
        """The power loss: every write not yet fsynced is gone."""
        with self.mutex:
            files = len(self.cache)
            dropped = sum(entry.dirty_bytes() for entry in self.cache.values())
            self.cache.clear()
            self.stats["dropped_files"] += files
            self.stats["dropped_bytes"] += dropped
        return f"cleared files={files} bytes={dropped}"

    def usage(self) -> str:
        with self.mutex:
            files = len(self.cache)
            dirty = sum(entry.dirty_bytes() for entry in self.cache.values())
            stats = " ".join(f"{key}={value}" for key, value in self.stats.items())
        return f"usage files={files} bytes={dirty} {stats}"

    # -- control socket ----------------------------------------------------------

    def serve_control(self) -> None:
        """Answer one command per connection on the control socket."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.control)
        server.listen(4)
        while True:
            conn, _ = server.accept()
            with conn:
                line = conn.makefile("rb").readline().decode().strip()
                if line == CLEAR:
                    reply = self.clear_cache()
                elif line == USAGE:
                    reply = self.usage()
                else:
                    reply = f"error unknown command {line!r}"
                conn.sendall(reply.encode() + b"\n")

    def init(self, path: str) -> None:
        threading.Thread(target=self.serve_control, daemon=True).start()

    # -- metadata: straight to the backing directory ---------------------------

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        with self.mutex:
            st = os.fstat(fh) if fh is not None else os.lstat(self._full(path))
            attrs = {
                key: getattr(st, key)
                for key in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino")
            }
            attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
            entry = self.cache.get(st.st_ino)
            if entry is not None:
                attrs["st_size"] = entry.size
            return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._full(path))]

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._full(path), amode):
            raise OSError(errno.EACCES, "access denied")
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._full(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files")
        return {key: getattr(st, key) for key in (*keys, "f_flag", "f_frsize", "f_namemax")}

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._full(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._full(path))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._full(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._full(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._full(path))
        else:
            os.utime(self._full(path), ns=times)
        return 0

    def unlink(self, path: str) -> int:
        with self.mutex:
            ino = os.lstat(self._full(path)).st_ino
            os.unlink(self._full(path))
            self._drop_if_gone(ino)
        return 0

    def rename(self, old: str, new: str) -> int:
        with self.mutex:
            try:
                replaced: int | None = os.lstat(self._full(new)).st_ino
            except FileNotFoundError:
                replaced = None
            os.rename(self._full(old), self._full(new))
            if replaced is not None:
                self._drop_if_gone(replaced)
        return 0

    # -- files: data through the cache -------------------------------------------

    def _open_backing(self, path: str, flags: int, mode: int = 0o644) -> int:
        # Always read-write: fsync through any descriptor must be able to write
        # the cached pages. O_APPEND and O_TRUNC are the kernel's business (it
        # sends the offset, or a truncate, through this filesystem).
        keep = flags & ~(os.O_ACCMODE | os.O_APPEND | os.O_TRUNC)
        fd = os.open(self._full(path), keep | os.O_RDWR, mode)
        self.open_inodes[fd] = os.fstat(fd).st_ino
        return fd

    def create(self, path: str, mode: int, flags: int = os.O_WRONLY) -> int:
        with self.mutex:
            existed = os.path.lexists(self._full(path))
            fd = self._open_backing(path, flags | os.O_CREAT, mode)
            if not existed:  # a reused inode number must not inherit stale pages
                self.cache.pop(self.open_inodes[fd], None)
            return fd

    def open(self, path: str, flags: int) -> int:
        with self.mutex:
            return self._open_backing(path, flags)

    def release(self, path: str, fh: int) -> int:
        with self.mutex:
            ino = self.open_inodes.pop(fh)
            gone = os.fstat(fh).st_nlink == 0
            os.close(fh)
            if gone:
                self._drop_if_gone(ino)
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0  # close() persists nothing: only fsync does (as in LazyFS)

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        if self.ignore_fsync:
            return 0
        with self.mutex:
            self._persist(self.open_inodes[fh], fh)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        return 0  # metadata is never cached

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        with self.mutex:
            entry = self.cache.get(self.open_inodes[fh])
            if entry is None:
                return os.pread(fh, size, offset)
            end = min(offset + size, entry.size)
            out = bytearray()
            position = offset
            while position < end:
                index, inside = divmod(position, PAGE)
                page = entry.pages.get(index)
                if page is None:
                    page = self._clean_page(entry, fh, index)
                take = min(PAGE - inside, end - position)
                out += page[inside : inside + take]
                position += take
            return bytes(out)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self.mutex:
            entry = self._cached(self.open_inodes[fh], fh)
            done = 0
            while done < len(data):
                index, inside = divmod(offset + done, PAGE)
                page = entry.pages.get(index)
                if page is None:
                    page = entry.pages[index] = self._clean_page(entry, fh, index)
                take = min(PAGE - inside, len(data) - done)
                page[inside : inside + take] = data[done : done + take]
                done += take
            entry.size = max(entry.size, offset + len(data))
            return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self.mutex:
            fd = fh if fh is not None else self._open_backing(path, os.O_RDWR)
            try:
                entry = self._cached(self.open_inodes[fd], fd)
                if length < entry.size:
                    last, inside = divmod(length, PAGE)
                    for index in [i for i in entry.pages if i > last or (i == last and not inside)]:
                        del entry.pages[index]
                    if inside and last in entry.pages:
                        entry.pages[last][inside:] = bytes(PAGE - inside)
                    entry.valid = min(entry.valid, length)
                entry.size = length
            finally:
                if fh is None:
                    self.open_inodes.pop(fd)
                    os.close(fd)
        return 0


# -- the test side: start, command and stop a mount --------------------------------


def unavailable() -> str | None:
    """Why a lazy mount cannot run here, or None when it can."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot load libfuse: {exc}"
    return None


class LazyMount:
    """A running ``tests/lazyfs.py`` process with its mount point and control socket."""

    def __init__(self, backing: Path, mount: Path, control: Path, log: Path) -> None:
        self.backing, self.mount, self.control, self.log = backing, mount, control, log
        self.ignore_fsync = False  # applies from the next start()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> None:
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mount.mkdir(parents=True, exist_ok=True)
        self.control.unlink(missing_ok=True)
        args = [sys.executable, __file__, str(self.backing), str(self.mount), str(self.control)]
        if self.ignore_fsync:
            args.append("--ignore-fsync")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while not (os.path.ismount(self.mount) and self.control.exists()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"lazyfs did not mount: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(self.control))
            sock.sendall(line.encode() + b"\n")
            reply = sock.makefile("rb").readline().decode().strip()
        assert not reply.startswith("error"), reply
        return reply

    def power_loss(self) -> dict[str, int]:
        """Drop every unsynced write; returns ``{"files": …, "bytes": …}`` dropped."""
        reply = self.command(CLEAR)
        return {key: int(value) for key, value in (p.split("=") for p in reply.split()[1:])}

    def stop(self) -> None:
        """Unmount and end the process: nothing in its cache persists.

        A busy mount (a process still has a file open on it) is detached
        lazily and the filesystem process killed, so nothing more can reach
        the backing directory, and then this raises: a test whose power loss
        leaves a writer alive is not testing what it claims.
        """
        if self.proc is None:
            return
        busy = ""
        if os.path.ismount(self.mount):
            done = subprocess.run(["fusermount3", "-u", str(self.mount)], capture_output=True)
            if done.returncode != 0:
                busy = done.stderr.decode().strip()
                subprocess.run(["fusermount3", "-uz", str(self.mount)], capture_output=True)
                self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if busy:
            raise RuntimeError(f"{self.mount} was still in use at unmount: {busy}")


def main(argv: list[str]) -> int:
    """Mount BACKING at MOUNT in the foreground until unmounted."""
    import mfusepy

    ignore_fsync = "--ignore-fsync" in argv
    backing, mount, control = [arg for arg in argv if arg != "--ignore-fsync"]

    class Operations(LazyOperations, mfusepy.Operations):
        pass

    operations = Operations(backing, control, ignore_fsync=ignore_fsync)
    mfusepy.FUSE(operations, mount, foreground=True, fsname="lazyfs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
