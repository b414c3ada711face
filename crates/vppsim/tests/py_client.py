#!/usr/bin/env python3
"""A VPP binary-API client written only from the documented wire protocol
(python3 standard library only). Connects to a vppsim (or a real VPP) socket,
does the sockclnt_create handshake, creates a loopback with
create_loopback_instance, checks it with sw_interface_dump + control_ping and
unregisters with sockclnt_delete.

usage: py_client.py SOCKET_PATH [INSTANCE]
Exit status 0 on success; prints the new sw_if_index.
"""

import socket
import struct
import sys


def send(sock, body):
    # 16-byte header: u64 0, u32 body length (big-endian), u32 0.
    sock.sendall(struct.pack(">QII", 0, len(body), 0) + body)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("socket closed")
        buf += chunk
    return buf


def recv(sock):
    hdr = recv_exact(sock, 16)
    (_, length, _) = struct.unpack(">QII", hdr)
    return recv_exact(sock, length)


def main():
    path = sys.argv[1]
    instance = int(sys.argv[2]) if len(sys.argv) > 2 else 4242
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    sock.connect(path)

    # sockclnt_create: u16 id=15, u32 context, string name[64]
    send(sock, struct.pack(">HI64s", 15, 1, b"py-client"))
    reply = recv(sock)
    msg_id, _ci, context, response, index, count = struct.unpack(">HIIiIH", reply[:20])
    assert msg_id == 16 and context == 1 and response == 0, (msg_id, context, response)
    assert index & 0x80000000, hex(index)
    table = {}
    off = 20
    for _ in range(count):
        (mid,) = struct.unpack(">H", reply[off:off + 2])
        name = reply[off + 2:off + 66].split(b"\0", 1)[0].decode()
        table[name] = mid
        off += 66
    ids = {n: table[n] for n in (
        "create_loopback_instance_d36a3ee2",
        "create_loopback_instance_reply_5383d31f",
        "sw_interface_dump_aa610c27",
        "sw_interface_details_6c221fc7",
        "control_ping_51077d14",
        "control_ping_reply_f6b0b8ca",
        "sockclnt_delete_8ac76db6",
        "sockclnt_delete_reply_8f38b1ee",
    )}

    # create_loopback_instance: id, client_index, context, mac[6], is_specified, user_instance
    mac = bytes([0x02, 0xfe, 0, 0, instance >> 8 & 0xff, instance & 0xff])
    send(sock, struct.pack(">HII6sBI", ids["create_loopback_instance_d36a3ee2"], index, 2,
                           mac, 1, instance))
    r = recv(sock)
    rid, ctx, retval, sw_if_index = struct.unpack(">HIiI", r[:14])
    assert rid == ids["create_loopback_instance_reply_5383d31f"] and ctx == 2, (rid, ctx)
    assert retval == 0, retval

    # sw_interface_dump (all, no name filter: u32 length 0) + control_ping
    send(sock, struct.pack(">HIIIBI", ids["sw_interface_dump_aa610c27"], index, 3,
                           0xFFFFFFFF, 0, 0))
    send(sock, struct.pack(">HII", ids["control_ping_51077d14"], index, 4))
    names = {}
    while True:
        r = recv(sock)
        (rid,) = struct.unpack(">H", r[:2])
        if rid == ids["control_ping_reply_f6b0b8ca"]:
            break
        assert rid == ids["sw_interface_details_6c221fc7"], rid
        (idx,) = struct.unpack(">I", r[6:10])
        names[idx] = r[103:167].split(b"\0", 1)[0].decode()
        assert r[14:20] == mac or idx != sw_if_index
    assert names.get(sw_if_index) == "loop%d" % instance, names

    # sockclnt_delete: reply response = 1, then the server closes the socket.
    send(sock, struct.pack(">HIII", ids["sockclnt_delete_8ac76db6"], index, 5, index))
    r = recv(sock)
    rid, ctx, resp = struct.unpack(">HIi", r[:10])
    assert rid == ids["sockclnt_delete_reply_8f38b1ee"] and resp == 1, (rid, resp)
    assert sock.recv(1) == b""
    print(sw_if_index)


if __name__ == "__main__":
    main()
