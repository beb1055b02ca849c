#!/usr/bin/python3
"""docs/read_model.py (json + numpy) against `digits predict --json` on the same images.

    compare.py DIGITS DUMP_INPUT READ_MODEL_PY WORK_DIR

dump_input makes drawn digits and model files, and prints the 28x28 inputs the program computes
from each image; read_model.py predicts from those inputs; both sets of probabilities must agree
to 1e-5 for every model and image, and the Python reader must refuse nothing the program reads.
Exits 0 when they agree, 1 with a report when they do not.
"""
import json
import os
import re
import shutil
import subprocess
import sys

TOLERANCE = 1e-5


def run(*args):
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def check_the_doc_quotes_the_reader(read_model):
    """docs/model-format.md shows read_model.py in full: the two must not drift apart."""
    doc = os.path.join(os.path.dirname(read_model), "model-format.md")
    with open(doc) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    with open(read_model) as f:
        reader = f.read()
    if reader not in blocks:
        return [f"{doc} does not quote {read_model} exactly (update the ```python block)"]
    return []


def main(digits, dump_input, read_model, work):
    shutil.rmtree(work, ignore_errors=True)
    made = run(dump_input, "--make", work).split()
    images = [p for p in made if p.endswith(".png")]
    models = [p for p in made if p.endswith(".safetensors")]
    assert len(images) >= 5 and len(models) >= 4, made

    inputs = f"{work}/inputs.json"
    with open(inputs, "w") as f:
        f.write(run(dump_input, *images))

    failures = check_the_doc_quotes_the_reader(read_model)
    compared = 0
    for model in models:
        ours = [json.loads(line) for line in run(digits, "predict", "--json", "--model", model, *images).splitlines()]
        theirs = [json.loads(line) for line in run("/usr/bin/python3", read_model, model, inputs).splitlines()]
        if len(ours) != len(images) or len(theirs) != len(images):
            failures.append(f"{model}: {len(ours)} predictions from digits, {len(theirs)} from Python, for {len(images)} images")
            continue
        spread = largest = 0.0
        for image, a, b in zip(images, ours, theirs):
            worst = max(abs(x - y) for x, y in zip(a["probabilities"], b["probabilities"]))
            if a.get("not_a_digit_probability") is not None or "not_a_digit_probability" in b:
                if a.get("not_a_digit_probability") is None or "not_a_digit_probability" not in b:
                    failures.append(f"{model} {image}: not_a_digit_probability {a.get('not_a_digit_probability')} from digits, {b.get('not_a_digit_probability')} from Python")
                    continue
                worst = max(worst, abs(a["not_a_digit_probability"] - b["not_a_digit_probability"]))
            largest = max(largest, worst)
            spread = max(spread, max(a["probabilities"]) - min(a["probabilities"]))
            compared += 1
            if len(b["probabilities"]) != 10 or worst > TOLERANCE or a["digit"] != b["digit"]:
                failures.append(f"{model} {image}: digits {a['digit']} vs Python {b['digit']}, largest difference {worst:.3g}")
        # Probabilities that are all 0.1 would agree whatever the reader did with the weights.
        if spread < 0.2:
            failures.append(f"{model}: the probabilities hardly differ between classes ({spread:.3g}); the comparison proves little")
        print(f"{model}: {len(images)} images, largest difference {largest:.3g}")

    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    print(f"{compared} predictions agree")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
