"""The dashboard's entry point (`streamlit run dashboard/app.py`): page setup, the sidebar's
pickers, and the pages. The collector's URL and key come from the environment (see launcher.py)."""

import streamlit as st

from dashboard import collector_api, selection

PAGES = (
    ("views/overview.py", "Overview", ":material/monitoring:"),
    ("views/failures.py", "Failures", ":material/error:"),
    ("views/performance.py", "Performance", ":material/speed:"),
    ("views/logs.py", "Logs", ":material/search:"),
    ("views/services.py", "Services", ":material/settings:"),
    ("views/console.py", "Console logs", ":material/terminal:"),
    ("views/jobs.py", "Jobs", ":material/work:"),
)


def main() -> None:
    st.set_page_config(page_title="Endpoint Insights", page_icon=":material/monitoring:", layout="wide")
    page = st.navigation([st.Page(path, title=title, icon=icon, default=index == 0)
                          for index, (path, title, icon) in enumerate(PAGES)])
    st.session_state["_selection"] = selection.sidebar(collector_api.link_from_environment())
    page.run()


main()
