"""The dashboard asks who you are (issue 14, item 2; item 12's dashboard part; telemetry as text).

Before: the dashboard took the admin key from its environment, so anyone who reached it read every
service's keys and rows and flipped any switch; an exception type of `[x](http://evil)` rendered as
a live link. Now: nothing renders and the collector is not called until a session signs in (the
admin key, a service's API key that sees that service only, or a one-click login link whose token
works once); every call carries that session's key; telemetry is shown as text.

Three levels: the collector's token routes (in process), the app under AppTest against a real
collector behind a recording proxy (the collector's access log), and Chromium against the dashboard
started as `insights up` starts it.
"""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path

import pytest
from collector_process import free_port
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from collector.api.dashboard_tokens import LoginTokens
from dashboard import collector_api, escape, login
from dashboard.launcher import run_dashboard, stop_dashboard, wait_ready

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))
from dashboard_harness import TIMEOUT_MS, VIEWPORT, RecordingProxy, chromium, dashboard_stack, playwright_api, sign_in, signed_in  # noqa: E402
from dashboard_seed import APP  # noqa: E402

EVIL = ("[x](http://evil.test/a)", "![i](http://evil.test/i.png)", '<a href="http://evil.test/p">p</a>')
EVIL_OPERATION = "[op](http://evil.test/op) www.evil.test"


# --- the collector's side: login tokens and whoami ---------------------------------------------

def test_login_tokens_are_minted_with_the_admin_key_only(app_collector):
    service = app_collector.create_service("tok")
    with app_collector.client() as nobody, app_collector.client({"x-api-key": service["api_key"]}) as owner:
        assert nobody.post("/api/dashboard/tokens").status_code == 401
        assert owner.post("/api/dashboard/tokens").status_code == 403
    with app_collector.admin as admin:
        answer = admin.post("/api/dashboard/tokens")
    assert answer.status_code == 201 and len(answer.json()["token"]) >= 32 and answer.json()["expires_in_s"] <= 900


def test_a_login_token_works_once(app_collector):
    with app_collector.admin as admin:
        token = admin.post("/api/dashboard/tokens").json()["token"]
    with app_collector.client() as browser_side:
        first = browser_side.post("/api/dashboard/tokens/redeem", headers={"x-dashboard-token": token})
        assert first.status_code == 200 and first.json()["api_key"] == app_collector.admin_key
        again = browser_side.post("/api/dashboard/tokens/redeem", headers={"x-dashboard-token": token})
        assert again.status_code == 401 and "used or expired" in again.json()["detail"]
        for headers in ({}, {"x-dashboard-token": "guess"}, {"x-dashboard-token": "x" * 5000}):
            assert browser_side.post("/api/dashboard/tokens/redeem", headers=headers).status_code == 401


def test_a_login_token_expires_and_few_are_outstanding():
    tokens = LoginTokens(ttl_s=0.05, limit=3)
    late = tokens.mint()
    time.sleep(0.1)
    assert not tokens.redeem(late)
    tokens = LoginTokens(limit=3)
    minted = [tokens.mint() for _ in range(5)]
    assert [tokens.redeem(t) for t in minted] == [False, False, True, True, True]


def test_whoami_says_whose_key_it_is(app_collector):
    service = app_collector.create_service("who")
    with app_collector.admin as admin:
        assert admin.get("/api/dashboard/whoami").json() == {"admin": True, "service": None}
    with app_collector.client({"x-api-key": service["api_key"]}) as owner:
        assert owner.get("/api/dashboard/whoami").json() == {"admin": False, "service": service["name"]}
    with app_collector.client({"x-api-key": "nobody's"}) as stranger:
        assert stranger.get("/api/dashboard/whoami").status_code == 401


# --- the app, under AppTest, against a real collector behind a recording proxy ------------------

@pytest.fixture
def proxy(collector, monkeypatch, tmp_path):
    """The collector behind a recording proxy, and the dashboard pointed at it. The environment also
    holds the admin key and a data dir with admin.key, where the dashboard used to find its key."""
    recording = RecordingProxy(collector.url).start()
    (tmp_path / "admin.key").write_text(collector.admin_key)
    monkeypatch.setenv("INSIGHTS_URL", recording.url)
    monkeypatch.setenv("INSIGHTS_API_KEY", collector.admin_key)
    monkeypatch.setenv("INSIGHTS_DATA_DIR", str(tmp_path))
    collector_api.services.clear()
    yield recording
    recording.stop()


