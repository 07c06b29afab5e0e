"""PyTorch baseline for dev.condjl.cuda.bench.CoorDescentBench: the unrolled coor_descent (colt5 spec section 2.2,
the reference's plain implementation) on the same shapes, one JSON line per case and variant:

  torch-unrolled            eager PyTorch, autograd through every iteration
  torch-unrolled-cudagraph  the same captured in CUDA graphs (forward; forward+backward through
                            torch.cuda.make_graphed_callables), i.e. without launch overhead

fwd_ms / fwdbwd_ms: median over 5 batches of back-to-back calls timed with CUDA events; peak_extra_mib: peak
allocated memory beyond the inputs during one forward+backward; max_abs_diff: forward output against the same
algorithm in float64. Usage: python3 torch_baseline.py [--reps N]
"""
import json
import sys

import torch

CASES = [(2, 32768, 1024, 20), (16, 4096, 512, 20), (64, 8192, 1024, 50), (8, 131072, 4096, 20),
         (256, 2048, 256, 20), (1, 1048576, 8192, 20)]
EPS, EPS_INIT, EPS_DECAY = 0.03, 4.0, 0.7


def log_k(k, like):
    return torch.tensor([k], dtype=like.dtype, device=like.device).clamp(min=1e-20).log()


def coor_descent(s, n_iters, logk, eps=EPS, eps_init=EPS_INIT, eps_decay=EPS_DECAY):
    e = max(eps_init, eps)
    a = 0
    b = -s
    for _ in range(n_iters):
        z = (s + b) / e
        a = e * (logk - z.logsumexp(dim=-1, keepdim=True))
        b = -(s + a).relu()
        e = max(e * eps_decay, eps)
    return (s + a + b).div(e).exp()


def event_ms(fn, reps):
    batch = max(10, reps // 5)
    for _ in range(batch):
        fn()
    times = []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(5):
        start.record()
        for _ in range(batch):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / batch)
    return sorted(times)[len(times) // 2]


def line(impl, case, fwd, fwdbwd, peak, diff):
    rows, n, k, iters = case
    return json.dumps({"impl": impl, "rows": rows, "n": n, "k": k, "iters": iters, "fwd_ms": round(fwd, 4),
                       "fwdbwd_ms": round(fwdbwd, 4), "peak_extra_mib": None if peak is None else round(peak, 3),
                       "max_abs_diff": float("%.3g" % diff)})


def main():
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 100
    dev = torch.device("cuda")
    print("torch", torch.__version__, torch.cuda.get_device_name(), file=sys.stderr)
    for case in CASES:
        rows, n, k, iters = case
        gen = torch.Generator(device=dev).manual_seed(rows * n)
        s = torch.randn(rows, n, device=dev, generator=gen)
        g = torch.randn(rows, n, device=dev, generator=gen)
        k32, k64 = log_k(k, s), log_k(k, s.double())  # made outside the timed code and the graph captures
        with torch.no_grad():
            y = coor_descent(s, iters, k32)
            diff = (y.double() - coor_descent(s.double(), iters, k64)).abs().max().item()
            fwd = event_ms(lambda: coor_descent(s, iters, k32), reps)
        sg = s.clone().requires_grad_(True)

        def fwdbwd():
            coor_descent(sg, iters, k32).backward(g)
            sg.grad = None

        fwdbwd()
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fwdbwd()
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        print(line("torch-unrolled", case, fwd, event_ms(fwdbwd, reps), peak, diff), flush=True)
        try:
            static_s = s.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(3):
                    coor_descent(static_s, iters, k32)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.no_grad():
                static_y = coor_descent(static_s, iters, k32)
            graph.replay()
            gdiff = (static_y.double() - coor_descent(s.double(), iters, k64)).abs().max().item()
            gfwd = event_ms(graph.replay, reps)
            graphed = torch.cuda.make_graphed_callables(lambda x: coor_descent(x, iters, k32),
                                                        (s.clone().requires_grad_(True),))
            gs = s.clone().requires_grad_(True)

            def gfwdbwd():
                graphed(gs).backward(g)
                gs.grad = None

            gfwdbwd()
            print(line("torch-unrolled-cudagraph", case, gfwd, event_ms(gfwdbwd, reps), None, gdiff),
                  flush=True)
            del graph, graphed
        except Exception as e:  # a variant that cannot be captured must not hide the eager numbers
            print("cudagraph variant failed for", case, ":", repr(e), file=sys.stderr)
        del s, g, sg, y
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
