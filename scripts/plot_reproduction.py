#!/usr/bin/env python3
"""Plots of nmhash_reproduce's CSV results (Fig. 4a, 4b, 5a-c of the paper).

Usage: plot_reproduction.py RESULTS_DIR [--bits 32]
Writes RESULTS_DIR/fig4a_loo_per_bit.png, fig4b_map_vs_length.png,
fig5a_pr.png, fig5b_precision_r2.png and fig5c_precision_at_n.png; a figure
whose data is missing is skipped with a message. RESULTS_DIR is the
directory nmhash_reproduce wrote (mean and standard deviation over its
seeds: error bars are one standard deviation) or one of its seed-S/
directories (one seed, no error bars).
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
    "timed": ("dimgray", "P"),
    "random": ("tab:blue", "^"),
    "select": ("tab:green", "v"),
    "dropout": ("tab:purple", "D"),
    "fclayer": ("tab:orange", "x"),
    "ours_star": ("tab:brown", "*"),
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


def value(row, name):
    """(mean, sd) of a column: NAME_mean / NAME_sd over seeds, or NAME alone."""
    if name + "_mean" in row:
        return float(row[name + "_mean"]), float(row.get(name + "_sd") or 0.0)
    return float(row[name]), 0.0


def seeds_note(rows):
    n = {r.get("seeds", "1") for r in rows}
    return f", mean \u00b1 sd over {max(n)} seeds" if max(n, default="1") != "1" else ""


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

    loo_rows = read(os.path.join(d, "loo_per_bit.csv"))
    loo = by_method(loo_rows)
    if loo:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for m, rows in loo.items():
            ranked = "rank" in rows[0]
            pts = [value(r, "map_without_bit") for r in rows]
            if ranked:
                pts.sort(key=lambda p: p[0])
            ys = [p[0] for p in pts]
            mean = sum(ys) / len(ys)
            var = sum((y - mean) ** 2 for y in ys) / len(ys)
            c, mk = STYLE.get(m, ("gray", "."))
            xs = range(1, len(ys) + 1)
            ax.errorbar(xs, ys, yerr=[p[1] for p in pts], marker=mk, ms=3, color=c, capsize=2,
                        label=f"{m} (variance of the profile {var:.2e})")
            ax.axhline(value(rows[0], "map_full")[0], color=c, ls=":", lw=1)
        ranked = "rank" in loo_rows[0]
        ax.set_xlabel(f"bit removed, by rank of cost ({k}-bit codes)" if ranked else f"bit removed ({k}-bit codes)")
        ax.set_ylabel("MAP without the bit (tie-aware)")
        ax.set_title("Fig. 4a: leave-one-bit-out MAP (dotted: all bits)" + seeds_note(loo_rows), fontsize=9)
        ax.legend(fontsize=8)
        save(fig, d, "fig4a_loo_per_bit.png")
    else:
        print("no leave-one-bit-out data: fig4a skipped")

    curve_rows = read(os.path.join(d, "map_vs_length.csv"))
    curve = by_method(curve_rows)
    if curve:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for m in ("nmlayer", "baseline", "timed", "select", "random"):
            rows = sorted(curve.get(m, []), key=lambda r: int(r["bits"]))
            if rows:
                c, mk = STYLE[m]
                pts = [value(r, "map_tie_aware") for r in rows]
                ax.errorbar([int(r["bits"]) for r in rows], [p[0] for p in pts], yerr=[p[1] for p in pts],
                            marker=mk, color=c, capsize=3, label=m)
        ax.set_xlabel("code length (bits)")
        ax.set_ylabel("MAP (tie-aware)")
        ax.set_title("Fig. 4b: MAP along the reduction vs fixed-length runs" + seeds_note(curve_rows),
                     fontsize=9)
        ax.legend(fontsize=8)
        save(fig, d, "fig4b_map_vs_length.png")

    pr_rows = [r for r in read(os.path.join(d, "pr_curves.csv")) if r["bits"] == k]
    pr = by_method(pr_rows)
    if pr:
        fig, ax = plt.subplots(figsize=(5, 4))
        for m, rows in pr.items():
            c, mk = STYLE.get(m, ("gray", "."))
            pts = [(value(r, "recall"), value(r, "precision")) for r in rows if value(r, "recall")[0] > 0]
            ax.errorbar([p[0][0] for p in pts], [p[1][0] for p in pts], xerr=[p[0][1] for p in pts],
                        yerr=[p[1][1] for p in pts], marker=mk, ms=3, color=c, capsize=2, elinewidth=0.8, label=m)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"Fig. 5a: precision-recall, {k} bits (Hamming radius sweep)" + seeds_note(pr_rows), fontsize=9)
        ax.legend(fontsize=8)
        save(fig, d, "fig5a_pr.png")

    r2_rows = read(os.path.join(d, "precision_r2.csv"))
    r2 = by_method(r2_rows)
    if r2:
        fig, ax = plt.subplots(figsize=(5, 4))
        for m, rows in r2.items():
            rows = sorted(rows, key=lambda r: int(r["bits"]))
            c, mk = STYLE.get(m, ("gray", "."))
            pts = [value(r, "precision_r2") for r in rows]
            ax.errorbar([int(r["bits"]) for r in rows], [p[0] for p in pts], yerr=[p[1] for p in pts], marker=mk,
                        color=c, capsize=3, label=m)
        ax.set_xlabel("code length (bits)")
        ax.set_ylabel("precision within Hamming radius 2")
        ax.set_title("Fig. 5b: precision within radius 2" + seeds_note(r2_rows), fontsize=9)
        ax.legend(fontsize=8)
        save(fig, d, "fig5b_precision_r2.png")

    pn_rows = [r for r in read(os.path.join(d, "precision_at_n.csv")) if r["bits"] == k]
    pn = by_method(pn_rows)
    if pn:
        fig, ax = plt.subplots(figsize=(5, 4))
        for m, rows in pn.items():
            c, mk = STYLE.get(m, ("gray", "."))
            pts = [value(r, "precision") for r in rows]
            ax.errorbar([int(r["n"]) for r in rows], [p[0] for p in pts], yerr=[p[1] for p in pts], marker=mk,
                        color=c, capsize=2, label=m)
        ax.set_xscale("log")
        ax.set_xlabel("number of top returned samples N")
        ax.set_ylabel("precision@N (tie-aware)")
        ax.set_title(f"Fig. 5c: precision@N, {k} bits" + seeds_note(pn_rows), fontsize=9)
        ax.legend(fontsize=8)
        save(fig, d, "fig5c_precision_at_n.png")


if __name__ == "__main__":
    main()
