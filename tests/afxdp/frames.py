"""Frame capture and comparison for the afxdp tests (Debian's /usr/bin/python3).

  frames.py capture IFACE DPORT COUNT TIMEOUT OUT.pcap READY
      records, with an AF_PACKET socket on IFACE, the incoming IPv4/UDP frames for
      destination port DPORT, until COUNT arrived or TIMEOUT seconds passed; writes them
      as a classic pcap file (touches READY once listening). Exit 1 if fewer arrived.
  frames.py compare A.pcap B.pcap
      exit 0 when both hold the same frames, byte for byte, in the same order
      (timestamps aside); otherwise names the first difference.
"""
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for fr in frames:
            f.write(struct.pack("=IIII", 0, 0, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path):
    data = open(path, "rb").read()
    magic, = struct.unpack_from("=I", data, 0)
    if magic != 0xA1B2C3D4:
        sys.exit(f"{path}: not a microsecond pcap file written in host order")
    off, frames = 24, []
    while off < len(data):
        _, _, incl, orig = struct.unpack_from("=IIII", data, off)
        if incl != orig:
            sys.exit(f"{path}: truncated record at byte {off}")
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def capture(iface, dport, count, timeout, out, ready):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    open(ready, "w").close()
    frames, end = [], time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            fr, addr = s.recvfrom(65536)
        except socket.timeout:
            break
        if addr[2] == PACKET_OUTGOING or len(fr) < 42:
            continue
        if fr[12:14] != b"\x08\x00" or fr[23] != 17:
            continue
        if struct.unpack_from("!H", fr, 36)[0] == dport:
            frames.append(fr)
    write_pcap(out, frames)
    if len(frames) < count:
        sys.exit(f"captured {len(frames)} of {count} frames on {iface}")


def compare(a, b):
    fa, fb = read_pcap(a), read_pcap(b)
    for i, (x, y) in enumerate(zip(fa, fb)):
        if x != y:
            at = next(k for k in range(min(len(x), len(y)) + 1)
                      if k == min(len(x), len(y)) or x[k] != y[k])
            sys.exit(f"frame {i} differs at byte {at} (lengths {len(x)}, {len(y)})")
    if len(fa) != len(fb):
        sys.exit(f"{a} has {len(fa)} frames, {b} has {len(fb)}")
    print(f"{len(fa)} frames identical")


if __name__ == "__main__":
    if sys.argv[1:2] == ["capture"] and len(sys.argv) == 8:
        capture(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]),
                sys.argv[6], sys.argv[7])
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) == 4:
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
