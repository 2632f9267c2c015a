"""Aggregate decode speed of `qwen-wgpu serve` under concurrent streams, at several
--parallel settings: a bounded load test (requests, tokens and seconds capped).

    python3 benches/serve_load.py -m MODEL.gguf [--parallel 1 4 8 16] [--tokens 24]
        [--bin target/release/qwen-wgpu] [--timeout 900]

For each setting it starts the server on 127.0.0.1 (a free port, no prompt cache), sends
as many streaming completions as there are slots (distinct one-token prompts, so that the
prompts cost one step and the run measures decoding; greedy), and reports the tokens all
streams generated (their `usage`) over the wall time from the first request to the last
token. The server is stopped after each setting.
"""

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request


def start(binary, model, parallel, timeout):
    proc = subprocess.Popen([binary, "serve", "-m", model, "--port", "0", "--parallel", str(parallel),
                             "--cache-mib", "0"], stderr=subprocess.PIPE, text=True)
    url = None
    deadline = time.time() + timeout
    for line in proc.stderr:
        if "listening on http://" in line:
            url = line[line.index("http://"):].split()[0]
        if "loaded" in line or time.time() > deadline:
            break
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    if url is None:
        proc.kill()
        sys.exit("the server did not start")
    return proc, url


def stream(url, prompt, tokens, result, timeout):
    body = json.dumps({"prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    req = urllib.request.Request(url + "/v1/completions", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                result["tokens"] = chunk["usage"]["completion_tokens"]
                result["end"] = time.time()


def run(binary, model, parallel, tokens, timeout):
    proc, url = start(binary, model, parallel, timeout)
    try:
        results = [{} for _ in range(parallel)]
        prompts = "abcdefghijklmnopqrstuvwxyz"
        threads = [threading.Thread(target=stream, args=(url, prompts[i % 26], tokens, results[i], timeout))
                   for i in range(parallel)]
        begin = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
        total = sum(r.get("tokens", 0) for r in results)
        wall = max(r.get("end", begin) for r in results) - begin
        return total / wall, total, wall
    finally:
        proc.terminate()
        proc.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--bin", default="target/release/qwen-wgpu")
    ap.add_argument("--parallel", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    print(f"{'parallel':>8} {'decode tok/s':>13} {'vs parallel 1':>14} {'tokens':>7} {'wall s':>7}", flush=True)
    base = None
    for p in a.parallel:
        rate, total, wall = run(a.bin, a.model, p, a.tokens, a.timeout)
        base = base or rate
        print(f"{p:>8} {rate:>13.2f} {rate / base:>13.2f}x {total:>7} {wall:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
