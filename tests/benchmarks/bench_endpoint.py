"""Benchmark: the local endpoint and batch transform against in-process ``predict`` on the same rows.

Run on demand: ``.venv/bin/python tests/benchmarks/bench_endpoint.py`` (from the project root).
It trains a real model on the bundled vertebral-column data in a fresh temporary lake,
registers it with CreateModel, and prints, side by side in one run:

1. single-record latency (p50, p99 in ms) and requests/s for
   - in-process ``input_fn + predict_fn + output_fn`` on one CSV row (the floor),
   - a stock boto3 ``sagemaker-runtime`` client against the bare model server,
   - the same client against the deployed endpoint (router + model server),
   - raw ``http.client`` against the endpoint (the client's own share of the cost),
   - 4 client threads (one boto3 client each) against the endpoint;
   each HTTP path: 2,000 sequential requests after 100 warm-up;
2. batch-transform rows/s: ``run_transform_job`` on the 310 rows repeated to ~50,000,
   against in-process ``input_fn + predict_fn + output_fn`` on the same records in one call;
3. the targets next to the numbers: p99 <= 10 ms, >= 500 requests/s, batch >= 0.7x in-process.

Nothing is asserted: it is a benchmark, not a test. The endpoint and servers are stopped
and the temporary lake removed at the end.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "tests"))
WORK = Path(tempfile.mkdtemp(prefix="gated-ml-bench-endpoint-"))
os.environ["AIRFLOW__GATED_ML__LAKE_ROOT"] = str(WORK / "lake")  # a fresh lake: never the project's
os.environ.setdefault("AIRFLOW_HOME", str(WORK / "airflow"))  # settings may read Airflow's config
os.environ["OMP_NUM_THREADS"] = "1"  # as the model server runs (containers._spawn): in-process is a like-for-like floor


from gated_ml import job_requests as jr  # noqa: E402
from gated_ml import storage  # noqa: E402
from gated_ml.lake import local_path  # noqa: E402
from gated_ml.local import containers, hosting  # noqa: E402
from gated_ml.local.hosting import runtime_client  # noqa: E402
from gated_ml.local.transform import run_transform_job  # noqa: E402
from gated_ml.spec import load_pipeline  # noqa: E402
from gated_ml.targets.local import LocalTarget  # noqa: E402
from modelkit import train_and_register  # noqa: E402

# BENCH_REQUESTS / BENCH_BATCH_ROWS shrink the run for the smoke in tests/test_benchmark_smoke.py.
REQUESTS, WARMUP, THREADS = int(os.environ.get("BENCH_REQUESTS", "2000")), 100, 4
BATCH_ROWS = int(os.environ.get("BENCH_BATCH_ROWS", "50000"))
WARMUP = min(WARMUP, REQUESTS)
P99_TARGET_MS, RPS_TARGET, BATCH_TARGET = 10.0, 500.0, 0.7


def load_in_process(record: dict):
    """Unpack model.tar.gz and sourcedir.tar.gz, import the entry point, call ``model_fn``."""
    container = record["PrimaryContainer"]
    model_dir, code_dir = WORK / "model", WORK / "code"
    for uri, dest in ((container["ModelDataUrl"], model_dir), (container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"], code_dir)):
        with tarfile.open(local_path(uri)) as tar:
            tar.extractall(dest, filter="data")
    sys.path.insert(0, str(code_dir))
    import inference

    return inference, inference.model_fn(str(model_dir))


# --- measuring ---------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def time_calls(call, bodies: list[bytes], n: int = REQUESTS, warmup: int = WARMUP) -> dict:
    """``call(body)`` ``warmup`` then ``n`` times in sequence: latencies (ms) and requests/s."""
    for i in range(warmup):
        call(bodies[i % len(bodies)])
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        call(bodies[i % len(bodies)])
        latencies.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - start
    return {"p50": statistics.median(latencies), "p99": percentile(latencies, 99), "rps": n / elapsed}


def boto3_call(url: str):
    client = runtime_client(url)
    return lambda body: client.invoke_endpoint(EndpointName="vertebral-column", ContentType="text/csv", Accept="text/csv", Body=body)["Body"].read()


def raw_http_call(url: str):
    """The same request over one kept-alive ``http.client`` connection (no boto3)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def call(body: bytes) -> bytes:
        conn.request("POST", "/endpoints/vertebral-column/invocations", body=body, headers={"Content-Type": "text/csv"})
        return conn.getresponse().read()

    return call


def in_process_call(module, model):
    def call(body: bytes) -> str:
        out, _ = module.output_fn(module.predict_fn(module.input_fn(body, "text/csv"), model), "text/csv")
        return out

    return call