def _sign_in_form(at: AppTest, key: str) -> AppTest:
    at.text_input(key="sign_in_key").input(key)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def _shows_only_the_sign_in(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Endpoint Insights"]
    assert at.text_input(key="sign_in_key")
    for kind in ("metric", "dataframe", "json", "code", "plotly_chart", "toggle", "selectbox", "expander"):
        assert not at.get(kind), kind
    assert not at.sidebar.button and login.SESSION_KEY not in at.session_state


PAGES = sorted(f"views/{p.name}" for p in (Path(APP).parent / "views").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("page", [None, *PAGES])
def test_without_a_session_no_page_renders_and_the_collector_is_not_called(proxy, collector, page):
    collector.create_service("nosession")
    at = AppTest.from_file(APP, default_timeout=30).run()
    if page:
        at.switch_page(page).run()
    _shows_only_the_sign_in(at)
    assert proxy.hits == []


def test_a_wrong_key_is_refused_and_shows_nothing(proxy):
    at = _sign_in_form(AppTest.from_file(APP, default_timeout=30).run(), "not-a-key")
    assert "refused this key" in at.error[0].value
    _shows_only_the_sign_in(at)
    assert [hit.path for hit in proxy.hits] == ["/api/dashboard/whoami"]


def test_the_admin_key_sees_every_service_and_every_call_carries_it(proxy, collector):
    names = [collector.create_service("adm")["name"] for _ in range(2)]
    at = _sign_in_form(AppTest.from_file(APP, default_timeout=30).run(), collector.admin_key)
    assert set(names) <= set(at.sidebar.selectbox(key="service").options)
    assert at.session_state[login.SESSION_KEY] == collector_api.Link(proxy.url, collector.admin_key)
    at.switch_page("views/services.py").run()
    assert not at.exception and at.toggle(key=f"enable_{at.sidebar.selectbox(key='service').value}").disabled is False
    assert {hit.key for hit in proxy.hits} == {collector.admin_key}
    at.sidebar.button(key="log_out").click().run()
    _shows_only_the_sign_in(at)


def test_a_service_key_sees_only_its_service(proxy, collector):
    other = collector.create_service("theirs")["name"]
    mine = collector.create_service("own")
    admin = signed_in(AppTest.from_file(APP, default_timeout=30), proxy.url, collector.admin_key).run()
    assert other in admin.sidebar.selectbox(key="service").options  # the service list is cached now
    start = len(proxy.hits)

    at = _sign_in_form(AppTest.from_file(APP, default_timeout=30).run(), mine["api_key"])
    assert at.sidebar.selectbox(key="service").options == [mine["name"]]
    assert "a single service" in at.sidebar.caption[0].value
    at.switch_page("views/services.py").run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["service"].tolist() == [mine["name"]]
    assert at.toggle(key=f"enable_{mine['name']}").disabled is True
    assert "admin key" in "\n".join(c.value for c in at.caption) and not at.json
    for page in ("overview", "failures", "logs"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, at.exception
    hits = proxy.hits[start:]
    assert {hit.key for hit in hits} == {mine["api_key"]}
    assert not [hit for hit in hits if hit.path == "/api/services" or other in hit.path or "/export" in hit.path]


def test_a_login_link_signs_in_once(proxy, collector):
    with collector.admin as admin:
        token = admin.post("/api/dashboard/tokens").json()["token"]
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["token"] = token
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[login.SESSION_KEY] == collector_api.Link(proxy.url, collector.admin_key)
    assert "token" not in at.query_params and at.sidebar.selectbox(key="time_range")

    again = AppTest.from_file(APP, default_timeout=30)
    again.query_params["token"] = token
    again.run()
    assert "already used or has expired" in again.error[0].value
    _shows_only_the_sign_in(again)


def test_the_dashboard_process_gets_no_key(collector, monkeypatch):
    monkeypatch.setenv("INSIGHTS_API_KEY", collector.admin_key)
    port = free_port()
    process = run_dashboard(collector.url, port, collector.admin_key, log_file=open("/dev/null", "wb"))
    try:
        assert wait_ready(port, process)
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
    finally:
        stop_dashboard(process)
    assert b"INSIGHTS_API_KEY" not in environ and collector.admin_key.encode() not in environ
    assert f"INSIGHTS_URL={collector.url}".encode() in environ


@pytest.mark.parametrize("destination, secret", [
    ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWFjY291bnQta2V5LWRvLW5vdC1zaG93;"
     "BlobEndpoint=https://127.0.0.1:9/acct", "c2VjcmV0LWFjY291bnQta2V5LWRvLW5vdC1zaG93"),
    ("https://127.0.0.1:9/exports?sv=2024-01-01&sp=rwl&sig=c2lnbmF0dXJlLWRvLW5vdC1zaG93", "c2lnbmF0dXJlLWRvLW5vdC1zaG93"),
])
def test_export_secrets_are_not_shown(proxy, collector, destination, secret):
    name = collector.create_service("exp")["name"]
    body = {"destination": destination, "enabled": False, **({"container": "exports"} if "AccountKey" in destination else {})}
    with collector.admin as admin:
        admin.put(f"/api/services/{name}/export", json=body).raise_for_status()
    at = signed_in(AppTest.from_file(APP, default_timeout=30), proxy.url, collector.admin_key)
    at.session_state["service"] = name
    at.run().switch_page("views/services.py").run()
    assert not at.exception, at.exception
    shown = "\n".join(str(element.value) for kind in ("json", "code", "markdown", "caption") for element in at.get(kind))
    assert "127.0.0.1:9" in shown and secret not in shown


# --- telemetry is text ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", [*EVIL, EVIL_OPERATION, "a@evil.test", "<http://evil.test>", "[x]: http://evil.test\n[x]",
                                  "`code` *em* $x$ :red[r]", "&lt;b&gt; back\\slash"])
