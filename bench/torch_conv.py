"""PyTorch baseline for bench_conv: the same eight cnn-rnn conv layers (batch 32, 64x64
input, 3x3 stride 2 + 3x3 stride 1 per stage, 32/64/128/256 channels, no bias), fp32,
timing forward, backward-data and backward-weight (aten.convolution_backward with one
output each) and printing ms and GFLOP/s per layer and for all eight, as bench_conv does.

    OPENBLAS_CORETYPE=SkylakeX python3 bench/torch_conv.py [--threads 2] [--min-time 0.3]

Run it next to bench_conv on the same machine and quote the ratio; absolute figures on the
shared machines drift from run to run.
"""
import argparse
import time

import torch
import torch.nn.functional as F


def layers():
    out, c, size = [], 3, 64
    for stage, o in enumerate((32, 64, 128, 256), 1):
        out.append((f"s{stage}a_{c}to{o}_s2", 32, c, size, o, 2))
        size //= 2
        out.append((f"s{stage}b_{o}to{o}_s1", 32, o, size, o, 1))
        c = o
    return out


def flops(n, cin, size, cout, stride):
    osize = (size + 2 - 3) // stride + 1
    return 2.0 * n * cout * osize * osize * cin * 9


def make(n, cin, size, cout, stride):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, cin, size, size, generator=g)
    w = torch.randn(cout, cin, 3, 3, generator=g)
    osize = (size + 2 - 3) // stride + 1
    dout = torch.randn(n, cout, osize, osize, generator=g)
    return x, w, dout


def run(pass_name, x, w, dout, stride):
    if pass_name == "forward":
        return F.conv2d(x, w, None, stride, 1)
    mask = [pass_name == "backward_data", pass_name == "backward_weight", False]
    return torch.ops.aten.convolution_backward(dout, x, w, None, [stride, stride], [1, 1],
                                               [1, 1], False, [0, 0], 1, mask)


def timeit(fn, min_time):
    fn()  # warm-up (oneDNN primitive creation)
    iters, start = 0, time.perf_counter()
    while True:
        fn()
        iters += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and iters >= 3:
            return elapsed / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"mkldnn {torch.backends.mkldnn.is_available()}")
    specs = layers()
    data = [make(*s[1:]) for s in specs]
    with torch.no_grad():
        for pass_name in ("forward", "backward_data", "backward_weight"):
            total_t, total_f = 0.0, 0.0
            for spec, (x, w, dout) in zip(specs, data):
                name, stride = spec[0], spec[5]
                t = timeit(lambda: run(pass_name, x, w, dout, stride), args.min_time)
                f = flops(*spec[1:])
                total_t += t
                total_f += f
                print(f"{pass_name}/{name:<20} {t * 1e3:9.2f} ms {f / t * 1e-9:9.1f} GFLOP/s")
            print(f"{pass_name}/{'all8':<20} {total_t * 1e3:9.2f} ms "
                  f"{total_f / total_t * 1e-9:9.1f} GFLOP/s")


if __name__ == "__main__":
    main()
