"""The trace's sequence diagram (streamapp.tracing.diagram) and its page (trace_html)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streamapp.tracing.diagram import at_ms_text, clean, sequence_svg
from streamapp.tracing.trace_html import trace_page, trace_path
from tests.unit.tracing.sample_traces import COMPENSATED_HOPS, COMPLETED_HOPS, trace_doc

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&amp;\'"><img src=x onerror=alert(1)>'


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def groups(root: ET.Element, css: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if css in (g.get("class") or "").split()]


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def test_one_lane_per_node_in_order_and_one_hop_per_edge_in_causal_order() -> None:
    trace = trace_doc(COMPLETED_HOPS)
    root = parse(sequence_svg(trace))
    lanes = groups(root, "lane")
    assert [g.get("data-lane") for g in lanes] == [n["id"] for n in trace["nodes"]]
    assert [t for g in lanes for t in texts(g)] == [n["label"] for n in trace["nodes"]]
    hops = groups(root, "hop")
    assert [h.get("data-event-id") for h in hops] == [e["eventId"] for e in trace["edges"]]
    assert [(h.get("data-from"), h.get("data-to")) for h in hops] == [
        (e["from"], e["to"]) for e in trace["edges"]
    ]
    # top to bottom: each arrow lower than the one before
    ys = [float(h.find(f"{SVG}line").get("y1")) for h in hops]  # type: ignore[union-attr]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)


def test_each_arrow_goes_from_its_source_lane_to_its_target_lane() -> None:
    root = parse(sequence_svg(trace_doc(COMPLETED_HOPS)))
    x_of = {
        g.get("data-lane"): float(g.find(f"{SVG}line").get("x1"))  # type: ignore[union-attr]
        for g in groups(root, "lane")
    }
    for hop in groups(root, "hop"):
        line = hop.find(f"{SVG}line")
        assert line is not None
        x1, x2 = float(line.get("x1", 0)), float(line.get("x2", 0))
        assert x1 == x_of[hop.get("data-from")]
        assert abs(x2 - x_of[hop.get("data-to")]) <= 2  # the arrowhead touches the lifeline
        assert line.get("marker-end", "").startswith("url(#arrow-")


def test_hops_are_labelled_with_event_type_and_offset() -> None:
    root = parse(sequence_svg(trace_doc(COMPLETED_HOPS)))
    for hop, (_s, _t, event_type, at, _k) in zip(groups(root, "hop"), COMPLETED_HOPS, strict=True):
        assert texts(hop) == [f"+{at} ms", event_type]


def test_failures_compensations_and_the_end_are_marked() -> None:
    root = parse(sequence_svg(trace_doc(COMPENSATED_HOPS, status="FAILED")))
    hops = groups(root, "hop")
    kinds = [h.get("data-kind") for h in hops]
    assert kinds == [k for *_, k in COMPENSATED_HOPS]
    for hop in hops:
        kind = hop.get("data-kind")
        assert kind in (hop.get("class") or "").split()
        drawn = hop.find(f"{SVG}line")
        if drawn is None:
            drawn = hop.find(f"{SVG}path")
        assert drawn is not None
        marker = drawn.get("marker-end", "")
        if kind == "terminal":
            assert "bad" in (hop.get("class") or "") and marker == "url(#arrow-terminal-bad)"
        else:
            assert marker == f"url(#arrow-{kind})"
    css = root.find(f"{SVG}style")
    assert css is not None and css.text is not None
    assert "stroke:#dc2626" in css.text  # failures red
    assert "stroke-dasharray:6 4" in css.text  # compensations dashed
    completed = parse(sequence_svg(trace_doc(COMPLETED_HOPS)))
    assert "ok" in (groups(completed, "terminal")[0].get("class") or "").split()


def test_an_edge_from_a_lane_to_itself_is_a_loop() -> None:
    root = parse(sequence_svg(trace_doc(COMPENSATED_HOPS, status="FAILED")))
    loops = [h for h in groups(root, "hop") if h.get("data-from") == h.get("data-to")]
    assert [h.get("data-event-id") for h in loops] == ["e6", "e7"]
    saga_x = next(
        float(g.find(f"{SVG}line").get("x1"))  # type: ignore[union-attr]
        for g in groups(root, "lane")
        if g.get("data-lane") == "saga"
    )
    for loop in loops:
        path = loop.find(f"{SVG}path")
        assert path is not None and loop.find(f"{SVG}line") is None
        assert path.get("d", "").startswith(f"M{int(saga_x)},")
    # the loops' labels fit in the picture
    width = float(root.get("width", 0))
    for loop in loops:
        label = next(t for t in loop.iter(f"{SVG}text") if t.get("class") == "label")
        assert float(label.get("x", 0)) + len(label.text or "") * 7 <= width


def test_the_same_trace_gives_the_same_bytes() -> None:
    assert sequence_svg(trace_doc(COMPENSATED_HOPS)) == sequence_svg(trace_doc(COMPENSATED_HOPS))
    assert trace_page(trace_doc(COMPLETED_HOPS)) == trace_page(trace_doc(COMPLETED_HOPS))


def test_hostile_strings_are_escaped_and_the_svg_stays_well_formed() -> None:
    evil = f"{HOSTILE}\x00\x1b\ud800"
    trace = trace_doc([("client", evil, evil, 0, evil), (evil, evil, evil, 3, "normal")])
    trace["correlationId"] = evil
    trace["nodes"][1]["label"] = evil
    svg = sequence_svg(trace)
    root = parse(svg)  # raises if not well-formed XML
    names = {element.tag.removeprefix(SVG) for element in root.iter()}
    assert names <= {"svg", "title", "style", "defs", "marker", "path", "g", "rect", "line", "text"}
    assert "<script" not in svg and "<img" not in svg
    lanes = groups(root, "lane")
    assert [g.get("data-lane") for g in lanes] == ["client", clean(evil)]
    hops = groups(root, "hop")
    assert len(hops) == 2
    assert hops[0].get("data-kind") == "normal"  # an unknown kind is drawn as normal
    assert hops[1].get("data-from") == hops[1].get("data-to") == clean(evil)
    assert hops[1].find(f"{SVG}path") is not None  # a loop
    title = hops[0].find(f"{SVG}title")
    assert title is not None and HOSTILE in (title.text or "")


def test_missing_lanes_and_bad_fields_do_not_break_the_picture() -> None:
    trace: dict[str, Any] = {
        "correlationId": "c",
        "nodes": [{"id": "orders", "label": "orders"}, "junk"],
        "edges": [
            {"from": "client", "to": "orders", "eventType": "OrderCreated", "atMs": "soon"},
            None,
            {"from": "orders", "to": "saga", "eventType": None, "atMs": 12.7, "kind": 3},
        ],
    }
    root = parse(sequence_svg(trace))
    assert [g.get("data-lane") for g in groups(root, "lane")] == ["orders", "client", "saga"]
    hops = groups(root, "hop")
    assert [texts(h)[0] for h in hops] == ["+? ms", "+12 ms"]
    assert parse(sequence_svg({})).tag == f"{SVG}svg"


def test_long_names_are_cut_for_display_and_kept_whole_in_the_tooltip() -> None:
    long_type = "Event" + "X" * 200
    root = parse(sequence_svg(trace_doc([("client", "orders", long_type, 0, "normal")])))
    hop = groups(root, "hop")[0]
    label = next(t for t in hop.iter(f"{SVG}text") if t.get("class") == "label")
    assert label.text is not None and label.text.endswith("…") and len(label.text) <= 34
    assert long_type in (hop.find(f"{SVG}title").text or "")  # type: ignore[union-attr]


@given(
    st.lists(
        st.tuples(st.text(max_size=12), st.text(max_size=12), st.text(max_size=40)),
        max_size=6,
    )
)
def test_any_text_gives_well_formed_svg_with_a_lane_per_node_and_a_hop_per_edge(
    hops: list[tuple[str, str, str]],
) -> None:
    trace = trace_doc([(s, t, e, i, "normal") for i, (s, t, e) in enumerate(hops)])
    root = parse(sequence_svg(trace))
    assert len(groups(root, "lane")) == len({clean(n["id"]) for n in trace["nodes"]})
    assert len(groups(root, "hop")) == len(trace["edges"])


def test_at_ms_text() -> None:
    assert at_ms_text(0) == "+0 ms"
    assert at_ms_text(1234) == "+1234 ms"
    assert at_ms_text(True) == "+? ms"
    assert at_ms_text(None) == "+? ms"


# -- the page ------------------------------------------------------------------------------


class Tags(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def page_tags(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


def test_the_page_has_a_summary_the_diagram_the_events_and_a_way_back() -> None:
    trace = trace_doc(COMPENSATED_HOPS, status="FAILED", cid="order-7/weird id")
    page = trace_page(trace)
    tags = page_tags(page)
    names = [tag for tag, _ in tags.tags]
    assert names.count("svg") == 1
    rows = [a for tag, a in tags.tags if tag == "tr" and "event" in (a.get("class") or "")]
    assert [r["data-event-id"] for r in rows] == [e["eventId"] for e in trace["events"]]
    links = [a.get("href") for tag, a in tags.tags if tag == "a"]
    assert "/" in links and trace_path("order-7/weird id") in links
    assert trace_path("order-7/weird id") == "/traces/order-7%2Fweird%20id"
    # inline CSS only: no script, no external asset
    assert "script" not in names
    assert all(a.get("rel") != "stylesheet" for tag, a in tags.tags if tag == "link")
    assert [a.get("href") for tag, a in tags.tags if tag == "link"] == ["data:,"]
    text = " ".join(tags.text)
    assert "FAILED" in text and "PaymentFailed" in text and "+37 ms" in text


def test_the_page_escapes_every_string_of_the_trace() -> None:
    trace = trace_doc([("client", HOSTILE, HOSTILE, 0, "normal")], status=HOSTILE, cid=HOSTILE)
    trace["aggregateIds"] = [HOSTILE]
    trace["events"][0]["topic"] = HOSTILE
    page = trace_page(trace)
    tags = page_tags(page)
    assert {tag for tag, _ in tags.tags}.isdisjoint({"script", "img"})
    assert all(not key.startswith("on") for _, attrs in tags.tags for key in attrs)
    assert HOSTILE in " ".join(tags.text)  # shown as text, not markup


def test_a_trace_still_moving_refreshes_itself() -> None:
    def refreshes(status: str) -> bool:
        return any(
            a.get("http-equiv") == "refresh"
            for tag, a in page_tags(trace_page(trace_doc(COMPLETED_HOPS, status))).tags
            if tag == "meta"
        )

    assert refreshes("ACTIVE") and refreshes("STALLED")
    assert not refreshes("COMPLETED") and not refreshes("FAILED")
