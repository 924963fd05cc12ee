"""A bounded load of predictions over HTTPS, run as its own process (inside a test's
network namespace): every answer is written down with its status, request id and
time, so a test can compare what clients got with what the audit log holds.

    python tests/support/load.py --address 10.0.0.5 --name cofre.example.internal \\
        --cacert cert.pem --key KEY --body body.json --out answers.jsonl \\
        --threads 4 --seconds 60 --stop stop-file

Each thread keeps one TLS connection (reopened after an error) and sends its next
request when the previous one is answered. It stops after `--seconds`, or as soon
as the `--stop` file exists, whichever is first. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import threading
import time
from pathlib import Path
from typing import Any, TextIO

PATH = "/api/v1/models/iris/predict"


def main() -> None:
    args = _parse()
    body = Path(args.body).read_bytes()
    context = ssl.create_default_context(cafile=args.cacert)
    deadline = time.monotonic() + args.seconds
    lock = threading.Lock()
    with open(args.out, "w") as out:
        threads = [
            threading.Thread(target=_drive, args=(args, context, body, deadline, out, lock))
            for _ in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    for name in ("--address", "--name", "--cacert", "--key", "--body", "--out", "--stop"):
        parser.add_argument(name, required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    return parser.parse_args()


def _drive(
    args: argparse.Namespace,
    context: ssl.SSLContext,
    body: bytes,
    deadline: float,
    out: TextIO,
    lock: threading.Lock,
) -> None:
    headers = {
        "Authorization": f"Bearer {args.key}",
        "Content-Type": "application/json",
        "Host": args.name,
    }
    connection: http.client.HTTPSConnection | None = None
    while time.monotonic() < deadline and not os.path.exists(args.stop):
        if connection is None:
            connection = _connect(args, context)
        record: dict[str, Any] = {"sent": time.time()}
        try:
            connection.request("POST", PATH, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            record |= {"status": answer.status, "request_id": answer.getheader("X-Request-Id")}
            if answer.status != 200:
                record["body"] = payload[:300].decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            record |= {"status": 0, "error": f"{type(exc).__name__}: {exc}"[:200]}
            connection.close()
            connection = None
        record["answered"] = time.time()
        with lock:
            out.write(json.dumps(record) + "\n")
            out.flush()


class _Named(http.client.HTTPSConnection):
    """TLS to an address, checking the certificate against a server name (as curl's
    --resolve does): the proxy's address is dialled, its name verified."""

    def __init__(self, address: str, name: str, context: ssl.SSLContext) -> None:
        super().__init__(address, 443, timeout=30)
        self.name, self.tls = name, context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.name)


def _connect(args: argparse.Namespace, context: ssl.SSLContext) -> http.client.HTTPSConnection:
    return _Named(args.address, args.name, context)


if __name__ == "__main__":
    main()
