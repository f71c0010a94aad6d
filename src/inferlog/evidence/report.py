"""The pack's human-readable report: one HTML file, opened offline, that loads nothing.

Inline CSS, charts drawn here as inline SVG, no script, and a Content-Security-Policy that forbids
every fetch: the page renders the same on an air-gapped laptop and cannot call anywhere. Everything
a log writer chose (system names, actors, purposes, details) is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from inferlog.evidence import layout

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1f24}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:12px;word-break:break-all}
.status{border:2px solid #1a7f37;background:#dafbe1;padding:.6rem 1rem;border-radius:6px}.muted{color:#57606a}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
"""
_OK, _ERR, _OVR = "#2da44e", "#cf222e", "#bf8700"


def render(summary: dict[str, Any], lineage: dict[str, Any], policy: dict[str, Any]) -> str:
    """The report page for a pack's summary, model lineage and policy history."""
    selection = summary["selection"]
    title = f"Evidence pack: {selection['system']}, {selection['since'][:10]} to {selection['until'][:10]}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _period(summary),
        _verification(summary),
        _counts(summary),
        _charts(summary),
        _models(summary, lineage),
        _access(summary),
        _policy(policy),
        _oversight(summary),
        _admin(summary),
        _checkpoints(summary),
        _files(),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def readme(info: dict[str, Any]) -> str:
    """README.txt: what the pack is and the two ways to check it."""
    key = info["verifier_key"]
    return f"""inferlog evidence pack ({info["format"]})

System {info["selection"]["system"]}, from {info["selection"]["since"]} until {info["selection"]["until"]},
{info["entries"]["count"]} entries proven against the signed checkpoint of {info["checkpoint"]["size"]} entries
of the log {info["origin"]}. Open report.html in a browser for the summary.

Check it with the verifier key you received from the log's operator (not only the copy in this pack):

    python3 verify_pack.py PACK --key '{key}'      (needs Python 3.11+ and the `cryptography` package)
    inferlog verify pack PACK --key '{key}'

manifest.note is a signed note (C2SP signed-note, Ed25519) whose lines are `sha256sum` lines of every
other file; checkpoint.note and checkpoints/*.note are C2SP checkpoints; proofs/*.jsonl hold RFC 6962
inclusion and consistency proofs (base64 hashes). Each line of entries.jsonl is one entry: its leaf
hashes to the leaf hash the inclusion proof starts from, and SHA-256(salt || body) is the leaf's
"commit" (salt and body are null where the payload was erased or purged).
"""


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int] | None = None) -> str:
    if not rows:
        return '<p class="muted">None.</p>'
    numeric = numeric or set()
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if i in numeric else ''}>{_cell(value)}</td>" for i, value in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    thead = f"<thead><tr>{cells}</tr></thead>" if any(head) else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    if value is None:
        return '<span class="muted">–</span>'
    if isinstance(value, float):
        return f"{value:.2%}"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
        return f"<code>{escape(text if len(text) <= 400 else text[:399] + '…')}</code>"
    return escape(str(value))


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _period(summary: dict[str, Any]) -> str:
    s = summary["selection"]
    rows = [
        ("System", s["system"]), ("Period", f"{s['since']} until {s['until']} (UTC)"),
        ("Subject (as the log stores it)", s["subject"] or "all"), ("Model", s["model"] or "all"),
        ("Log (checkpoint origin)", summary["origin"]), ("Pack built", f"{summary['created_at']} by {summary['built_by']}"),
    ]  # fmt: skip
    return '<section id="period">' + _table(("", ""), rows) + "</section>"


