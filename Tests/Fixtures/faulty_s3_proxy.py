"""A fault-injecting HTTP proxy for pgclone's S3 tests: it relays connections to moto unchanged,
except for the requests a fault applies to. Faults are used up in order, each by the next request
it matches:

    GETMID:...         any GET fault, for a GET of a range that starts inside the object only (a
                       piece of an indexed dump; not its head, nor a suffix range for its index)
    GET:status:503     answer a ranged GET with 503 SlowDown (500, 502... likewise)
    GET:reset:N        relay a ranged GET's response, then reset the connection after N body bytes
    GET:stall:N:S      relay N body bytes, then stop sending for S seconds
    GET:hold:N:PATH    relay N body bytes, then send nothing until the file PATH exists; then reset
    PUT:status:500     answer an UploadPart with 500 InternalError
    PUT:hold:PATH      answer nothing to an UploadPart until the file PATH exists (2 minutes at
                       most); then reset: an upload in flight for as long as a test needs
    CREATE:hold:S      pass a CreateMultipartUpload on to moto, and hold its answer S seconds
    DELETE:pass        relay a DeleteObject unchanged (so that the next DELETE fault is the 2nd's)
    DELETE:status:403  answer a DeleteObject with 403 AccessDenied
    PUTOBJECT:delay:S  receive a PutObject whole (then print "received PutObject"), and pass it on
                       to moto only S seconds later (then print "forwarded PutObject: " and moto's
                       status line)

Usage: faulty_s3_proxy.py UPSTREAM_PORT FAULT...   (prints its own port, then one line per fault
and one per ranged GET: "GET bytes=A-B")
"""
import os
import re
import socket
import sys
import threading
import time

upstream_port = int(sys.argv[1])
faults = [fault.split(":") for fault in sys.argv[2:]]
lock = threading.Lock()


def take_fault(method, headers):
    request_line = headers.split("\r\n", 1)[0]
    creates = method == "POST" and "?uploads" in request_line
    applies = (method == "GET" and "range:" in headers) or method in ("PUT", "DELETE") or creates
    if not applies:
        return None
    kinds = ["CREATE"] if creates else [method] if method != "PUT" or "partnumber=" in headers else ["PUTOBJECT"]
    if method == "GET" and re.search(r"^range: bytes=[1-9]", headers, re.MULTILINE):
        kinds.append("GETMID")
    with lock:
        for index, fault in enumerate(faults):
            if fault[0] in kinds:
                return faults.pop(index)
    return None


def read_head(sock, data=b""):
    """A message's head (up to its blank line) and what came after it, from `data` and `sock`."""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def pipe(source, destination):
    try:
        while True:
            chunk = source.recv(65536)
            if not chunk:
                break
            destination.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, destination):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def error_response(status):
    code = {503: "SlowDown", 403: "AccessDenied"}.get(status, "InternalError")
    body = f"<Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>".encode()
    return (f"HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


def handle(client):
    upstream = None
    try:
        head, rest = read_head(client)
        if head is None:
            return
        request_line = head.split(b"\r\n", 1)[0].decode()
        method = request_line.split(" ", 1)[0]
        headers = head.decode("latin-1").lower()
        fault = take_fault(method, headers)
        requested = re.search(r"^range: (bytes=[0-9-]+)", headers, re.MULTILINE)
        if method == "GET" and requested:
            with lock:
                sys.stdout.write(f"GET {requested.group(1)}\n")
                sys.stdout.flush()
        if fault:
            with lock:
                asked = f" {requested.group(1)}" if requested else ""
                sys.stdout.write(f"fault {':'.join(fault)} on {request_line}{asked}\n")
                sys.stdout.flush()
        if fault and fault[1] == "status":
            client.sendall(error_response(int(fault[2])))
            return
        if fault and method == "PUT" and fault[1] == "hold":
            deadline = time.time() + 120
            while not os.path.exists(fault[2]) and time.time() < deadline:
                time.sleep(0.05)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return
        if fault and fault[0] == "PUTOBJECT" and fault[1] == "delay":
            length = int(re.search(r"^content-length: ([0-9]+)", headers, re.MULTILINE).group(1))
            while len(rest) < length:
                chunk = client.recv(65536)
                if not chunk:
                    break
                rest += chunk
            with lock:
                sys.stdout.write(f"received PutObject ({len(rest)} of {length} bytes)\n")
                sys.stdout.flush()
            time.sleep(float(fault[2]))
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            upstream.sendall(head + rest)
            response_head, after = read_head(upstream)
            status = response_head.split(b"\r\n", 1)[0].decode() if response_head else "no answer"
            while status.startswith("HTTP/1.1 100"):
                # An interim answer to "Expect: 100-continue" (moto may send two); the final one
                # follows, maybe in the same read.
                response_head, after = read_head(upstream, after)
                status = response_head.split(b"\r\n", 1)[0].decode() if response_head else "no answer"
            with lock:
                sys.stdout.write(f"forwarded PutObject: {status}\n")
                sys.stdout.flush()
            return
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        upstream.sendall(head + rest)
        if fault and fault[0] == "CREATE":
            # S3 makes the upload; its answer comes too late.
            response_head, body = read_head(upstream)
            time.sleep(float(fault[2]))
            client.sendall(response_head + body)
            return
        if not fault or fault[1] == "pass":
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            pipe(upstream, client)
            return
        # A ranged GET with a fault on its response body.
        response_head, body = read_head(upstream)
        client.sendall(response_head)
        limit = int(fault[2])
        while len(body) < limit:
            chunk = upstream.recv(65536)
            if not chunk:
                break
            body += chunk
        client.sendall(body[:limit])
        if fault[1] == "reset":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif fault[1] == "stall":
            time.sleep(float(fault[3]))
        elif fault[1] == "hold":
            while not os.path.exists(fault[3]):
                time.sleep(0.05)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    finally:
        client.close()
        if upstream:
            upstream.close()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
print(server.getsockname()[1], flush=True)
while True:
    connection, _ = server.accept()
    threading.Thread(target=handle, args=(connection,), daemon=True).start()
