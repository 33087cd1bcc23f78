"""`python -m collector` runs the `insights` command line, a contract older than the composition
root (`insights/`) that now holds it. The core imports nothing above it: this entry script runs that
package by name and is itself imported by no one."""

import runpy

runpy.run_module("insights", run_name="__main__", alter_sys=True)
