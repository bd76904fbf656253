"""Lists the code a CUDA binary carries: ('sass', 90) = sm_90 machine code,
('ptx', 90) = compute_90 PTX. Reads the fatbinary headers directly (magic
0xBA55ED50; entry kind 1 = PTX, 2 = ELF/SASS; the target at byte 28 of each
entry), so no cuobjdump is needed.

    python .ci/fatbin_targets.py lib.so --expect sass80,sass90,ptx90
"""
import argparse
import struct

MAGIC = struct.pack("<I", 0xBA55ED50)


def targets(path):
    data = open(path, "rb").read()
    found, i = set(), 0
    while (i := data.find(MAGIC, i)) >= 0:
        _version, header_size, fat_size = struct.unpack_from("<HHQ", data, i + 4)
        p, end = i + header_size, i + header_size + fat_size
        while p + 32 <= min(end, len(data)):
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, p)
            if kind not in (1, 2) or entry_header == 0:
                break
            found.add(("ptx" if kind == 1 else "sass", struct.unpack_from("<I", data, p + 28)[0]))
            p += entry_header + payload
        i = max(end, i + 4)
    return found


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--expect", default="", help="comma-separated, e.g. sass80,sass90,ptx90")
    args = ap.parse_args()
    have = {f"{k}{a}" for k, a in targets(args.binary)}
    print(f"{args.binary}: {', '.join(sorted(have)) or 'no device code'}")
    missing = [t for t in args.expect.split(",") if t and t not in have]
    if missing:
        raise SystemExit(f"missing device code: {', '.join(missing)}")