def concurrent(url: str, bodies: list[bytes], threads: int = THREADS, n: int = REQUESTS) -> dict:
    """``threads`` clients (one boto3 client each) sharing ``n`` requests, started together."""
    calls = [boto3_call(url) for _ in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def worker(k: int):
        for i in range(WARMUP // threads):
            calls[k](bodies[i % len(bodies)])
        barrier.wait()
        for i in range(k, n, threads):
            t = time.perf_counter()
            calls[k](bodies[i % len(bodies)])
            latencies[k].append((time.perf_counter() - t) * 1000)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    flat = [x for per in latencies for x in per]
    return {"p50": statistics.median(flat), "p99": percentile(flat, 99), "rps": n / elapsed}


def batch_in_process(module, model, body: str) -> float:
    """Seconds for input_fn + predict_fn + output_fn on the whole body (in <= 6 MB chunks)."""
    lines, limit = body.splitlines(keepends=True), 6 * 1024 * 1024
    chunks, current, size = [], [], 0
    for line in lines:
        if current and size + len(line) > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    chunks.append("".join(current))
    start = time.perf_counter()
    for chunk in chunks:
        module.output_fn(module.predict_fn(module.input_fn(chunk.encode(), "text/csv"), model), "text/csv")
    return time.perf_counter() - start


def batch_transform(spec, env, run, record: dict, labelled_rows: list[str]) -> tuple[float, int]:
    """Write the large test split, run the real ``run_transform_job``; seconds and output rows."""
    storage.write(jr.locations(spec, env).features(run.ds, "test") + "test.csv", "".join(labelled_rows))
    start = time.perf_counter()
    request = jr.transform_job(spec, env, run, record["ModelName"])
    run_transform_job(request, record)
    elapsed = time.perf_counter() - start
    out = request["TransformOutput"]["S3OutputPath"] + "test.csv.out"  # <S3OutputPath>/<input object>.out
    return elapsed, len(storage.read_text(out).splitlines())


# --- printing ----------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def print_single(rows: list[tuple[str, dict]], floor: dict):
    print(f"\n1. Single record ({REQUESTS} requests after {WARMUP} warm-up; targets: p99 <= {P99_TARGET_MS:g} ms, >= {RPS_TARGET:g} req/s)")
    print(f"{'path':<44}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'p50 / in-proc':>15}{'req/s / in-proc':>17}  target")
    for name, r in rows:
        target = "" if r is floor else f"p99 {verdict(r['p99'] <= P99_TARGET_MS)}, req/s {verdict(r['rps'] >= RPS_TARGET)}"
        print(f"{name:<44}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['rps']:>9.0f}{r['p50'] / floor['p50']:>14.1f}x{r['rps'] / floor['rps']:>16.2f}x  {target}")


def print_batch(rows: int, transform_s: float, in_process_s: float, startup_s: float):
    print(f"\n2. Batch ({rows:,} rows, label first, no header; target: transform >= {BATCH_TARGET:g}x in-process rows/s)")
    print(f"{'path':<44}{'seconds':>9}{'rows/s':>11}{'/ in-proc':>11}  target")
    floor = rows / in_process_s
    lines = [
        ("in-process input_fn+predict_fn+output_fn", in_process_s, True),
        ("run_transform_job (whole job)", transform_s, True),
        ("  same, less one server start-up (approx.)", transform_s - startup_s, False),
    ]
    for name, seconds, judged in lines:
        ratio = rows / seconds / floor
        target = verdict(ratio >= BATCH_TARGET) if judged and name.startswith("run_") else ""
        print(f"{name:<44}{seconds:>9.2f}{rows / seconds:>11,.0f}{ratio:>10.2f}x  {target}")


# --- the run -----------------------------------------------------------------------------
def main():
    spec = load_pipeline("vertebral_column")
    env = LocalTarget().environment()
    run = jr.Run(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 1)
    endpoint, bare = None, None
    try:
        t = time.perf_counter()
        record, data = train_and_register(spec, env, run)
        print(f"trained and registered {record['ModelName']} in {time.perf_counter() - t:.1f} s (lake: {WORK})")
        features = data.iloc[:, 1:].to_csv(index=False, header=False).splitlines()
        bodies = [f"{line}\n".encode() for line in features]

        module, model = load_in_process(record)
        t = time.perf_counter()
        bare = containers.start(record["PrimaryContainer"], "vertebral-column", WORK / "bare-server.log")
        startup = time.perf_counter() - t
        config = hosting.create_endpoint_config(jr.endpoint_config(spec, run, record["ModelName"]))
        endpoint = hosting.create_or_update_endpoint(jr.endpoint(spec, config["EndpointConfigName"]))

        floor = time_calls(in_process_call(module, model), bodies)
        single = [
            ("in-process input_fn+predict_fn+output_fn", floor),
            ("boto3 -> bare model server", time_calls(boto3_call(bare.url), bodies)),
            ("boto3 -> endpoint (router + server)", time_calls(boto3_call(endpoint["Url"]), bodies)),
            ("http.client -> endpoint (no boto3)", time_calls(raw_http_call(endpoint["Url"]), bodies)),
            (f"boto3 x {THREADS} threads -> endpoint", concurrent(endpoint["Url"], bodies)),
        ]

        labelled = data.to_csv(index=False, header=False).splitlines(keepends=True)
        big = (labelled * (BATCH_ROWS // len(labelled) + 1))[:BATCH_ROWS]
        in_process_s = batch_in_process(module, model, "".join(line.split(",", 1)[1] for line in big))
        transform_s, out_rows = batch_transform(spec, env, jr.Run(run.logical_date, 2), record, big)
        assert out_rows == len(big), f"transform wrote {out_rows} rows for {len(big)}"  # a sanity check, not a timing

        print_single(single, floor)
        router_ms = single[2][1]["p50"] - single[1][1]["p50"]
        print(f"router cost: {router_ms:+.2f} ms at p50 (endpoint vs bare server); model-server start-up: {startup:.2f} s")
        print_batch(len(big), transform_s, in_process_s, startup)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"\n(machine: {os.cpu_count()} CPUs shared by client, router and model server; load average {load};"
            " xgboost on 1 OpenMP thread in-process and in the servers)"
        )
    finally:
        if endpoint is not None:
            hosting.delete_endpoint(endpoint["EndpointName"])
        if bare is not None:
            containers.stop(bare.pid)
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
