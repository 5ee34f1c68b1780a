#!/usr/bin/env python3
"""Checks the files `cutkit eval mc --log-samples --out OUT` wrote against what
lm-evaluation-harness writes and computes (written from reading its 0.4.x code:
evaluator.py's per-sample record, loggers/evaluation_tracker.py, api/task.py
process_results for multiple_choice, tasks/truthfulqa/utils.py process_results_mc2,
api/metrics.py mean and mean_stderr).

    python3 check_samples.py OUT

In OUT/<model>/ it takes the newest results_<date>.json (by the date in its name, as the
harness's get_latest_filename) and, for every task of its "configs", the
samples_<task>_<date>.jsonl of the same date, and checks:
  - the texts are json.dumps's (the results file with indent=2, each sample on one line);
  - doc_id counts 0, 1, 2, ...; doc_hash, prompt_hash and target_hash are the SHA-256 of
    json.dumps(doc, indent=2), of the context, of target; target is str(doc_to_target(doc));
    every request is (context, " " + choice) for the doc's choices in order; resps is
    [filtered_resps[i]] per choice; "metrics" names the task's metric_list;
  - each metric value is what the harness's process_results gives from the logged
    log-likelihoods: ARC acc = [argmax ll == gold], acc_norm = [argmax ll / len(choice) ==
    gold]; MC1 acc = [argmax ll == 0]; MC2 acc = the normalised probability mass of the true
    answers, those before the first 0 label for task version 2.0 (harness <= 0.4.8) and those
    labelled 1 for 3.0;
  - the results' "<metric>,none" is the mean of the samples' values and
    "<metric>_stderr,none" their sample standard deviation / sqrt(n); n-samples effective is
    the number of samples; task_hashes[task] is the SHA-256 of every sample's three hashes.
Also OUT/results.json must hold the same results section as the harness-named file.
Prints "ok: ..." and exits 0, or prints the first difference and exits 1. Only the standard
library (math.exp in place of numpy's)."""

import glob
import hashlib
import json
import math
import os
import sys


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def argmax(values):
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def mean_stderr(xs):
    mu = sum(xs) / len(xs)
    if len(xs) < 2:
        return mu, "N/A"
    sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1))
    return mu, sd / math.sqrt(len(xs))


def choices_and_target(task, doc):
    if task.startswith("arc_"):
        return doc["choices"]["text"], doc["choices"]["label"].index(doc["answerKey"])
    key = "mc1_targets" if task == "truthfulqa_mc1" else "mc2_targets"
    return doc[key]["choices"], 0


def expected_metrics(task, version, doc, lls):
    choices, gold = choices_and_target(task, doc)
    if task == "truthfulqa_mc2":
        labels = doc["mc2_targets"]["labels"]
        probs = [math.exp(x) for x in lls]
        if version < 3.0:  # 0.4.0 - 0.4.8: the answers before the first 0 label are true
            split = labels.index(0)
            return {"acc": sum(probs[:split]) / (sum(probs[:split]) + sum(probs[split:]))}
        total = sum(probs)
        return {"acc": sum(p / total for p, lab in zip(probs, labels) if lab == 1)}
    out = {"acc": 1.0 if argmax(lls) == gold else 0.0}
    if task.startswith("arc_"):
        norm = [ll / float(len(c)) for ll, c in zip(lls, choices)]
        out["acc_norm"] = 1.0 if argmax(norm) == gold else 0.0
    return out


class Mismatch(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(b))


def check_sample(task, version, metric_names, i, line):
    s = json.loads(line)
    where = "%s sample %d" % (task, i)
    expect(json.dumps(s, ensure_ascii=False) + "\n" == line, where + ": not json.dumps's text")
    expect(s["doc_id"] == i and isinstance(s["doc_id"], int), where + ": doc_id %r" % s["doc_id"])
    doc = s["doc"]
    choices, gold = choices_and_target(task, doc)
    expect(s["target"] == str(gold), where + ": target %r, expected %r" % (s["target"], str(gold)))
    args = [s["arguments"]["gen_args_%d" % c] for c in range(len(s["arguments"]))]
    expect(len(args) == len(choices), where + ": %d requests for %d choices" % (len(args), len(choices)))
    context = args[0]["arg_0"]
    for a, c in zip(args, choices):
        expect(a == {"arg_0": context, "arg_1": " " + c}, where + ": request %r" % (a,))
    expect(s["resps"] == [[r] for r in s["filtered_resps"]], where + ": resps vs filtered_resps")
    expect(all(r[1] in ("True", "False") for r in s["filtered_resps"]), where + ": is_greedy text")
    lls = [float(r[0]) for r in s["filtered_resps"]]
    expect(all(repr(ll) == r[0] for ll, r in zip(lls, s["filtered_resps"])), where + ": str(ll)")
    expect(s["filter"] == "none" and s["metrics"] == metric_names, where + ": filter/metrics")
    expect(s["doc_hash"] == sha(json.dumps(doc, indent=2, ensure_ascii=False)), where + ": doc_hash")
    expect(s["prompt_hash"] == sha(context), where + ": prompt_hash")
    expect(s["target_hash"] == sha(str(s["target"])), where + ": target_hash")
    for name, value in expected_metrics(task, version, doc, lls).items():
        expect(close(s[name], value), where + ": %s %r, the harness computes %r" % (name, s[name], value))
    return s


def check(out):
    results_files = glob.glob(os.path.join(out, "*", "results_*.json"))
    expect(results_files, out + ": no <model>/results_<date>.json")
    latest = max(results_files, key=lambda f: f[f.rfind("_") + 1 :].replace(".jsonl", ""))
    date = latest[latest.rfind("_") + 1 :][: -len(".json")]
    with open(latest, encoding="utf-8") as f:
        text = f.read()
    res = json.loads(text)
    expect(json.dumps(res, indent=2, ensure_ascii=False) == text, latest + ": not json.dumps's text")
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        plain = json.load(f)
    expect(plain["results"] == res["results"], "results.json and the harness file differ")
    n_samples = 0
    for task, config in res["configs"].items():
        version = res["versions"][task]
        metric_names = [m["metric"] for m in config["metric_list"]]
        path = os.path.join(os.path.dirname(latest), "samples_%s_%s.jsonl" % (task, date))
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        samples = [check_sample(task, version, metric_names, i, line) for i, line in enumerate(lines)]
        expect(res["n-samples"][task]["effective"] == len(samples), task + ": n-samples")
        for name in metric_names:
            mu, se = mean_stderr([s[name] for s in samples])
            got = res["results"][task]
            expect(close(got[name + ",none"], mu, 1e-12), "%s %s: %r, mean %r" % (task, name, got[name + ",none"], mu))
            got_se = got[name + "_stderr,none"]
            expect(got_se == se if se == "N/A" else close(got_se, se, 1e-12), "%s %s_stderr: %r, %r" % (task, name, got_se, se))
        hashes = "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples)
        expect(res["task_hashes"][task] == sha(hashes), task + ": task_hashes")
        n_samples += len(samples)
    return "ok: %d samples of %d tasks in %s" % (n_samples, len(res["configs"]), os.path.basename(latest))


def main(argv):
    if len(argv) != 2:
        print("usage: check_samples.py OUT", file=sys.stderr)
        return 2
    try:
        print(check(argv[1]))
    except Mismatch as e:
        print("mismatch: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
