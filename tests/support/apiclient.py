"""The API tests' client, run as a test user (``tests/support/apiusers.py``): httpx over the Unix
socket, as a staff tool would ask the station.

Usage: python apiclient.py SOCKET REQUESTS_JSON — REQUESTS_JSON a list of {path, method?,
headers?, body?}; prints a JSON list of {status, body} (body: the answer's JSON), or one
[{error, errno}] when the socket cannot be connected to (permission denied, say).
"""

import json
import sys

import httpx


def main() -> int:
    socket, requests = sys.argv[1], json.loads(sys.argv[2])
    out = []
    with httpx.Client(transport=httpx.HTTPTransport(uds=socket), base_url="http://localhost", timeout=30) as c:
        for r in requests:
            try:
                resp = c.request(r.get("method", "GET"), r["path"], headers=r.get("headers"),
                                 content=json.dumps(r["body"]) if "body" in r else None)
            except httpx.ConnectError as e:
                cause = e.__cause__
                while cause is not None and not isinstance(cause, OSError):
                    cause = cause.__cause__ or cause.__context__
                out.append({"error": type(cause).__name__ if cause else "ConnectError",
                            "errno": getattr(cause, "errno", None)})
                break
            out.append({"status": resp.status_code, "body": resp.json()})
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
