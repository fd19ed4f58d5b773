from nix_cache_action.start import entry

entry()
