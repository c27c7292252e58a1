"""Bytecode cache for modules Python imports from a zip file: installed in the test image only.

Every Ansible module task ships its module_utils to the host as a zip, and Python's zipimport
compiles every source file in it on every run: it never caches bytecode for a zip. That made
about half of a module task's CPU time on a test host (0.13 of 0.28 s for `stat`), and `make
test` runs thousands of module tasks on hosts that share two cores.

This file is loaded at interpreter startup through a `.pth` file (molecule/image/build.sh) and
wraps zipimport's compile step: code is cached by a hash of its source, so changed module_utils
(another ansible-core) compile afresh. It is on only while CACHE_DIR exists: scripts/demo.sh
removes it, so the demo server, and the deploy benchmark run on it, pay what a real server pays.

Only root writes the cache (a directory only root may write to): a module that runs as the app
user reads what root compiled, and cannot plant code that root would run.
"""

import os
import sys
import zipimport

CACHE_DIR = "/var/cache/shipshape-zipimport"


def cached_compile(compile_source, cache_dir, pathname, source):
    """Return the code object of `source` (bytes), compiled once per content and interpreter."""
    import _imp
    import hashlib
    import marshal

    # compile() drops asserts under -O: the optimization level is part of the key, as in a .pyc's name.
    key = hashlib.sha256(source).hexdigest()
    cached = os.path.join(cache_dir, f"{sys.implementation.cache_tag}-O{sys.flags.optimize}-{key}")
    try:
        with open(cached, "rb") as stored:
            code = marshal.loads(stored.read())
    except (OSError, EOFError, ValueError, TypeError):
        code = compile_source(pathname, source)
        if os.geteuid() == 0:
            partial = f"{cached}.{os.getpid()}"
            try:
                with open(partial, "wb") as out:
                    out.write(marshal.dumps(code))
                os.replace(partial, cached)
            except OSError:
                # A full disk, say: the code still runs, uncached, and leaves no partial entry.
                import contextlib

                with contextlib.suppress(OSError):
                    os.unlink(partial)
        return code
    # The cached code names the zip it was first compiled from (a removed temporary file):
    # tracebacks must name this one.
    _imp._fix_co_filename(code, pathname)
    return code


def install(cache_dir=CACHE_DIR):
    """Wrap zipimport's compile step, when the cache directory exists."""
    compile_source = getattr(zipimport, "_compile_source", None)
    if compile_source is None or not os.path.isdir(cache_dir):
        return False
    zipimport._compile_source = lambda pathname, source: cached_compile(
        compile_source, cache_dir, pathname, source
    )
    return True


install()
