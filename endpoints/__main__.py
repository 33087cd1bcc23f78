"""`python -m endpoints host NAME --data-dir DIR [--address A]`: the endpoint host process the collector starts
(keeper.py); not a command users run."""

import argparse
import sys
from pathlib import Path

from endpoints.host import main

parser = argparse.ArgumentParser(prog="python -m endpoints")
commands = parser.add_subparsers(dest="command", required=True)
host = commands.add_parser("host", help="serve one endpoint: its router and its deployments")
host.add_argument("name")
host.add_argument("--data-dir", type=Path, required=True)
host.add_argument("--address", default="127.0.0.1", help="where the router listens")
arguments = parser.parse_args()
sys.exit(main(arguments.name, arguments.data_dir, arguments.address))
