"""Float64 references for the whole-model parity tests (test_parity_models.cpp).

torch_ref.py export computes its expected tensors in float32, whose own rounding can reach
the comparison tolerance (BatchNorm-backed conv weight gradients at some batch sizes). This
reruns the same step in float64 from the exported weights and inputs, so iris can also be
held to the exact answer.

usage: python3 models_parity.py reference64 MODEL DIR
    reads DIR/weights.safetensors and DIR/inputs.safetensors, writes DIR/expected64.safetensors
    (logits, loss, grad.<name>; float64)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "shared", "workloads"))
import torch  # noqa: E402
import torch_ref  # noqa: E402


def reference64(name, folder):
    weights = torch_ref.load_safetensors(f"{folder}/weights.safetensors")
    inputs = torch_ref.load_safetensors(f"{folder}/inputs.safetensors")
    cls, _ = torch_ref.MODELS[name]
    model = cls().double().train()
    model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in weights.items()})
    logits, loss = torch_ref.caption_loss(model, inputs["image"].double(), inputs["tokens"])
    loss.backward()
    out = {"logits": logits, "loss": loss.reshape(1)}
    out.update({f"grad.{n}": p.grad for n, p in model.named_parameters()})
    torch_ref.save_safetensors(out, f"{folder}/expected64.safetensors")


def main(argv):
    if len(argv) == 3 and argv[0] == "reference64":
        reference64(argv[1], argv[2])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
