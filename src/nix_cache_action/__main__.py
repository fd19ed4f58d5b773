import sys

from nix_cache_action.start import main

sys.exit(main())