def _verification(summary: dict[str, Any]) -> str:
    cp = summary["checkpoint"]
    count = summary["entries"]["total"]
    earlier = len(summary["consistency"])
    later = summary["later_entries_left_out"]
    note = (
        f" {later} related entries (reads, feedback, admin) logged after that checkpoint are not in this pack."
        if later
        else ""
    )
    return f"""<h2>Verification</h2>
<div class="status" id="verification-status"><strong>Verified when built:</strong>
all <span id="verified-entries">{count}</span> entries were checked against their inclusion proofs and the
signed checkpoint of <span id="checkpoint-size">{cp["size"]}</span> entries (root <code>{escape(cp["root"])}</code>),
and {earlier} earlier signed checkpoint(s) were proven consistent with it.{escape(note)}</div>
<p>This page was written when the pack was made. That the pack is unchanged since, and signed by the log's key,
only a verifier can show, offline, with the verifier key you received from the log's operator:</p>
<pre><code>python3 verify_pack.py PACK --key '{escape(summary["verifier_key"])}'
inferlog verify pack PACK --key '{escape(summary["verifier_key"])}'</code></pre>"""


def _counts(summary: dict[str, Any]) -> str:
    inf, fb = summary["inferences"], summary["feedback"]
    entries = summary["entries"]
    rows = [
        ("inferences", "Inferences in the period", inf["total"]),
        ("ok", "of which ok", inf["ok"]),
        ("errors", "of which failed", inf["error"]),
        ("error-rate", "Error rate", _percent(inf["error_rate"])),
        ("erased", "Inferences erased or purged (leaf only, no content)", inf["erased"]),
        ("feedback", "Feedback entries (labels, outcomes, reviews)", fb["total"]),
        ("overrides", "Human overrides", fb["overrides"]),
        ("override-rate", "Overrides per inference", _percent(fb["override_rate"])),
        ("access", "Reads of these entries on record (access entries)", summary["access"]["total"]),
        ("admin", "Admin entries (policy, retention, erasure, keys)", entries["by_kind"].get("admin", 0)),
        ("entries", "Entries in the pack, all kinds", entries["total"]),
    ]
    body = "".join(
        f'<tr><td>{escape(label)}</td><td class="n" id="count-{key}">{escape(str(value))}</td></tr>'
        for key, label, value in rows
    )
    return f'<h2>Counts</h2><table id="counts"><tbody>{body}</tbody></table>'


def _charts(summary: dict[str, Any]) -> str:
    return (
        "<h2>Inferences per day</h2>"
        + _legend((("ok", _OK), ("failed", _ERR)))
        + _daily_chart(summary["inferences"]["by_day"])
        + "<h2>Error and override rates by model version</h2>"
        + _legend((("errors", _ERR), ("overrides", _OVR)))
        + _rates_chart(summary["models"])
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<p class="legend">'
        + "".join(f'<span style="background:{c}"></span>{escape(n)}' for n, c in items)
        + "</p>"
    )


