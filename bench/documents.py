"""Case-file throughput: a file of N MiB uploaded and downloaded through the gateway
(streamed multipart in, ranged-capable stream out), side by side with copying the same
file on the same disk (with fsync, as the blob store does), and the gateway's peak RSS
during the upload above its idle RSS. ``python -m bench.documents --mib 200`` alone, or
as part of ``make bench`` (``--only documents``)."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench import common

ROOT = Path(__file__).resolve().parent.parent


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _python_upload(url, headers, source, gateway):
    """requests streaming the multipart body (this process's CPU is the client's)."""
    import requests

    from shared.clidocs import multipart
    content_type, _length, body = multipart({"kind": "other_materials", "title": "bench"},
                                            "file", source, "video/mp4")
    cpu, client = _cpu_s(gateway), _cpu_s(os.getpid())
    started = time.perf_counter()
    up = requests.post(url, data=body, timeout=3600,
                       headers={**headers, "Content-Type": content_type})
    took = time.perf_counter() - started
    if not up.ok:
        raise RuntimeError(f"upload failed: {up.status_code} {up.text[:300]}")
    return took, _cpu_s(gateway) - cpu, _cpu_s(os.getpid()) - client, up.json()


def _python_download(url, headers, gateway):
    import requests
    cpu, client = _cpu_s(gateway), _cpu_s(os.getpid())
    started = time.perf_counter()
    digest = hashlib.sha256()
    with requests.get(url, headers=headers, stream=True, timeout=3600) as got:
        got.raise_for_status()
        for chunk in got.iter_content(1024 * 1024):
            digest.update(chunk)
    took = time.perf_counter() - started
    return took, _cpu_s(gateway) - cpu, _cpu_s(os.getpid()) - client, digest.hexdigest()


def _curl(args: list[str]) -> None:
    done = subprocess.run(["curl", "-sS", "--fail-with-body", *args], capture_output=True)
    if done.returncode:
        raise RuntimeError(f"curl {args[-1]}: {done.returncode} {done.stdout[:300]!r} "
                           f"{done.stderr[:300]!r}")


def _curl_upload(url, headers, source, gateway):
    """curl sending the multipart form, as a browser does: a native client, so the time
    is the gateway's and not a Python client's on the same two cores."""
    out = source.with_suffix(".json")
    args = [f"-H{k}: {v}" for k, v in headers.items()] + [
        "-HExpect:", "-o", str(out), "-Fkind=other_materials", "-Ftitle=bench",
        f"-Ffile=@{source};type=video/mp4", url]
    cpu, client = _cpu_s(gateway), _children_cpu_s()
    started = time.perf_counter()
    _curl(args)
    took = time.perf_counter() - started
    return took, _cpu_s(gateway) - cpu, _children_cpu_s() - client, json.loads(
        out.read_text())


def _curl_download(url, headers, work, gateway):
    """curl saving the file (page cache, no fsync: a browser's download); the bytes are
    hashed afterwards, outside the time."""
    target = work / "download.bin"
    args = [f"-H{k}: {v}" for k, v in headers.items()] + ["-o", str(target), url]
    cpu, client = _cpu_s(gateway), _children_cpu_s()
    started = time.perf_counter()
    _curl(args)
    took = time.perf_counter() - started
    digest = hashlib.sha256()
    with open(target, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    target.unlink()
    return took, _cpu_s(gateway) - cpu, _children_cpu_s() - client, digest.hexdigest()


def run(mib: int = 200, directory: str | None = None, client: str | None = None) -> dict:
    client = client or ("curl" if shutil.which("curl") else "python")
    import requests

    from shared.auth import Actor
    from shared.cli import service_command, wait_healthy
    if directory is None and (ROOT / "var").is_dir():
        directory = str(ROOT / "var")
    work = Path(tempfile.mkdtemp(prefix="bench-documents-", dir=directory))
    vhost = f"bench-documents-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    env = {**os.environ, "LIANDONG_ENV": "development", "LIANDONG_DATA_DIR": str(work),
           "LIANDONG_KEYS_DIR": str(work / "keys"),
           "LIANDONG_TOKEN_KEYS_DIR": str(work / "keys" / "tokens"),
           "AMQP_URI": common.amqp_uri(vhost), "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
           "PYTHONWARNINGS": "ignore"}
    env.pop("DATABASE_URL", None)
    env.pop("LIANDONG_TOKEN_PUBLIC_KEYS", None)
    procs: dict[str, subprocess.Popen] = {}
    saved = {k: os.environ.get(k) for k in env}
    with common.vhost(vhost):
        try:
            os.environ.update(env)
            for name in ("police_handoff", "documents", "gateway"):
                procs[name] = subprocess.Popen(service_command(name), cwd=ROOT, env=env,
                                               stdout=open(work / f"{name}.log", "ab"),
                                               stderr=subprocess.STDOUT)
            for name in procs:
                if not wait_healthy(name, 90):
                    raise RuntimeError(f"{name} did not start; see {work / name}.log")
            from shared.auth import mint
            unit = Actor("bench-officer", "enforcement_unit", "lucheng-team-1", "lucheng")
            headers = {"Authorization": f"Bearer {mint(unit, issuer='gateway').token}"}
            base = f"http://127.0.0.1:{port}"
            from tests.helpers import draft_payload
            r = requests.post(f"{base}/api/v1/criminal-referrals", headers=headers,
                              json=draft_payload(f"BENCH-{uuid.uuid4().hex[:6]}"), timeout=60)
            r.raise_for_status()
            path = f"{base}/api/v1/criminal-referrals/{r.json()['id']}/documents"
            source = work / "sample.mp4"
            with open(source, "wb") as f:   # an MP4 header, then random bytes
                f.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
                block = os.urandom(1024 * 1024)
                for _ in range(mib):
                    f.write(block)
            size = source.stat().st_size
            # the same disk: copy with fsync, as the blob store writes
            started = time.perf_counter()
            with open(source, "rb") as src, open(work / "copy.bin", "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            copy_s = time.perf_counter() - started
            (work / "copy.bin").unlink()

            gateway = procs["gateway"].pid
            idle = _rss_kib(gateway)
            peak = [idle]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], _rss_kib(gateway))
                    time.sleep(0.02)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            if client == "curl":
                up_s, up_cpu, up_client, doc = _curl_upload(path, headers, source, gateway)
            else:
                up_s, up_cpu, up_client, doc = _python_upload(path, headers, source, gateway)
            stop.set()
            sampler.join()
            url = f"{path}/{doc['id']}"
            if client == "curl":
                down_s, down_cpu, down_client, digest = _curl_download(url, headers, work,
                                                                       gateway)
            else:
                down_s, down_cpu, down_client, digest = _python_download(url, headers, gateway)
            if digest != doc["sha256"]:
                raise RuntimeError("downloaded bytes differ from the upload")
            mb = size / 1e6
            return {"mib": mib, "client": client, "copy_mb_s": mb / copy_s,
                    "upload_mb_s": mb / up_s,
                    "download_mb_s": mb / down_s, "upload_ratio": copy_s / up_s,
                    "download_ratio": copy_s / down_s,
                    "upload_cpu_mb_s": mb / max(up_cpu, 1e-3),
                    "download_cpu_mb_s": mb / max(down_cpu, 1e-3),
                    "upload_s": up_s, "upload_cpu_s": up_cpu, "upload_client_cpu_s": up_client,
                    "download_s": down_s, "download_cpu_s": down_cpu,
                    "download_client_cpu_s": down_client, "idle_rss_mib": idle / 1024,
                    "peak_rss_mib": peak[0] / 1024, "rss_above_idle_mib": (peak[0] - idle)
                    / 1024}
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            shutil.rmtree(work, ignore_errors=True)


def report(r: dict) -> None:
    print(f"\ncase file, {r['mib']} MiB through the gateway, client {r['client']} (same disk, "
          f"copy with fsync = {r['copy_mb_s']:.0f} MB/s):")
    print(f"  upload   {r['upload_mb_s']:7.0f} MB/s   ratio to copy {r['upload_ratio']:.2f} "
          f"(goal >= 0.5); {r['upload_cpu_mb_s']:.0f} MB per gateway CPU-second")
    print(f"  download {r['download_mb_s']:7.0f} MB/s   ratio to copy "
          f"{r['download_ratio']:.2f} (goal >= 0.5); {r['download_cpu_mb_s']:.0f} MB per "
          "gateway CPU-second")
    for way in ("upload", "download"):
        print(f"  {way:8s} {r[way + '_s']:.2f} s: gateway CPU {r[way + '_cpu_s']:.2f} s, "
              f"client ({r['client']}) CPU {r[way + '_client_cpu_s']:.2f} s")
    print(f"  gateway RSS idle {r['idle_rss_mib']:.0f} MiB, peak while uploading "
          f"{r['peak_rss_mib']:.0f} MiB: +{r['rss_above_idle_mib']:.0f} MiB (goal < 100)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.documents", description=__doc__)
    p.add_argument("--mib", type=int, default=200, help="file size in MiB (default 200)")
    p.add_argument("--dir", help="where the blobs and the copy go (default var/ of the "
                   "repo; /dev/shm takes the disk out of the measure)")
    p.add_argument("--client", choices=("curl", "python"),
                   help="the HTTP client: curl (native, as a browser; the default where "
                   "installed) or requests in this process")
    args = p.parse_args(argv)
    report(run(args.mib, args.dir, args.client))
    return 0


if __name__ == "__main__":
    sys.exit(main())
