"""Init time of a function binary: process start to its first Runtime API `next` (Lambda's init phase).

The same server stands in for AWS: it refuses every request with 400, as AWS refuses the warm-up's requests, so
the init measured includes opening the connections (plain HTTP here: no TLS handshake to time). Set
WARM_UP_CONNECTIONS=false to measure init without them."""
import http.server, os, statistics, subprocess, sys, threading, time

hit = threading.Event()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            hit.set()
        self.send_response(500); self.end_headers()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b'{"__type":"ValidationException","message":"refused"}'
        self.send_response(400)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
port = srv.server_address[1]
tables = "CONNECTIONS DEVICES FRIENDS GROUPS GROUP_HISTORY GROUP_MEMBERS INVITES MESSAGES MESSAGE_INDEX PRESENCE SEND_CLAIMS SESSIONS USERS".split()
env = {f"{t}_TABLE": t.lower() for t in tables}
env.update({
    "PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}", "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_FUNCTION_VERSION": "1",
    "MANAGEMENT_ENDPOINT": f"http://127.0.0.1:{port}/dev", "INDEX_QUEUE_URL": f"http://127.0.0.1:{port}/q/i",
    "FANOUT_QUEUE_URL": f"http://127.0.0.1:{port}/q/f", "PRESENCE_QUEUE_URL": f"http://127.0.0.1:{port}/q/p",
    "WARM_UP_CONNECTIONS": os.environ.get("WARM_UP_CONNECTIONS", "true"),
    "ATTACHMENT_BUCKET": "bucket",
})
runs = int(sys.argv[1])
for path in sys.argv[2:]:
    times = []
    for _ in range(runs):
        hit.clear()
        t0 = time.perf_counter()
        p = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hit.wait(10)
        times.append((time.perf_counter() - t0) * 1000)
        p.kill(); p.wait()
    times.sort()
    print(f"{path}: p50 {statistics.median(times):.1f} ms, mean {statistics.mean(times):.1f} ms, min {times[0]:.1f}, max {times[-1]:.1f} ({runs} runs)")
