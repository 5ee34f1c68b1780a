#!/usr/bin/python3
"""Builds the multiple-choice data files of datasets/data/ from the copies in ../shared/data.

    python3 datasets/data/make_data.py [SHARED_DATA_DIR]

Every output line is one question in ARC's original JSONL shape, reduced to the fields the
evaluator reads: {"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}.

- arc_challenge_test.jsonl: ARC-V1-Feb2018 ARC-Challenge-Test (1172 questions, original order,
  3/4/5 choices) from arc/original-format/, with the DGEM solver's fields dropped.
- arc_easy_test.jsonl: the 2376 ARC-Easy test questions in their original order (from
  arc/llm-foundry/arc_easy.jsonl). Where the derived CSV (arc/all-splits-derived/) holds the
  same question, its id, labels and true choice list are used: this undoes llm-foundry's padding
  of 3-choice questions with a duplicate option. 5-choice questions stay cut to 4 in both
  sources (the gold answer is kept).
- arc_challenge_train.jsonl, arc_easy_train.jsonl: the train splits (1119 / 2251) from the
  derived CSV, in the CSV's row order (not the original order), cells stripped.
- truthfulqa_mc_task.json: truthfulqa/mc_task.json, byte for byte (copied, not rewritten).
- hellaswag_val_llamacpp.txt: hellaswag/hellaswag_val_full.txt.bz2 decompressed, byte for byte
  (its sha256 checked against PROVENANCE.md's), and LICENSE.hellaswag: both MIT notices.
"""
import bz2
import csv
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "data")


def record(qid, stem, texts, labels, answer):
    return {"id": qid, "question": {"stem": stem, "choices": [
        {"text": t, "label": l} for t, l in zip(texts, labels)]}, "answerKey": answer}


def write(name, records):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(name, len(records))


def main():
    # ARC-Challenge test, original format
    out = []
    with open(os.path.join(SHARED, "arc/original-format/ARC-Challenge-Test_qapredictions_dgem_default.jsonl"),
              encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            ch = d["question"]["choices"]
            out.append(record(d["id"], d["question"]["stem"], [c["text"] for c in ch],
                              [c["label"] for c in ch], d["answerKey"]))
    write("arc_challenge_test.jsonl", out)

    rows = list(csv.DictReader(open(os.path.join(SHARED, "arc/all-splits-derived/ARC-All-answers_columns.csv"),
                                    encoding="utf-8")))

    def from_row(r):
        labels = [k for k in "ABCD" if r[k].strip()]
        return record(r["questionID"].strip(), r["question"].strip(), [r[k].strip() for k in labels],
                      labels, r["AnswerKey"].strip())

    for sets, name in (("chal", "arc_challenge_train.jsonl"), ("easy", "arc_easy_train.jsonl")):
        write(name, [from_row(r) for r in rows if r["category"].strip() == "Train" and r["sets"].strip() == sets])

    # ARC-Easy test: llm-foundry's order and texts, ids and true choice lists from the CSV
    csv_easy = {}
    for r in rows:
        if r["category"].strip() == "Test" and r["sets"].strip() == "easy":
            csv_easy.setdefault(r["question"].strip(), []).append(r)
    out, matched, unpadded = [], 0, 0
    with open(os.path.join(SHARED, "arc/llm-foundry/arc_easy.jsonl"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            d = json.loads(line)
            stem = d["query"][len("Question: "):]
            texts, gold = d["choices"], d["gold"]
            # same stem, same choice texts (as a set: the padding duplicates one of three),
            # and the same gold text
            cands = [r for r in csv_easy.get(stem.strip(), [])
                     if set(r[k].strip() for k in "ABCD" if r[k].strip()) == set(texts)
                     and r[r["AnswerKey"].strip()].strip() == texts[gold]]
            if len(cands) == 1:
                rec = from_row(cands[0])
                rec["question"]["stem"] = stem
                n = len(rec["question"]["choices"])
                if n < len(texts):
                    unpadded += 1
                matched += 1
            else:
                rec = record("ARC-Easy-Test-%d" % i, stem, texts, list("ABCD"[:len(texts)]), "ABCD"[gold])
            out.append(rec)
    write("arc_easy_test.jsonl", out)
    print("ARC-Easy test: %d matched in the CSV, %d padded questions restored to 3 choices" % (matched, unpadded))

    shutil.copyfile(os.path.join(SHARED, "truthfulqa/mc_task.json"), os.path.join(HERE, "truthfulqa_mc_task.json"))

    # HellaSwag validation in llama.cpp's format (klosax/hellaswag_text_data), the lossy variant
    hs = os.path.join(SHARED, "hellaswag")
    raw = bz2.open(os.path.join(hs, "hellaswag_val_full.txt.bz2"), "rb").read()
    digest = hashlib.sha256(raw).hexdigest()
    assert digest == "d572539320eb2050e858ca34b495bbe2103e3b3f1391a9c3bcdf215b0bb93bd1", digest
    with open(os.path.join(HERE, "hellaswag_val_llamacpp.txt"), "wb") as f:
        f.write(raw)
    print("hellaswag_val_llamacpp.txt", raw.count(b"\n") // 6)
    with open(os.path.join(HERE, "LICENSE.hellaswag"), "w", encoding="utf-8") as f:
        f.write("hellaswag_val_llamacpp.txt: the HellaSwag validation split (Zellers et al. 2019) in llama.cpp's\n"
                "text format, as klosax/hellaswag_text_data extracted it. Both licences below apply.\n\n"
                "--- the data: rowanz/hellaswag LICENSE ---\n\n")
        f.write(open(os.path.join(hs, "LICENSE.rowanz-hellaswag-MIT"), encoding="utf-8").read())
        f.write("\n--- the extraction: klosax/hellaswag_text_data LICENSE (0455359c) ---\n\n")
        f.write(open(os.path.join(hs, "LICENSE.klosax-MIT"), encoding="utf-8").read())


if __name__ == "__main__":
    main()
