import sys

from nix_cache_action.cli import main

sys.exit(main())
