"""Reference figures for the caption metrics, from pycocoevalcap (the COCO caption evaluation).

usage: python3 cases_metrics.py OUT_JSON

Writes a corpus of COCO-like captions (hand-written hard cases and a seeded random
corpus) with pycocoevalcap's results: its PTBTokenizer's output for every caption (when
java runs), and Bleu(4), Cider and Rouge on the tokenized captions, per image and overall.
tests/parity/test_parity_metrics.cpp compares iris's coco_tokenize and metrics with them.

pycocoevalcap comes from PyPI (pip install pycocoevalcap); a copy installed elsewhere can
be named with IRIS_PYCOCOEVALCAP=/path/to/site-packages. Exits with status 3 when it is
missing, so the C++ test skips.
"""
import json
import os
import random
import shutil
import sys

if os.environ.get("IRIS_PYCOCOEVALCAP"):
    sys.path.insert(0, os.environ["IRIS_PYCOCOEVALCAP"])
try:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
except ImportError:
    print("pycocoevalcap is not installed", file=sys.stderr)
    sys.exit(3)

HARD = [
    "A man riding a bike down the street.", "Mr. Smith went to the U.S. yesterday.",
    "It's 3.5 miles away, isn't it?", "The dog's toys and the dogs' bowls.",
    "She said \"hello\" and 'goodbye'.", "A cat (black) sits [on] {the} mat.",
    "Prices: $5, 50% off & AT&T and/or more*", "well-known - dash -- double ... ellipsis",
    "I'm you're we've they'll he'd can't won't cannot gonna gotta wanna",
    "Hello!!! What?! Yes; no: maybe.", "1,000 people at 10:30 on 1/2/2020",
    "They sell fruit, vegetables, etc.", "hello... wait--what? U.S.A. is big",
    "The man\u2019s hat \u201cquoted\u201d dash\u2014here and \u2026 there",
    "A group of people standing around a kitchen counter.",
    "Two giraffes standing next to each other in a field .",
    "A close up of a pizza on a plate", "a young boy's birthday cake with candles on it",
    "There's a plate of food that doesn't look good.",
]

NOUNS = ["man", "woman", "dog", "cat", "pizza", "train", "bus", "giraffe", "kite", "plate",
         "table", "street", "field", "beach", "horse", "boy", "girl", "skateboard", "couch"]
ADJS = ["red", "large", "small", "young", "white", "black", "old", "wooden", "busy", "green"]
VERBS = ["sitting on", "standing next to", "riding", "holding", "walking down", "looking at",
         "lying on", "eating", "flying over", "parked near"]
EXTRAS = ["", "", "", ".", ".", " .", "!", ", outside.", " in the snow.", " at night."]


def noun_phrase(rng):
    words = [rng.choice(["a", "the", "two", "some"])]
    if rng.random() < 0.6:
        words.append(rng.choice(ADJS))
    noun = rng.choice(NOUNS)
    if rng.random() < 0.15:
        noun += "'s " + rng.choice(NOUNS)
    words.append(noun)
    return " ".join(words)


def caption(rng):
    text = noun_phrase(rng) + " " + rng.choice(VERBS) + " " + noun_phrase(rng)
    if rng.random() < 0.2:
        text += ", " + rng.choice(["and", "while"]) + " " + noun_phrase(rng) + " " + \
            rng.choice(["watches", "is n't there", "doesn't move", "waits"])
    text += rng.choice(EXTRAS)
    return text[0].upper() + text[1:] if rng.random() < 0.7 else text


def corpus():
    rng = random.Random(20240501)
    images = []
    for i in range(160):
        refs = [caption(rng) for _ in range(rng.randint(1, 5))]
        if i < len(HARD):
            refs[0] = HARD[i]
        # Candidates share words with a reference, as a decent captioner's would.
        base = rng.choice(refs).split()
        cand = [w for w in base if rng.random() < 0.85] + \
            ([rng.choice(NOUNS)] if rng.random() < 0.3 else [])
        images.append({"candidate": " ".join(cand), "references": refs})
    images.append({"candidate": "", "references": ["A red bus on the street."]})
    return images


def main():
    out_path = sys.argv[1]
    images = corpus()
    texts = [im["candidate"] for im in images] + [r for im in images for r in im["references"]]
    if shutil.which("java"):
        ptb = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts)})
        tokenized = {t: ptb[i][0] for i, t in enumerate(texts)}
    else:  # only the scorers can be compared: feed them lower-cased words
        tokenized = {t: " ".join(t.lower().replace(".", " ").replace(",", " ").split())
                     for t in texts}
    for im in images:
        im["candidate_tokens"] = tokenized[im["candidate"]]
        im["reference_tokens"] = [tokenized[r] for r in im["references"]]
    gts = {i: im["reference_tokens"] for i, im in enumerate(images)}
    res = {i: [im["candidate_tokens"]] for i, im in enumerate(images)}
    bleu, bleu_per_image = Bleu(4).compute_score(gts, res, verbose=0)
    cider, cider_per_image = Cider().compute_score(gts, res)
    rouge, rouge_per_image = Rouge().compute_score(gts, res)
    result = {
        "java": bool(shutil.which("java")),
        "images": images,
        "bleu": list(bleu),
        "bleu_per_image": [list(map(float, b)) for b in bleu_per_image],
        "cider": float(cider),
        "cider_per_image": list(map(float, cider_per_image)),
        "rouge": float(rouge),
        "rouge_per_image": list(map(float, rouge_per_image)),
    }
    with open(out_path + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main()
