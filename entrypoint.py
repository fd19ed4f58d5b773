"""The action's entry point: reach the package in src/ and run the action's main()."""

import sys
from pathlib import Path

# The action runs from its checkout, not an installed package: the venv holds only the locked
# third-party dependencies.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from nix_cache_action.action import main
from nix_cache_action.files import tolerant_streams

if __name__ == "__main__":
    tolerant_streams()
    sys.exit(main())
