"""The /ui memory inspector in a real headless Chromium (Debian's package, driven by
Playwright over the DevTools protocol; see tests/browser.py): a key opens its memory, search
explains its ranking, a memory's history, the graph and the facts behind an edge, edits,
invalidation, quarantine review and forgetting; a key of another user sees none of it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

from agentmem import Memory
from agentmem_server import ServerSettings, create_app, create_key

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ALICE, BOB = "ui-alice", "ui-bob"
FACTS = [
    ("Ines works at Northwind.", {"subject": "Ines", "entities": ["Ines", "Northwind"]}),
    ("Northwind is based in Porto.", {"subject": "Northwind", "entities": ["Northwind", "Porto"]}),
    ("Tomas plays chess with Ines.", {"subject": "Tomas", "entities": ["Tomas", "Ines"]}),
]


@dataclass
class Site:
    """The live server's URL, two users' keys and the ids of what was stored."""

    url: str
    alice: str
    bob: str
    admin: str
    changed: str
    locker: str
    held: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(server_mem: Memory) -> Iterator[Site]:
    """A real HTTP server (uvicorn in a thread) over the session's memory, with Alice's
    episodes, facts (a graph), one edited memory and one held write, and one of Bob's."""
    mem = server_mem
    scope: dict[str, Any] = {"org_id": "acme", "user_id": ALICE}
    mem.add_many(
        [{"text": t, "kind": "semantic", "metadata": m} for t, m in FACTS], **scope, infer=False
    )
    changed = mem.add(
        "Ines drinks tea every morning", **scope, metadata={"topic": "habits"}, infer=False
    )
    mem.update(changed.id, text="Ines drinks green tea every morning", **scope)
    locker = mem.add(
        "Ines's locker code is 4471", **scope, event_time="2024-03-01T09:00:00Z", infer=False
    )
    held = mem.add("Ines is allergic to peanuts", **scope, source="tool", infer=False)
    mem.add("Bob keeps bees on his roof", org_id="acme", user_id=BOB, infer=False)
    store = mem.backends.store
    port = _free_port()
    app = create_app(mem, ServerSettings(rate_limit="off", log_level="WARNING"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    try:
        yield Site(
            url=url,
            alice=create_key(store, org_id="acme", user_ids=(ALICE,), name="alice").token,
            bob=create_key(store, org_id="acme", user_ids=(BOB,), name="bob").token,
            admin=create_key(store, org_id="acme", name="admin").token,
            changed=changed.id,
            locker=locker.id,
            held=held.id,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab with its own storage (no key carried over from another test)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    try:
        yield tab
    finally:
        context.close()


def sign_in(page: Page, site: Site, token: str) -> None:
    page.goto(f"{site.url}/ui")
    page.fill("#key-input", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#main:not([hidden])")


def open_tab(page: Page, name: str) -> None:
    page.click(f"#tabs button[data-tab={name}]")


def test_a_key_inspects_searches_explains_and_forgets(
    page: Page, site: Site, server_mem: Memory
) -> None:
    sign_in(page, site, site.alice)
    page.wait_for_selector(f"#scope-list li[data-scope='org_id=acme \u00b7 user_id={ALICE}']")
    rows = page.locator("#memory-table tbody tr.row")
    rows.first.wait_for()
    assert rows.count() == 5  # three facts, the edited memory, the locker code (not the held one)
    assert "peanuts" not in page.locator("#memory-table").inner_text()

    # a memory's versions
    page.click(f"#memory-table tr[data-id='{site.changed}']")
    page.wait_for_selector("#detail:not([hidden]) #history .version >> nth=1")
    history = page.locator("#history").inner_text()
    assert "ADD v1" in history and "UPDATE v2" in history
    assert "Ines drinks tea every morning" in history and "green tea" in history
    assert "user (trusted)" in page.locator("#detail").inner_text()

    # search, explained: each channel's rank and what it added to the fused score
    open_tab(page, "search")
    page.fill("#search-form input[name=query]", "where does Ines work")
    page.click("#search-form button[type=submit]")
    first = page.locator("#hit-table tbody tr").first
    first.wait_for()
    assert "Ines works at Northwind." in first.inner_text()
    headers = page.locator("#hit-table thead th").all_inner_texts()
    assert {"dense", "bm25"} <= set(headers)
    assert "#1" in first.inner_text() and "+0." in first.inner_text()
    assert "weight / (" in page.locator("#ranking-note").inner_text()

    # the graph, and the facts behind an edge
    open_tab(page, "graph")  # drawn on opening
    frame = page.frame_locator("#graph-frame")
    frame.locator("body[data-rendered='4']").wait_for()
    assert frame.locator("circle").count() == 4
    frame.locator("line.edge-hit").first.click(force=True)
    fact = page.locator("#edge-facts .fact").first
    fact.wait_for()
    assert fact.inner_text().split("\n")[0].split(" ", 1)[1] in {t for t, _ in FACTS}

    # forget a memory, with confirmation, and see it gone
    open_tab(page, "memories")
    page.click(f"#memory-table tr[data-id='{site.locker}']")
    page.click("#forget-memory")
    assert page.locator("#confirm-ok").is_disabled()
    page.fill("#confirm-input", "forget")
    page.click("#confirm-ok")
    page.wait_for_selector("#status:has-text('forgot 1 memory')")
    page.wait_for_selector(f"#memory-table tr[data-id='{site.locker}']", state="detached")
    assert "4471" not in page.locator("body").inner_text()
    gone = httpx.get(
        f"{site.url}/v1/memories/{site.locker}",
        params={"user_id": ALICE},
        headers={"Authorization": f"Bearer {site.alice}"},
    )
    assert gone.status_code == 404

    # a clean retrain after the forget, probed for leaks, shows beside the adapters
    from agentmem import erasure
    from agentmem.models import Scope

    (report,) = erasure.reports(server_mem, scope=Scope.of(org_id="acme", user_id=ALICE))
    tested = {"scope_key": "acme", "kind": "retriever", "version": 3, "questions": 5,
              "leaks": 0, "clean_sources": True, "passed": True}  # fmt: skip
    probe = {"questions": 5, "leaks": 0, "passed": True, "adapters": [tested]}
    erasure.finish_retrain(server_mem, report.forget_id, [], probe)
    open_tab(page, "learning")
    row = page.locator(f"#probe-table tbody tr:has-text('{report.forget_id[:8]}')")
    row.wait_for()
    assert row.locator("td").all_inner_texts()[2:] == ["retriever", "3", "5", "0", "yes"]


def test_correct_invalidate_and_review_held_writes(
    page: Page, site: Site, server_mem: Memory
) -> None:
    sign_in(page, site, site.alice)
    page.click(f"#memory-table tr[data-id='{site.changed}']")
    page.click("#edit-memory")
    page.click("#editor-save")  # nothing changed: no new version
    page.wait_for_selector("#editor-error:has-text('nothing changed')")
    page.fill("#editor-importance", "")  # an empty box keeps the importance, not 0
    page.fill("#editor-text", "Ines drinks matcha every morning")
    page.click("#editor-save")
    page.wait_for_selector("#history .version >> text=UPDATE v3")
    assert page.locator("#detail-text").inner_text() == "Ines drinks matcha every morning"
    assert server_mem.get(site.changed, org_id="acme", user_id=ALICE).importance == 0.5

    page.click("#invalidate-memory")
    page.click("#confirm-ok")
    page.wait_for_selector("#history .version >> text=INVALIDATE")
    page.wait_for_selector(f"#memory-table tr[data-id='{site.changed}']", state="detached")

    # search as of a day before anything was written finds nothing; as of now it does
    open_tab(page, "search")
    page.fill("#search-form input[name=query]", "Ines")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    page.fill("#search-form input[name=as_of]", yesterday)
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#status:text-is('0 hits')")
    page.fill("#search-form input[name=as_of]", "")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#hit-table tbody tr")

    open_tab(page, "review")
    held = page.locator(f"#quarantine-table tr[data-id='{site.held}']")
    held.wait_for()
    assert "tool" in held.inner_text() and "peanuts" in held.inner_text()
    held.locator("button.release").click()
    held.wait_for(state="detached")
    open_tab(page, "memories")
    page.wait_for_selector(f"#memory-table tr[data-id='{site.held}']")


def test_editing_a_crlf_memory_changes_only_what_was_edited(
    page: Page, site: Site, server_mem: Memory
) -> None:
    """The textarea turns CR LF into LF; the dialog took that for a text edit and PATCHed the
    text (a new version, re-embedded) when only the metadata changed."""
    user = "ui-dana"
    record = server_mem.add(
        "Dana likes hiking\r\nand climbing",
        org_id="acme",
        user_id=user,
        metadata={"n": 1},
        infer=False,
    )
    key = create_key(server_mem.backends.store, org_id="acme", user_ids=(user,)).token
    sign_in(page, site, key)
    page.click(f"#memory-table tr[data-id='{record.id}']")
    page.click("#edit-memory")
    page.click("#editor-save")  # the text only looks different: nothing changed
    page.wait_for_selector("#editor-error:has-text('nothing changed')")
    page.fill("#editor-metadata", '{"n": 2}')
    page.click("#editor-save")
    page.wait_for_selector("#history .version >> text=UPDATE v2")
    after = server_mem.get(record.id, org_id="acme", user_id=user)
    assert after.metadata == {"n": 2} and after.text == record.text
    # an edit of the text keeps the CR LF line breaks the memory had
    page.click("#edit-memory")
    page.fill("#editor-text", "Dana likes hiking\nand sailing")
    page.click("#editor-save")
    page.wait_for_selector("#history .version >> text=UPDATE v3")
    edited = server_mem.get(record.id, org_id="acme", user_id=user)
    assert edited.text == "Dana likes hiking\r\nand sailing"


def test_another_users_key_sees_none_of_it(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/ui")
    assert page.locator("#main").is_hidden()  # no key, no data
    page.fill("#key-input", "amk_nope_nope")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('unknown, malformed or revoked')")

    sign_in(page, site, site.bob)
    page.wait_for_selector("#memory-table tbody tr.row")
    scopes = page.locator("#scope-list li").all_inner_texts()
    assert len(scopes) == 1 and BOB in scopes[0]
    assert "bees" in page.locator("#memory-table").inner_text()
    # asking for Alice's scope by hand is refused, and nothing of hers shows
    page.click("#other-scope summary")
    page.fill("#scope-form input[name=user_id]", ALICE)
    page.click("#scope-form button[type=submit]")
    page.wait_for_selector("#status.error:has-text('403')")
    # the refused scope shows no rows (not bob's, left from before, under alice's name)
    assert page.locator("#memory-table tbody tr").count() == 0
    open_tab(page, "search")
    page.fill("#search-form input[name=query]", "Ines")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#status.error:has-text('403')")
    text = page.locator("body").inner_text()
    assert "Ines" not in text.replace(f"user_id={ALICE}", "")

    # Bob forgets everything of his own, after typing the scope's name
    page.click("#scope-list li")
    open_tab(page, "review")
    page.click("#forget-scope")
    label = f"org_id=acme user_id={BOB}"  # what a keyboard types: no middle dot
    page.fill("#confirm-input", "user_id=ui-bo")
    assert page.locator("#confirm-ok").is_disabled()
    page.fill("#confirm-input", label)
    page.press("#confirm-input", "Enter")  # Enter confirms once the words match
    page.wait_for_selector("#forget-report:not([hidden])")
    assert "1 memories" in page.locator("#forget-report").inner_text()
    open_tab(page, "memories")
    page.wait_for_selector("#memory-count:has-text('0 memories')")
    assert "bees" not in page.locator("body").inner_text()


SLOW_SEARCH = """(() => { const f = window.fetch; window.fetch = async (url, opts) => {
  const r = await f(url, opts);
  if (String(url).includes("/v1/memories/search") && window.__slowSearch)
    await new Promise((ok) => setTimeout(ok, 1500));
  return r; }; })();"""


def test_a_search_answered_after_the_scope_changed_is_not_drawn(page: Page, site: Site) -> None:
    """Alice's hits, arriving after the user moved to Bob's scope, never show under Bob's."""
    page.add_init_script(SLOW_SEARCH)
    sign_in(page, site, site.admin)
    page.click(f"#scope-list li:has-text('{ALICE}')")
    open_tab(page, "search")
    page.evaluate("() => { window.__slowSearch = true; }")
    page.fill("#search-form input[name=query]", "Ines")
    page.click("#search-form button[type=submit]")
    page.click("#other-scope summary")  # Bob's scope (his memories may be forgotten by now)
    page.fill("#scope-form input[name=user_id]", BOB)
    page.click("#scope-form button[type=submit]")
    page.wait_for_timeout(2500)  # the slow answer has arrived by now
    assert BOB in page.locator("#scope-title").inner_text()
    assert "Ines" not in page.locator("#hit-table").inner_text()


def test_forgetting_a_blank_scope_must_be_typed_too(page: Page, site: Site) -> None:
    """An org-wide key with the scope form left blank reaches every user of the org: the
    forget button asks for the words to be typed like any other scope, never a bare OK."""
    sign_in(page, site, site.admin)
    page.click("#other-scope summary")
    page.click("#scope-form button[type=submit]")
    open_tab(page, "review")
    page.click("#forget-scope")
    assert page.locator("#confirm-input").is_visible()
    assert page.locator("#confirm-ok").is_disabled()
    page.fill("#confirm-input", "every scope of this key")
    assert page.locator("#confirm-ok").is_enabled()
    page.click("#confirm-cancel")


def test_api_docs_render_with_no_network_beyond_the_server(page: Page, site: Site) -> None:
    """/docs (Swagger UI) and /redoc load every asset from the server itself."""
    elsewhere: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(site.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{site.url}/docs")
    page.wait_for_selector("#swagger-ui .info .title:has-text('agentmem')")
    page.wait_for_selector("#operations-memories-addMemory")
    page.goto(f"{site.url}/redoc")
    page.wait_for_selector("h1:has-text('agentmem')")
    page.wait_for_selector("[data-section-id='operation/addMemory']", state="attached")
    assert elsewhere == []