def test_escaped_markdown_renders_as_its_text(text):
    rendered = MarkdownIt("commonmark").enable("strikethrough").render(f"**{escape.markdown(text)}** stack")
    assert rendered.startswith("<p><strong>") and rendered.endswith("</strong> stack</p>\n"), rendered
    inner = rendered[len("<p><strong>"):-len("</strong> stack</p>\n")]
    assert "<" not in inner  # no link, image, code, emphasis or HTML: text only
    assert html.unescape(inner).replace(escape.WORD_JOINER, "") == " ".join(text.splitlines())
    assert "<" not in escape.plotly(text)


def _evil_rows(count: int = 6) -> list[dict]:
    """Failed requests named like a link, each with an exception whose type is a link, an image or
    HTML, and whose message is an image."""
    now = time.time()
    rows = []
    for index in range(count):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 60 * (count - index)))
        operation = f"{index:032x}"
        rows.append({"itemType": "request", "timestamp": stamp, "id": operation[:16], "name": EVIL_OPERATION,
                     "success": False, "resultCode": "500", "duration": 12.5, "operation_Id": operation})
        kind = EVIL[index % len(EVIL)]
        rows.append({"itemType": "exception", "timestamp": stamp, "type": kind, "message": "![m](http://evil.test/m.png)",
                     "operation_Id": operation, "problemId": kind, "severityLevel": 3,
                     "details": [{"id": 1, "outerId": 0, "type": kind, "message": "boom", "parsedStack": []}]})
    return rows


# --- in Chromium: the dashboard as `insights up` starts it ----------------------------------------

@pytest.fixture(scope="module")
def browser_stack(tmp_path_factory):
    """A collector with an `evil` service (telemetry shaped like links and images) and an `other`
    one, the dashboard on it behind a recording proxy."""
    import orjson

    services = {}

    def seed(collector):
        services["evil"] = collector.create_service("evil")
        services["other"] = collector.create_service("other")
        collector.import_rows(services["evil"]["name"], [orjson.dumps(row) for row in _evil_rows()])

    with dashboard_stack(tmp_path_factory.mktemp("dash-security"), seed=seed) as stack:
        yield stack, services


@pytest.fixture
def browser():
    """A fresh Chromium context (no cookies or storage from another test), every URL it requested,
    and the browser, for a second context."""
    with chromium() as chrome:
        context = chrome.new_context(viewport=VIEWPORT)
        requested: list[str] = []
        context.on("request", lambda request: requested.append(request.url))
        yield context, requested, chrome


def _visible_text(page) -> str:
    """What a person reads (the word joiners escape.markdown puts before ':' and '@' show nothing)."""
    return page.evaluate("() => document.body.innerText").replace(escape.WORD_JOINER, "")


def _links_and_images_to_evil(page) -> list[str]:
    """Every href or src (HTML and Plotly's SVG) pointing at evil.test."""
    return page.evaluate("""() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
        .filter(a => /(^|:)(href|src|srcset)$/i.test(a.name) && a.value.includes('evil'))
        .map(a => `${e.tagName} ${a.name}=${a.value}`))""")


