"""Cost of access control per request, side by side in one run.

- raw: a bare FastAPI app with one route returning the same JSON as `GET /whoami`, no auth
  (the framework's own floor);
- bearer: `GET /whoami` on the real app with `Authorization: Bearer` (token memoised after its
  first scrypt check);
- cookie: the same with the session cookie from `POST /login`;
- scrypt: one first-time token verification (what a new token costs once per process).

In-process over httpx's ASGI transport, so the network is not measured.
Usage: python bench/api_auth.py [--n 2000]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.http.auth import TokenStore, new_token  # noqa: E402
from tests.console_app import make_console_app  # noqa: E402


async def per_request(client: httpx.AsyncClient, n: int, **kw) -> float:
    for _ in range(50):
        await client.get("/whoami", **kw)
    t0 = time.perf_counter()
    for _ in range(n):
        r = await client.get("/whoami", **kw)
    assert r.status_code == 200, r.text
    return (time.perf_counter() - t0) / n * 1e6


async def main(n: int) -> None:
    raw = FastAPI()

    @raw.get("/whoami")
    async def whoami() -> dict:
        return {"name": "admin", "role": "admin", "cameras": []}

    ca = make_console_app(Path(tempfile.mkdtemp(prefix="bench-auth-")))
    rounds: dict[str, list[float]] = {"raw": [], "bearer": [], "cookie": []}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=raw), base_url="http://b") as r, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=ca.app), base_url="http://b") as b, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=ca.app), base_url="http://b") as c:
            await c.post("/login", json={"token": ca.tokens["admin"]})
            for _ in range(5):  # interleaved rounds, so background load hits all three alike
                rounds["raw"].append(await per_request(r, n // 5))
                rounds["bearer"].append(await per_request(b, n // 5, headers=ca.headers("admin")))
                rounds["cookie"].append(await per_request(c, n // 5))
    finally:
        ca.close()
    us_raw, us_bearer, us_cookie = (statistics.median(rounds[k]) for k in ("raw", "bearer", "cookie"))
    token, rec = new_token("x", "viewer")
    t0 = time.perf_counter()
    for _ in range(5):
        assert TokenStore([rec]).verify(token) is not None
    ms_scrypt = (time.perf_counter() - t0) / 5 * 1e3
    print(f"requests: {n} each in 5 interleaved rounds (median shown); load average {os.getloadavg()[0]:.1f}")
    print(f"raw FastAPI route      {us_raw:8.0f} µs/request")
    print(f"bearer token           {us_bearer:8.0f} µs/request   ratio {us_bearer / us_raw:.2f}")
    print(f"session cookie         {us_cookie:8.0f} µs/request   ratio {us_cookie / us_raw:.2f}")
    print(f"first verification     {ms_scrypt:8.1f} ms (scrypt n=2^14, once per token and process)")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    asyncio.run(main(p.parse_args().n))
