"""The dashboard's entry point (`streamlit run dashboard/app.py`): page setup, the sign-in gate,
the sidebar's pickers, and the pages. The collector's URL comes from the environment (see
launcher.py); the key from whoever signs in (see login.py), never from the environment."""

import streamlit as st

from dashboard import login, selection

PAGES = (
    ("views/overview.py", "Overview", ":material/monitoring:"),
    ("views/failures.py", "Failures", ":material/error:"),
    ("views/performance.py", "Performance", ":material/speed:"),
    ("views/live.py", "Live metrics", ":material/bolt:"),
    ("views/appmap.py", "Application map", ":material/hub:"),
    ("views/logs.py", "Logs", ":material/search:"),
    ("views/services.py", "Services", ":material/settings:"),
    ("views/console.py", "Console logs", ":material/terminal:"),
    ("views/jobs.py", "Jobs", ":material/work:"),
    ("views/rollout.py", "Rollout", ":material/compare_arrows:"),
    ("views/monitoring.py", "Model monitoring", ":material/query_stats:"),
    ("views/alerts.py", "Alerts", ":material/notifications:"),
)


def main() -> None:
    st.set_page_config(page_title="Endpoint Insights", page_icon=":material/monitoring:", layout="wide")
    link = login.gate()  # stops this run, before any page or collector call, unless signed in
    login.account(link)
    page = st.navigation([st.Page(path, title=title, icon=icon, default=index == 0)
                          for index, (path, title, icon) in enumerate(PAGES)])
    st.session_state["_selection"] = selection.sidebar(link)
    page.run()


main()