def _daily_chart(days: list[dict[str, Any]]) -> str:
    """Stacked bars, one per day: ok below, failed above."""
    if not days:
        return '<p class="muted">No inferences in the period.</p>'
    width, height, pad = 900, 220, 36
    top = max(d["ok"] + d["error"] for d in days) or 1
    step = (width - pad - 10) / len(days)
    bar = max(step * 0.8, 1.0)
    shapes = [
        f'<line x1="{pad}" y1="{height - 20}" x2="{width}" y2="{height - 20}" stroke="#8c959f"/>',
        f'<text x="{pad - 4}" y="14" text-anchor="end" font-size="11">{top}</text>',
        f'<text x="{pad - 4}" y="{height - 20}" text-anchor="end" font-size="11">0</text>',
    ]
    scale = (height - 40) / top
    for i, day in enumerate(days):
        x = pad + i * step
        ok_h, err_h = day["ok"] * scale, day["error"] * scale
        y_ok = height - 20 - ok_h
        label = f"{day['day']}: {day['ok']} ok, {day['error']} failed"
        shapes.append(
            f"<g><title>{escape(label)}</title>"
            f'<rect x="{x:.1f}" y="{y_ok:.1f}" width="{bar:.1f}" height="{ok_h:.1f}" fill="{_OK}"/>'
            f'<rect x="{x:.1f}" y="{y_ok - err_h:.1f}" width="{bar:.1f}" height="{err_h:.1f}" fill="{_ERR}"/></g>'
        )
    for i in sorted({0, len(days) - 1, len(days) // 2}):
        x = pad + i * step + bar / 2
        anchor = "start" if i == 0 else "end" if i == len(days) - 1 else "middle"
        shapes.append(
            f'<text x="{x:.1f}" y="{height - 4}" text-anchor="{anchor}" font-size="11">{escape(days[i]["day"])}</text>'
        )
    return _svg(width, height, "inferences per day", shapes, "chart-daily")


def _rates_chart(models: list[dict[str, Any]]) -> str:
    """Two horizontal bars per model version: its error rate and its override rate."""
    if not models:
        return '<p class="muted">No model answered in the period.</p>'
    row, label_w, width = 34, 260, 900
    height = row * len(models) + 24
    top = max([m["error_rate"] or 0 for m in models] + [m["override_rate"] or 0 for m in models]) or 1.0
    span = width - label_w - 80
    shapes = []
    for i, m in enumerate(models):
        y = 8 + i * row
        name = f"{m['name']}@{m['version']}"
        shapes.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="12">{escape(name[:40])}</text>'
        )
        for j, (key, color) in enumerate((("error_rate", _ERR), ("override_rate", _OVR))):
            value = m[key] or 0.0
            w = value / top * span
            shapes.append(
                f'<rect x="{label_w}" y="{y + j * 13}" width="{w:.1f}" height="11" fill="{color}"/>'
                f'<text x="{label_w + w + 4:.1f}" y="{y + j * 13 + 10}" font-size="11">{_percent(m[key])}</text>'
            )
    return _svg(width, height, "error and override rates by model version", shapes, "chart-models")


def _svg(width: int, height: int, label: str, shapes: list[str], ident: str) -> str:
    return (
        f'<svg id="{ident}" role="img" aria-label="{escape(label)}" width="100%" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(shapes)}</svg>'
    )


def _models(summary: dict[str, Any], lineage: dict[str, Any]) -> str:
    stats = {(m["name"], m["version"]): m for m in summary["models"]}
    rows = []
    for model in lineage["models"]:
        m = stats[(model["name"], model["version"])]
        artifacts = "; ".join(
            " ".join(str(a[k]) for k in ("digest", "uri", "provider") if a[k]) or "(no digest recorded)"
            for a in model["artifacts"]
        )
        rows.append((model["name"], model["version"], m["count"], m["errors"], _percent(m["error_rate"]),
                     m["overrides"], m["erased"], model["first_seen"], model["last_seen"], artifacts or "–"))  # fmt: skip
    table = _table(
        ("model", "version", "inferences", "failed", "error rate", "overrides", "erased", "first", "last",
         "artifact (digest, registry URI)"), rows, {2, 3, 4, 5, 6},
    )  # fmt: skip
    return "<h2>Models and versions (lineage)</h2>" + table


def _access(summary: dict[str, Any]) -> str:
    access = summary["access"]
    if not access["total"]:
        return '<h2>Access trail</h2><p class="muted">No read of these entries is on record.</p>'
    readers = _table(("reader", "reads"), list(access["by_actor"].items()), {1})
    listed = _table(
        ("seq", "time", "reader", "action", "purpose", "entries returned", "query"),
        [
            (r["seq"], r["ts"], r["actor"], r["action"], r["purpose"], r["count"], r["query"])
            for r in access["listed"]
        ],
        {0, 5},
    )
    more = access["total"] - len(access["listed"])
    tail = f'<p class="muted">… and {more} more in entries.jsonl.</p>' if more > 0 else ""
    return "<h2>Access trail</h2>" + readers + listed + tail


def _policy(policy: dict[str, Any]) -> str:
    start = policy["in_force_at_start"]
    first = (
        f"<p>In force when the period began: digest <code>{escape(str(start['digest']))}</code>, recorded "
        f"{escape(start['ts'])} (seq {start['seq']}).</p>"
        if start
        else '<p class="muted">No policy was recorded in the log before the period began.</p>'
    )
    changes = _table(
        ("seq", "time", "by", "digest"),
        [(p["seq"], p["ts"], p["actor"], p["digest"]) for p in policy["changes"]],
        {0},
    )
    return (
        "<h2>Policy in force and its changes</h2>"
        + first
        + "<p>Changes from the start of the period on:</p>"
        + changes
    )


def _oversight(summary: dict[str, Any]) -> str:
    """Periods of use, and each biometric match with who verified it (AI Act Art. 12(3), 14(5))."""
    found = summary.get("oversight") or {}
    periods = found.get("periods") or []
    bio = found.get("biometric") or {}
    if not periods and not bio.get("uses"):
        return ""
    rows = [
        (p["start"] or "", p["end"] or "open", p["purpose"] or "", p["actor"] or "", p["id"]) for p in periods
    ]
    html = "<h2>Periods of use</h2>" + _table(("start", "end", "purpose", "by", "period"), rows)
    if bio.get("uses"):
        html += (
            f"<h2>Biometric identification</h2><p>{bio['uses']} uses, {bio['matches']} matches, "
            f"{bio['two_person_verified']} confirmed by two distinct persons.</p>"
        )
        matches = [
            (
                m["seq"], (m["period"] or {}).get("start", ""), (m["reference_database"] or {}).get("name", ""),
                ", ".join(m["confirmed_by"]), ", ".join(m["rejected_by"]), "yes" if m["two_person"] else "NO",
            )
            for m in bio.get("matches_listed", [])
        ]  # fmt: skip
        html += _table(
            ("seq", "use started", "reference database", "confirmed by", "rejected by", "two persons"),
            matches,
            {0},
        )
    return html


def _admin(summary: dict[str, Any]) -> str:
    entries = summary["admin"]["entries"]
    rows = [(a["seq"], a["ts"], a["action"], a["actor"], a["details"]) for a in entries]
    return "<h2>Retention, erasure and other admin entries</h2>" + _table(
        ("seq", "time", "action", "by", "details"), rows, {0}
    )


def _checkpoints(summary: dict[str, Any]) -> str:
    cp = summary["checkpoint"]
    rows = [(cp["size"], cp["root"], "the pack's checkpoint: every inclusion proof ends at its root")]
    rows += [
        (c["old_size"], "", f"earlier checkpoint, consistency proof to {c['new_size']}")
        for c in summary["consistency"]
    ]
    return "<h2>Checkpoints</h2>" + _table(("size", "root (base64)", "role"), rows, {0})


def _files() -> str:
    files = [
        (layout.MANIFEST, "signed manifest: SHA-256 of every other file"),
        (layout.PACK_INFO, "what the pack covers, its checkpoint, counts"),
        (layout.CHECKPOINT, "the signed checkpoint every proof ends at"),
        (layout.CHECKPOINTS_DIR + "/", "earlier signed checkpoints"),
        (layout.VERIFIER_KEY, "the log's verifier key (check it against the one you were given)"),
        (layout.ENTRIES_JSONL, "the entries, one JSON object a line"),
        (layout.ENTRIES_PARQUET, "the same entries as Parquet"),
        (layout.INCLUSION, "RFC 6962 inclusion proof of each entry"),
        (layout.CONSISTENCY, "RFC 6962 consistency proofs from earlier checkpoints"),
        (layout.MODELS, "model lineage"),
        (layout.POLICY, "policy in force and its changes"),
        (layout.SUMMARY, "the numbers on this page"),
        (layout.VERIFIER_SCRIPT, "standalone verifier (Python + cryptography)"),
    ]
    return "<h2>Files in this pack</h2>" + _table(("file", "what"), files)
