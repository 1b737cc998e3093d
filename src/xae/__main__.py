"""``python -m xae`` runs the command-line tool."""
import sys

from xae.cli import main

sys.exit(main())
