"""Who is looking: the sign-in every page's script passes before it renders anything.

The dashboard has no key of its own. A person signs in with a key, the admin key (everything) or a
service's API key (that service only), or follows a one-click link from `insights up` / `insights
demo` whose single-use token the collector exchanges for the admin key (see collector/api/
dashboard_tokens.py). The key is kept in that browser session's `st.session_state`, which lives in
the Streamlit server's memory: it is never sent to the browser, the link's token is spent on first
use and removed from the address bar, and the sign-in form is cleared on submit.

Why a gate in the script covers the websocket too: Streamlit has no HTTP route that returns app
content. Every element a browser sees is produced by a run of app.py in that browser's server-side
session and streamed over the websocket, and app.py calls `gate()` before the sidebar, the page
navigation and `page.run()`. Without a signed-in session, `gate()` renders the sign-in form and
stops the run, so no page script runs and no collector call is made, whatever page URL or
websocket message started the run. (Streamlit's own `st.login` is OpenID Connect only.)
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from collector.client import ApiError, CollectorUnreachable
from dashboard import collector_api
from dashboard.collector_api import Link

SESSION_KEY = "_signed_in"
NOTE_KEY = "_sign_in_note"
TOKEN_PARAM = "token"


def gate() -> Link:
    """This session's Link; otherwise the sign-in (form or link token), and the run stops there."""
    link = st.session_state.get(SESSION_KEY)
    if isinstance(link, Link):
        return link
    url = collector_api.collector_url()
    token = st.query_params.get(TOKEN_PARAM)
    if token:
        del st.query_params[TOKEN_PARAM]  # spent either way: a reload asks for a key rather than fail again
        link = _try(lambda: collector_api.redeem(url, token), url,
                    "This login link was already used or has expired (a link logs in once, within minutes).")
        if link is not None:
            return _signed_in(link)
    _form(url)
    st.stop()


def _form(url: str) -> None:
    st.title("Endpoint Insights")
    note = st.session_state.pop(NOTE_KEY, None)
    if note:
        st.warning(note)
    with st.form("sign_in", clear_on_submit=True):
        key = st.text_input("API key", type="password", key="sign_in_key",
                            help="The admin key sees every service; a service's API key sees that service only.")
        submitted = st.form_submit_button("Sign in", type="primary")
    st.caption("The admin key is printed by `insights up` and kept in its data dir (`insights-data/admin.key`). "
               "`insights dashboard --login-link` prints a one-click link for this dashboard.")
    if submitted and key.strip():
        link = _try(lambda: collector_api.sign_in(url, key.strip()), url, "The collector refused this key.")
        if link is not None:
            _signed_in(link)
            st.rerun()


def _try(attempt: Callable[[], Link], url: str, refused: str) -> Link | None:
    """The Link, or None with the reason shown: nothing answers, or the collector said no."""
    try:
        return attempt()
    except CollectorUnreachable:
        st.error(f"No collector answers at {url}.")
        st.markdown("Start one with `insights up` (or `insights demo` for a sample service with traffic), "
                    "or point the dashboard at yours: `insights dashboard --collector URL`.")
    except ApiError as error:
        if error.status_code not in (401, 403):
            raise
        st.error(refused)
    return None


def _signed_in(link: Link) -> Link:
    st.session_state[SESSION_KEY] = link
    return link


def sign_out(note: str | None = None) -> None:
    """Forget this session (its key, its pickers); `note` is shown above the sign-in form."""
    st.session_state.clear()
    if note:
        st.session_state[NOTE_KEY] = note


def account(link: Link) -> None:
    """The sidebar's who-am-I and the sign-out button."""
    with st.sidebar:
        who = "the admin key" if link.is_admin else "the API key of a single service"
        st.caption(f"Signed in with {who}.")
        st.button("Log out", key="log_out", on_click=sign_out, icon=":material/logout:")
