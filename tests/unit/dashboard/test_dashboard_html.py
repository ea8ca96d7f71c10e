"""The dashboard page (streamapp.dashboard.dashboard_html): self-contained, script pinned."""

from __future__ import annotations

import base64
import hashlib
import re

from streamapp.dashboard.dashboard_html import (
    CONTENT_SECURITY_POLICY,
    DATA_PATH,
    SCRIPT,
    dashboard_page,
)


def test_the_page_loads_nothing_from_elsewhere() -> None:
    page = dashboard_page("shop")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert '<link rel="stylesheet"' not in page
    assert page.count("<script>") == 1 and "<script src" not in page
    assert '<link rel="icon" href="data:,">' in page  # no favicon request, no 404


def test_the_csp_allows_exactly_the_inline_script() -> None:
    page = dashboard_page("shop")
    inline = page.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "connect-src 'self'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY


def test_the_script_polls_the_data_route_and_never_writes_markup() -> None:
    assert f'"{DATA_PATH}"' in SCRIPT
    assert "innerHTML" not in SCRIPT and "outerHTML" not in SCRIPT
    assert "document.write" not in SCRIPT and "eval(" not in SCRIPT


def test_the_app_id_is_escaped() -> None:
    page = dashboard_page("<b>x</b>")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
