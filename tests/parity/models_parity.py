"""PyTorch twins and references for the whole-model parity tests (test_parity_models.cpp).

usage:
  python3 models_parity.py reference64 MODEL DIR
      torch_ref.py export computes its expected tensors in float32, whose own rounding can
      reach the comparison tolerance (BatchNorm-backed conv weight gradients at some batch
      sizes). This reruns vit-cap or cnn-rnn in float64 from DIR/weights.safetensors and
      DIR/inputs.safetensors and writes DIR/expected64.safetensors (logits, loss, grad.*).
  python3 models_parity.py export NAME DIR CONFIG_JSON [--batch B] [--seed S]
      NAME is clip, fusion-early, fusion-late or fusion-xattn: the iris model of that zoo
      name written in PyTorch with the same parameter names (built from the same
      configuration JSON, whose fields are iris's). Writes DIR/weights.safetensors, DIR/inputs
      (clip: image, tokens, lengths; fusion: image, questions, lengths, answers) and
      DIR/expected.safetensors (clip: image_embeddings, text_embeddings, loss; fusion: logits,
      loss; both: grad.<name> of every parameter, in training mode).
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "shared", "workloads"))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_ref  # noqa: E402
from torch_ref import Block  # noqa: E402


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


# ---- the twins -----------------------------------------------------------------------------

def block(b, x, mem=None, pad=None, causal=False):
    """torch_ref's Block.forward with a key padding mask on the self-attention."""
    h = b.ln1(x)
    L = x.shape[1]
    mask = torch.triu(torch.full((L, L), float('-inf')), 1) if causal else None
    x = x + b.attn(h, h, h, attn_mask=mask, key_padding_mask=pad, need_weights=False)[0]
    if b.cross:
        h = b.lnx(x)
        x = x + b.xattn(h, mem, mem, need_weights=False)[0]
    return x + b.mlp(b.ln2(x))


def padding(lengths, T):
    return torch.arange(T)[None, :] >= lengths[:, None]


def pool(x, lengths, how):
    if how == "first":
        return x[:, 0]
    if how == "last":
        return x[torch.arange(x.shape[0]), lengths - 1]
    valid = (~padding(lengths, x.shape[1])).to(x.dtype)[:, :, None]
    return (x * valid).sum(1) / lengths[:, None].to(x.dtype)


class TextEncoder(nn.Module):
    def __init__(s, vocab, max_len, d, depth, heads, mlp, causal, how):
        super().__init__()
        s.pos = nn.Parameter(torch.randn(1, max_len, d) * .02)
        s.tok = nn.Embedding(vocab, d)
        s.blocks = nn.ModuleList([Block(d, heads, mlp, causal=causal) for _ in range(depth)])
        s.ln = nn.LayerNorm(d)
        s.causal, s.how = causal, how

    def forward(s, tokens, lengths):
        x = s.tok(tokens) + s.pos[:, :tokens.shape[1]]
        pad = padding(lengths, tokens.shape[1])
        for b in s.blocks:
            x = block(b, x, pad=pad, causal=s.causal)
        return s.ln(x)

    def encode(s, tokens, lengths):
        return pool(s(tokens, lengths), lengths, s.how)


