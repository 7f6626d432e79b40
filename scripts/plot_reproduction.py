#!/usr/bin/env python3
"""Plots of nmhash_reproduce's CSV results (Fig. 4a, 4b, 5a-c of the paper).

Usage: plot_reproduction.py RESULTS_DIR [--bits 32]
Writes RESULTS_DIR/fig4a_loo_per_bit.png, fig4b_map_vs_length.png,
fig5a_pr.png, fig5b_precision_r2.png and fig5c_precision_at_n.png; a figure
whose data is missing is skipped with a message.
"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "nmlayer": ("tab:red", "o"),
    "baseline": ("black", "s"),
    "random": ("tab:blue", "^"),
    "select": ("tab:green", "v"),
    "dropout": ("tab:purple", "D"),
    "fclayer": ("tab:orange", "x"),
}


def read(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def save(fig, out, name):
    path = os.path.join(out, name)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    plt.close(fig)
    print("wrote", path)


def by_method(rows):
    out = {}
    for r in rows:
        out.setdefault(r["method"], []).append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--bits", type=int, default=32, help="code length of Fig. 4a, 5a and 5c")
    a = ap.parse_args()
    d, k = a.results, str(a.bits)
    if not os.path.exists(os.path.join(d, "table.csv")):
        sys.exit(f"plot_reproduction.py: {d}/table.csv not found (run nmhash_reproduce first)")

    loo = by_method(read(os.path.join(d, "loo_per_bit.csv")))
    if loo:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for m, rows in loo.items():
            ys = [float(r["map_without_bit"]) for r in rows]
            mean = sum(ys) / len(ys)
            var = sum((y - mean) ** 2 for y in ys) / len(ys)
            c, mk = STYLE.get(m, ("gray", "."))
            ax.plot(range(1, len(ys) + 1), ys, marker=mk, color=c, label=f"{m} (variance {var:.2e})")
            ax.axhline(float(rows[0]["map_full"]), color=c, ls=":", lw=1)
        ax.set_xlabel(f"bit removed ({k}-bit codes)")
        ax.set_ylabel("MAP without the bit (tie-aware)")
        ax.set_title("Fig. 4a: leave-one-bit-out MAP (dotted: all bits)")
        ax.legend(fontsize=8)
        save(fig, d, "fig4a_loo_per_bit.png")
    else:
        print("no leave-one-bit-out data: fig4a skipped")

    curve = by_method(read(os.path.join(d, "map_vs_length.csv")))
    if curve:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for m in ("nmlayer", "baseline"):
            rows = sorted(curve.get(m, []), key=lambda r: int(r["bits"]))
            if rows:
                c, mk = STYLE[m]
                ax.plot([int(r["bits"]) for r in rows], [float(r["map_tie_aware"]) for r in rows], marker=mk,
                        color=c, label=m)
        ax.set_xlabel("code length (bits)")
        ax.set_ylabel("MAP (tie-aware)")
        ax.set_title("Fig. 4b: MAP along the reduction vs fixed-length baselines")
        ax.legend(fontsize=8)
        save(fig, d, "fig4b_map_vs_length.png")

    pr = by_method([r for r in read(os.path.join(d, "pr_curves.csv")) if r["bits"] == k])
    if pr:
        fig, ax = plt.subplots(figsize=(5, 4))
        for m, rows in pr.items():
            c, mk = STYLE.get(m, ("gray", "."))
            pts = [(float(r["recall"]), float(r["precision"])) for r in rows if float(r["recall"]) > 0]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=mk, ms=3, color=c, label=m)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"Fig. 5a: precision-recall, {k} bits (Hamming radius sweep)")
        ax.legend(fontsize=8)
        save(fig, d, "fig5a_pr.png")

    r2 = by_method(read(os.path.join(d, "precision_r2.csv")))
    if r2:
        fig, ax = plt.subplots(figsize=(5, 4))
        for m, rows in r2.items():
            rows = sorted(rows, key=lambda r: int(r["bits"]))
            c, mk = STYLE.get(m, ("gray", "."))
            ax.plot([int(r["bits"]) for r in rows], [float(r["precision_r2"]) for r in rows], marker=mk, color=c,
                    label=m)
        ax.set_xlabel("code length (bits)")
        ax.set_ylabel("precision within Hamming radius 2")
        ax.set_title("Fig. 5b: precision within radius 2")
        ax.legend(fontsize=8)
        save(fig, d, "fig5b_precision_r2.png")

    pn = by_method([r for r in read(os.path.join(d, "precision_at_n.csv")) if r["bits"] == k])
    if pn:
        fig, ax = plt.subplots(figsize=(5, 4))
        for m, rows in pn.items():
            c, mk = STYLE.get(m, ("gray", "."))
            ax.plot([int(r["n"]) for r in rows], [float(r["precision"]) for r in rows], marker=mk, color=c, label=m)
        ax.set_xscale("log")
        ax.set_xlabel("number of top returned samples N")
        ax.set_ylabel("precision@N (tie-aware)")
        ax.set_title(f"Fig. 5c: precision@N, {k} bits")
        ax.legend(fontsize=8)
        save(fig, d, "fig5c_precision_at_n.png")


if __name__ == "__main__":
    main()
