"""Accessibility checks for browser tests: axe-core (npm, node_modules/axe-core) in the page.

    from tests.a11y import axe_violations
    assert axe_violations(page) == []

Each violation is a short readable line (rule id, impact, help, the first offending nodes), so
a failing assertion says what to fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def _inject(page) -> None:
    """Load axe-core into the page. Not with ``page.add_script_tag``: that adds an inline
    <script>, which our CSP (script-src 'self') blocks and reports as a violation; evaluating
    the source through the DevTools protocol is not subject to the page's policy."""
    if page.evaluate("typeof window.axe !== 'undefined'"):
        return
    if not AXE.exists():
        pytest.skip("axe-core is not installed (npm ci installs it from package-lock.json)")
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")


def axe_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's violations on the page as it is now, limited to ``impacts``."""
    _inject(page)
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + " :: " +
                                                  (n.failureSummary || "").replace(/\\s+/g, " "))
            }));
        }"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {page.url} — " + " | ".join(v["nodes"])
        for v in result
        if v["impact"] in impacts
    ]
