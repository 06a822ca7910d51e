"""Print the DATASHEET tables of the annotated corpus (counts per writer and label, agreement of the two passes).

Run: ``.venv/bin/python scripts/annotation_tables.py`` (reads ``annotation/corpus.jsonl``; no data directory needed).
"""
from __future__ import annotations

from collections import Counter

import pandas as pd

from molesyn_lib.behaviors import STATES
from molesyn_lib.standoff import read_standoff
from molesyn_lib.validation import label_report


def main() -> None:
    steps = read_standoff(with_text=False)
    frame = pd.DataFrame([{"group": s.group, "writer": s.model, "source": s.source.split("/")[0], "label": s.label,
                           "a": s.labels["a"], "b": s.labels["b"], "window": s.window} for s in steps])
    counts = frame.pivot_table(index=["group", "writer"], columns="label", values="window", aggfunc="count",
                               fill_value=0)[list(STATES)]
    counts["steps"] = counts.sum(axis=1)
    counts["windows"] = frame.groupby(["group", "writer"])["window"].nunique()
    print(counts.to_markdown())
    total = Counter(frame.label)
    print("\nall:", len(frame), "steps,", frame.window.nunique(), "windows;",
          ", ".join(f"{b} {total[b]} ({total[b] / len(frame):.1%})" for b in STATES))
    rows = []
    for name, part in [("all", frame), *frame.groupby("group")]:
        report = label_report(list(part.b), list(part.a))
        rows.append({"subset": name, "steps": len(part), "agreement": report.accuracy, "kappa": report.kappa,
                     "macro-F1": report.macro_f1, **{f"F1 {b}": report.per_class.loc[b, "f1"] for b in STATES},
                     "adjudicated": int((part.a != part.b).sum())})
    print("\n" + pd.DataFrame(rows).set_index("subset").round(3).to_markdown())
    print("\npass A vs pass B confusion (rows: pass B):\n" + label_report(list(frame.b), list(frame.a)).confusion
          .to_markdown())


if __name__ == "__main__":
    main()
