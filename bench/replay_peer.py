"""The vectorised pandas peer of ``mcap-monitor replay`` used by ``bench/replay.py``.

Finds the same events as the engine for rules with ``confirm = 1`` (a Schmitt trigger with
a hysteresis band, a baseline on the first row, ``touched_above`` at most once per rule per
trading day) on a tape whose every row has FX and cutoff cells, all in one UTC offset.
Prints one ``time symbol rule kind`` line per event. Floats, not Decimals: the bench asserts
that this finds exactly the replay's events on its tapes.
Usage: python bench/replay_peer.py TAPE RULES.json
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd


def main(tape: str, rules_file: str) -> None:
    with open(rules_file) as handle:
        rules = json.load(handle)
    df = pd.read_csv(tape, dtype={"time": str, "symbol": str})
    out: list[tuple[str, str, str, str]] = []
    for symbol, g in df.groupby("symbol", sort=False):
        times = g["time"].to_numpy()
        days = g["time"].str.slice(0, 10).to_numpy()  # one UTC offset: the local date
        price, day_high = g["price"].to_numpy(), g["day_high"].to_numpy()
        for rule in (r for r in rules if r["symbol"] == symbol):
            rate = 1.0 if rule["fx"] is None else g[rule["fx"]].to_numpy()
            value, high = price * rule["shares"] * rate, day_high * rule["shares"] * rate
            thr = rule["threshold"] if rule["cutoff"] is None else g[rule["cutoff"]].to_numpy()
            thr = np.broadcast_to(np.asarray(thr, dtype=float), value.shape)
            sig = np.where(value >= thr, 1.0, np.where(value < thr * rule["keep"], 0.0, np.nan))
            sig[0] = 1.0 if value[0] >= thr[0] else 0.0
            pos = pd.Series(sig).ffill().to_numpy()
            prev = np.r_[np.nan, pos[:-1]]
            name = rule["id"]
            out.append((times[0], symbol, name, "baseline"))
            out += [(t, symbol, name, "crossed_above") for t in times[(prev == 0) & (pos == 1)]]
            out += [(t, symbol, name, "crossed_below") for t in times[(prev == 1) & (pos == 0)]]
            touch = np.flatnonzero((prev == 0) & (value < thr) & (high >= thr))
            first = np.unique(days[touch], return_index=True)[1]
            out += [(times[i], symbol, name, "touched_above") for i in touch[first]]
    sys.stdout.write("".join(f"{t} {s} {r} {k}\n" for t, s, r, k in sorted(out)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