def test_browser_shows_nothing_and_calls_nothing_without_a_session(browser_stack, browser):
    stack, services = browser_stack
    context = browser[0]
    expect = playwright_api().expect
    start = len(stack.proxy.hits)
    page = context.new_page()
    for path in ("", "/failures", "/services"):
        page.goto(stack.address + path)
        expect(page.get_by_label("API key", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
        page.wait_for_timeout(1000)  # time for any further script run to show something
        assert page.get_by_test_id("stMetric").count() == 0 and page.get_by_test_id("stSidebarNav").count() == 0
        content = page.content()
        assert services["evil"]["name"] not in content and services["other"]["name"] not in content
    assert stack.proxy.hits[start:] == []


def test_browser_admin_key_then_log_out(browser_stack, browser):
    stack, services = browser_stack
    expect = playwright_api().expect
    page = browser[0].new_page()
    sign_in(page, stack.address, stack.collector.admin_key)
    expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=TIMEOUT_MS)
    assert page.get_by_label("API key", exact=True).count() == 0
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("API key", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("stMetric")).to_have_count(0)


def test_browser_service_key_sees_only_its_service(browser_stack, browser):
    stack, services = browser_stack
    expect = playwright_api().expect
    page = browser[0].new_page()
    mine, other = services["other"], services["evil"]
    sign_in(page, stack.address, mine["api_key"])
    picker = page.get_by_role("combobox", name="Service")
    expect(picker).to_have_value(mine["name"], timeout=TIMEOUT_MS)
    picker.click()
    expect(page.get_by_role("option")).to_have_count(1)
    expect(page.get_by_role("option")).to_have_text(mine["name"])
    page.keyboard.press("Escape")
    page.get_by_test_id("stSidebarNav").get_by_text("Services").click()
    expect(page.get_by_role("switch", name="enable_app_insights")).to_be_disabled(timeout=TIMEOUT_MS)
    assert other["name"] not in page.content()
    assert mine["api_key"] not in page.content()  # masked: prefix only
    assert {hit.key for hit in stack.proxy.hits if hit.key != stack.collector.admin_key} == {mine["api_key"]}


def test_browser_login_link_works_once(browser_stack, browser):
    stack, _ = browser_stack
    expect = playwright_api().expect
    with stack.collector.admin as admin:
        token = admin.post("/api/dashboard/tokens").json()["token"]
    link = f"{stack.address}/?token={token}"
    page = browser[0].new_page()
    page.goto(link)
    expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page).not_to_have_url(link)  # the spent token left the address bar
    again = browser[2].new_context(viewport=VIEWPORT).new_page()  # another browser, the same link
    again.goto(link)
    expect(again.get_by_text("already used or has expired")).to_be_visible(timeout=TIMEOUT_MS)
    expect(again.get_by_label("API key", exact=True)).to_be_visible()
    assert again.get_by_test_id("stMetric").count() == 0


def test_browser_telemetry_markdown_is_shown_as_text(browser_stack, browser):
    stack, services = browser_stack
    context, requested, _ = browser
    expect = playwright_api().expect
    page = context.new_page()
    sign_in(page, stack.address, stack.collector.admin_key)
    picker = page.get_by_role("combobox", name="Service")
    expect(picker).to_be_visible(timeout=TIMEOUT_MS)
    if picker.input_value() != services["evil"]["name"]:
        picker.click()
        page.get_by_role("option", name=services["evil"]["name"]).click()
    expect(page.locator(".js-plotly-plot .gtitle", has_text="Exceptions by type")).to_have_count(1, timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # let plotly finish drawing
    assert _links_and_images_to_evil(page) == []
    legend = page.locator(".js-plotly-plot .legendtext", has_text='<a href="http://evil.test/p">p</a>')
    expect(legend).to_have_count(1)

    page.get_by_test_id("stSidebarNav").get_by_text("Failures").click()
    expanders = page.get_by_test_id("stExpander")
    expect(expanders).to_have_count(5, timeout=TIMEOUT_MS)
    for index in range(5):
        expanders.nth(index).locator("summary").click()
    expect(expanders.last.get_by_test_id("stMarkdownContainer").last).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    assert _links_and_images_to_evil(page) == []
    text = _visible_text(page)
    assert EVIL_OPERATION in text
    for kind in EVIL:
        assert f"{kind} stack" in text
    assert [address for address in requested if "evil" in address] == []
