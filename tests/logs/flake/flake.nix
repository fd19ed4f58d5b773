{
  outputs = { self }: let
    system = "x86_64-linux";
    mk = name: script: deps: derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" script ];
      PATH = "/usr/bin:/bin";
      inherit deps;
    };
    leaf = mk "leaf" "echo leaf > $out" [];
    mid = mk "mid" "echo mid $deps > $out; echo building mid" [ leaf ];
  in {
    packages.${system} = {
      default = mk "top" "cat $deps > $out" [ mid ];
      nondet = mk "nondet" "date +%s%N > $out" [ leaf ];
      fails = mk "fails" "echo oops >&2; exit 3" [ leaf ];
      # cancel-V.log: without --keep-going, Nix stops slow when fails-late fails.
      slow = mk "slow" "echo slow started; sleep 30; echo slow > $out" [ leaf ];
      fails-late = mk "fails-late" "sleep 1; echo oops >&2; exit 3" [ leaf ];
    };
  };
}