class Clip(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        s.visual = torch_ref.ViT(c["image_size"], c["patch"], c["vision_dim"], c["vision_depth"],
                                 c["vision_heads"], c["vision_mlp"])
        s.text = TextEncoder(c["vocab"], c["text_len"], c["text_dim"], c["text_depth"],
                             c["text_heads"], c["text_mlp"], True, "last")
        s.visual_proj = nn.Linear(c["vision_dim"], c["embed_dim"], bias=False)
        s.text_proj = nn.Linear(c["text_dim"], c["embed_dim"], bias=False)
        s.max_scale = c["max_logit_scale"]

    def forward(s, image, tokens, lengths):
        ie = F.normalize(s.visual_proj(s.visual(image)[:, 0]), dim=-1)
        te = F.normalize(s.text_proj(s.text.encode(tokens, lengths)), dim=-1)
        logits = s.logit_scale.exp().clamp(max=s.max_scale) * ie @ te.t()
        labels = torch.arange(image.shape[0])
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        return ie, te, loss


def conv_stages(channels):
    layers, c = [], 3
    for o in channels:
        layers += [nn.Conv2d(c, o, 3, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                   nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
        c = o
    return nn.Sequential(*layers)


class FusionVqa(nn.Module):
    def __init__(s, c):
        super().__init__()
        D, s.c = c["dim"], c
        if c["image_encoder"] == "cnn":
            side = c["image_size"]
            for _ in c["cnn_channels"]:
                side = (side + 1) // 2
            s.img_pos = nn.Parameter(torch.randn(1, side * side, D) * .02)
            s.cnn = conv_stages(c["cnn_channels"])
            s.img_proj = nn.Linear(c["cnn_channels"][-1], D)
        else:
            s.vit = torch_ref.ViT(c["image_size"], c["patch"], D, c["vit_depth"], c["heads"],
                                  c["mlp_dim"])
        if c["text_encoder"] == "lstm":
            s.emb = nn.Embedding(c["vocab"], D)
            s.lstm = nn.LSTM(D, D, num_layers=c["text_depth"], batch_first=True)
        else:
            s.text = TextEncoder(c["vocab"], c["max_question_len"], D, c["text_depth"], c["heads"],
                                 c["mlp_dim"], False, "mean")
        if c["fusion"] == "early":
            s.type_emb = nn.Parameter(torch.randn(2, D) * .02)
        if c["fusion"] != "late":
            s.blocks = nn.ModuleList([Block(D, c["heads"], c["mlp_dim"], cross=c["fusion"] == "xattn")
                                      for _ in range(c["fusion_depth"])])
            s.ln = nn.LayerNorm(D)
        width = 3 * D if c["fusion"] == "late" else D
        s.classifier = nn.Sequential(nn.Linear(width, c["mlp_dim"]), nn.GELU(),
                                     nn.Linear(c["mlp_dim"], c["num_answers"]))

    def forward(s, image, questions, lengths):
        c = s.c
        if c["image_encoder"] == "cnn":
            img = s.img_proj(s.cnn(image).flatten(2).transpose(1, 2)) + s.img_pos
        else:
            img = s.vit(image)
        T = questions.shape[1]
        if c["text_encoder"] == "lstm":
            packed = nn.utils.rnn.pack_padded_sequence(s.emb(questions), lengths, batch_first=True,
                                                       enforce_sorted=False)
            out, (h_n, _) = s.lstm(packed)
            q_tokens, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
            q_pooled = h_n[-1]
        else:
            q_tokens = s.text(questions, lengths)
            q_pooled = pool(q_tokens, lengths, "mean")
        if c["fusion"] == "late":
            i = img.mean(1)
            fused = torch.cat([i, q_pooled, i * q_pooled], 1)
        elif c["fusion"] == "early":
            M = img.shape[1]
            x = torch.cat([img + s.type_emb[0], q_tokens + s.type_emb[1]], 1)
            pad = padding(lengths + M, M + T)
            for b in s.blocks:
                x = block(b, x, pad=pad)
            fused = pool(s.ln(x), lengths + M, "mean")
        else:
            x = q_tokens
            pad = padding(lengths, T)
            for b in s.blocks:
                x = block(b, x, mem=img, pad=pad)
            fused = pool(s.ln(x), lengths, "mean")
        return s.classifier(fused)


def grads(model):
    return {f"grad.{n}": (p.grad if p.grad is not None else torch.zeros_like(p))
            for n, p in model.named_parameters()}


def export(name, folder, config, batch, seed):
    torch.manual_seed(seed)
    c = json.loads(config)
    os.makedirs(folder, exist_ok=True)
    if name != "clip":
        c["fusion"] = name[len("fusion-"):]
    model = (Clip(c) if name == "clip" else FusionVqa(c)).train()
    # The weights before the step: training-mode BatchNorm moves its running statistics.
    torch_ref.save_safetensors(model.state_dict(), f"{folder}/weights.safetensors")
    if name == "clip":
        T = c["text_len"]
        image = torch.randn(batch, 3, c["image_size"], c["image_size"])
        tokens = torch.randint(0, c["vocab"], (batch, T))
        lengths = torch.randint(1, T + 1, (batch,))
        ie, te, loss = model(image, tokens, lengths)
        loss.backward()
        inputs = {"image": image, "tokens": tokens, "lengths": lengths}
        expected = {"image_embeddings": ie, "text_embeddings": te, "loss": loss.reshape(1)}
    else:
        T = c["max_question_len"]
        image = torch.randn(batch, 3, c["image_size"], c["image_size"])
        questions = torch.randint(0, c["vocab"], (batch, T))
        lengths = torch.randint(1, T + 1, (batch,))
        answers = torch.randint(0, c["num_answers"], (batch,))
        logits = model(image, questions, lengths)
        loss = F.cross_entropy(logits, answers)
        loss.backward()
        inputs = {"image": image, "questions": questions, "lengths": lengths, "answers": answers}
        expected = {"logits": logits, "loss": loss.reshape(1)}
    expected.update(grads(model))
    torch_ref.save_safetensors(inputs, f"{folder}/inputs.safetensors")
    torch_ref.save_safetensors(expected, f"{folder}/expected.safetensors")


def main(argv):
    opt = lambda k, d: type(d)(argv[argv.index(k) + 1]) if k in argv else d  # noqa: E731
    if len(argv) == 3 and argv[0] == "reference64":
        reference64(argv[1], argv[2])
        return 0
    if len(argv) >= 4 and argv[0] == "export":
        export(argv[1], argv[2], argv[3], opt("--batch", 3), opt("--seed", 0))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
