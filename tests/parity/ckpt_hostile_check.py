#!/usr/bin/python3
"""The checkpoint reader refuses, before reading, what ddpt never writes.

usage: ckpt_hostile_check.py DDPT READ_PATH OLD_VLEN_CKPT

DDPT is the ddpt binary, READ_PATH tests/parity/ckpt_read_path.c (reads one
int64 dataset by path, as resume reads data/cursor), OLD_VLEN_CKPT a
checkpoint written by ddpt when its string attributes were variable-length
(tests/fuzz/seeds/ckpt/old-vlen-weights.h5). Checks:
- the old file is refused with one line pointing at `ddpt ckpt upgrade`;
  upgrade writes a file that verifies, holds the same datasets bit for bit
  (ckpt diff) and the same attributes, strings now fixed-length bytes;
- files crafted with h5py from the upgraded one are refused with one line
  each: a variable-length string attribute, array-valued and wrongly typed
  root attributes, a file in HDF5's earliest format (object headers without
  checksums, h5py's default), a variable-length dataset, a dataset kept in an external
  file, a virtual dataset, a group reached through an external link, a
  filter ddpt does not read, a chunk whose index entry skips Fletcher-32,
  a group linked into itself (listing the datasets refuses the loop);
  while a deflate-compressed dataset (other tools write those) still reads.
- every fuzz_ckpt finding kept as tests/fuzz/seeds/ckpt/regression-*.h5
  (each listed in REGRESSIONS below with the read that found it) is
  refused with one line by that read and by `ddpt ckpt verify`.
Each of these made libhdf5 follow what the file says (the unchecksummed
global heap, other files) or overran a one-value buffer before the checks.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

DDPT, READ_PATH, OLD = sys.argv[1:4]
SEEDS = os.path.dirname(OLD)

# fuzz_ckpt's findings: file -> (dataset read by path, element count, the refusal).
REGRESSIONS = {
    # The chunk index (a v1 B-tree, no checksum) said rng/seed_step's chunk
    # holds 4294967295 bytes: H5Dread tried to allocate 4 GiB.
    "regression-chunk-size.h5": ("rng/seed_step", 2, "a chunk claims 4294967295 bytes"),
    # Found from an h5py-written seed (HDF5's earliest format, no metadata
    # checksums): a damaged attribute message made libhdf5 1.10 overrun a
    # buffer inside H5Aopen. Now refused at open, before any attribute.
    "regression-v1-header-attr.h5": ("data/cursor", 6, "the root group has no metadata checksum"),
    # The same seed: its unchecksummed superblock asks libhdf5 for an 84 TB
    # metadata buffer inside H5Fopen; libhdf5 fails cleanly when malloc
    # returns NULL (as in production; the fuzz loop lets ASan return NULL).
    "regression-huge-metadata.h5": ("data/cursor", 6, "memory allocation failed"),
    # From full.h5: a damaged group header made libhdf5's H5Lvisit recurse
    # without end (it remembers only objects with more than one link;
    # 84 s and 0x54... byte allocations under the fuzzer). ddpt lists
    # groups itself now, each once and at most 32 deep, and finds the
    # loop: a dataset's header damaged into a group that contains itself.
    "regression-list-recursion.h5": ("--list", 0, "is linked twice (a loop of groups)"),
}


def fail(msg):
    print("ckpt_hostile_check: FAIL: " + msg)
    sys.exit(1)


def run(*args):
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def expect_refusal(what, args, want):
    rc, _, err = run(*args)
    lines = err.strip().split("\n")
    if rc != 1 or len(lines) != 1 or want not in lines[0]:
        fail("%s: exit %d, stderr %r; want exit 1 and one line with %r" % (what, rc, err, want))


def variant(good, work, name, edit):
    path = os.path.join(work, name + ".h5")
    shutil.copy(good, path)
    with h5py.File(path, "r+") as f:
        edit(f, work)
    return path


def check_upgrade(work):
    new = os.path.join(work, "upgraded.h5")
    expect_refusal("old vlen file", [DDPT, "ckpt", "verify", OLD], "ddpt ckpt upgrade")
    rc, out, err = run(DDPT, "ckpt", "upgrade", OLD, new)
    if rc != 0:
        fail("ckpt upgrade exits %d: %s" % (rc, err))
    rc, out, err = run(DDPT, "ckpt", "verify", new)
    if rc != 0:
        fail("the upgraded file does not verify: %s" % err)
    rc, out, err = run(DDPT, "ckpt", "diff", OLD, new)
    if rc != 0 or "identical" not in out:
        fail("upgrade changed the datasets: %s %s" % (out, err))
    with h5py.File(OLD, "r") as a, h5py.File(new, "r") as b:
        if sorted(a.attrs) != sorted(b.attrs):
            fail("attributes %s became %s" % (sorted(a.attrs), sorted(b.attrs)))
        for k in a.attrs:
            old, got = a.attrs[k], b.attrs[k]
            if isinstance(old, str):
                if not isinstance(got, bytes) or got.decode() != old:
                    fail("attribute %s: %r became %r" % (k, old, got))
                if h5py.check_string_dtype(b.attrs.get_id(k).dtype).length is None:
                    fail("attribute %s is still variable-length" % k)
            elif old != got:
                fail("attribute %s: %r became %r" % (k, old, got))
    expect_refusal("upgrade onto an existing file", [DDPT, "ckpt", "upgrade", OLD, new], "never replaces")
    return new


def add_cursor(f, **kw):
    del f["data/cursor"]
    f.create_dataset("data/cursor", data=np.arange(6, dtype=np.int64).reshape(2, 3), **kw)


def external_group(f, work):
    other = os.path.join(work, "other.h5")
    with h5py.File(other, "w") as o:
        o.create_dataset("data/cursor", data=np.zeros((2, 3), np.int64))
    del f["data"]
    f["data"] = h5py.ExternalLink(other, "/data")
    if f["data/cursor"].shape != (2, 3):  # h5py follows it: the link works
        fail("the external link does not resolve in h5py")


def external_storage(f, work):
    raw = os.path.join(work, "raw.bin")
    np.arange(6, dtype=np.int64).tofile(raw)
    del f["data/cursor"]
    f.create_dataset("data/cursor", shape=(2, 3), dtype=np.int64, external=[(raw, 0, 48)])


def virtual(f, work):
    layout = h5py.VirtualLayout(shape=(2, 3), dtype=np.int64)
    layout[:] = h5py.VirtualSource(f["data/cursor"])
    f.create_virtual_dataset("data/virtual", layout)


def skipped_checksum(f, work):
    """A chunk stored with Fletcher-32 marked as skipped in the (unchecksummed) chunk index."""
    del f["data/cursor"]
    d = f.create_dataset("data/cursor", shape=(2, 3), dtype=np.int64, chunks=(2, 3), fletcher32=True)
    d.id.write_direct_chunk((0, 0), np.arange(6, dtype=np.int64).tobytes(), filter_mask=1)
    if d.id.get_chunk_info_by_coord((0, 0)).filter_mask != 1:
        fail("h5py did not store the filter mask")


def main():
    with tempfile.TemporaryDirectory(prefix="ddpt-ckpt-hostile-") as work:
        good = check_upgrade(work)
        # The good file has no data/cursor (a weights-only one): give it one.
        with h5py.File(good, "r+") as f:
            f.create_dataset("data/cursor", data=np.arange(6, dtype=np.int64).reshape(2, 3), fletcher32=True)
        rc, out, err = run(READ_PATH, good, "data/cursor", "6")
        if rc != 0:
            fail("reading data/cursor of a sound file: %s" % err)

        attr_cases = [
            ("vlen config", lambda f, w: f.attrs.__setitem__("config", "[model]\n"),
             "root attribute config is a variable-length string"),
            ("array step", lambda f, w: f.attrs.__setitem__("step", np.array([1, 2], np.int64)),
             "root attribute step does not hold exactly one value"),
            ("array model_type", lambda f, w: f.attrs.__setitem__("model_type", np.array([b"bert", b"bert"])),
             "root attribute model_type does not hold exactly one value"),
            ("float step", lambda f, w: f.attrs.__setitem__("step", 1.5), "root attribute step is not an integer"),
            ("integer config", lambda f, w: f.attrs.__setitem__("config", np.int64(3)),
             "root attribute config is not a string"),
        ]
        for name, edit, want in attr_cases:
            path = variant(good, work, name.replace(" ", "-"), edit)
            expect_refusal(name, [DDPT, "ckpt", "verify", path], want)
            expect_refusal(name + " (info)", [DDPT, "ckpt", "info", path], want)

        # h5py's default, the earliest format: object headers without checksums.
        earliest = os.path.join(work, "earliest.h5")
        with h5py.File(good, "r") as src, h5py.File(earliest, "w") as f:
            for k, v in src.attrs.items():
                f.attrs[k] = v
            for name, d in src["params"].items():
                f.create_dataset("params/" + name, data=d[()], chunks=True, fletcher32=True)
        expect_refusal("earliest format", [DDPT, "ckpt", "verify", earliest], "the root group has no metadata checksum")

        read_cases = [
            ("vlen dataset", lambda f, w: (f.__delitem__("data/cursor"), f.create_dataset(
                "data/cursor", data=np.array([np.arange(3), np.arange(2)], dtype=object),
                dtype=h5py.vlen_dtype(np.int64))), "data/cursor", "its elements are not plain numbers"),
            ("external storage", external_storage, "data/cursor", "it keeps its data in external files"),
            ("virtual dataset", virtual, "data/virtual", "it is a virtual dataset"),
            ("external link", external_group, "data/cursor", "no dataset data/cursor"),
            ("lzf filter", lambda f, w: add_cursor(f, compression="lzf"), "data/cursor", "HDF5 filter 32000"),
            ("chunk skipping Fletcher-32", skipped_checksum, "data/cursor", "unchecksummed"),
        ]
        for name, edit, path_in, want in read_cases:
            path = variant(good, work, name.replace(" ", "-"), edit)
            expect_refusal(name, [READ_PATH, path, path_in, "6"], want)

        # A group linked into itself: listing the datasets (verify, diff,
        # a load by name) refuses it rather than go round.
        loop = variant(good, work, "group-loop", lambda f, w: f.__setitem__("params/loop", f["params"]))
        with h5py.File(loop, "r") as f:
            if f["params/loop/loop"].name is None:
                fail("h5py did not make the loop")
        expect_refusal("group loop", [READ_PATH, loop, "--list", "0"], "group params/loop is linked twice")
        expect_refusal("group loop (verify)", [DDPT, "ckpt", "verify", loop], "linked twice")
        rc, out, err = run(READ_PATH, good, "--list", "0")
        if rc != 1 or "datasets listed, 0 expected" not in err:
            fail("--list on a sound file: exit %d, %r" % (rc, err))

        found = sorted(n for n in os.listdir(SEEDS) if n.startswith("regression-"))
        if found != sorted(REGRESSIONS):
            fail("regression inputs %s, but REGRESSIONS lists %s" % (found, sorted(REGRESSIONS)))
        for name, (path_in, count, want) in REGRESSIONS.items():
            path = os.path.join(SEEDS, name)
            expect_refusal(name, [READ_PATH, path, path_in, str(count)], want)
            expect_refusal(name + " (verify)", [DDPT, "ckpt", "verify", path], path)

        path = variant(good, work, "deflate", lambda f, w: add_cursor(f, compression="gzip", shuffle=True))
        rc, out, err = run(READ_PATH, path, "data/cursor", "6")
        if rc != 0:
            fail("a deflate+shuffle dataset does not read: %s" % err)
    print("ckpt_hostile_check: ok (old file refused and upgraded; %d hostile files and %d fuzz findings refused "
          "with one line; deflate still reads)" % (len(attr_cases) + len(read_cases) + 2, len(REGRESSIONS)))


main()
