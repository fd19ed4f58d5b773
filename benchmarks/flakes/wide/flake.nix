{
  description = "Benchmark fixture: 200 small derivations in a wide DAG, built offline without nixpkgs";

  # 10 layers of 20 derivations; each one depends on 2 or 3 of the previous layer and does a little
  # real work (a few files, `seq | sha256sum`). Every output is a pure function of its inputs, so a
  # `--rebuild` of any of them is reproducible. `default` depends on the whole last layer.
  #
  # `default`'s output keeps no reference to its inputs: its runtime closure is itself, so a
  # warm run fetches one path. `closure` is the same graph with each output listing its inputs'
  # paths (as a program's libraries are referenced): its runtime closure is all 201 paths.
  outputs = { self }:
    let
      system = "x86_64-linux";
      layers = 10;
      width = 20;

      mk = keep: name: deps: work: derivation {
        inherit name system deps;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [
          "-c"
          ''
            set -eu
            mkdir -p "$out/data"
            : > "$out/inputs"
            for d in $deps; do cat "$d/sum" >> "$out/inputs";${if keep then '' echo "$d" >> "$out/references";'' else ""} done
            seq 1 ${toString work} | sha256sum > "$out/data/seq"
            i=0
            while [ "$i" -lt 5 ]; do
              echo "${name} file $i" > "$out/data/f$i"
              seq "$i" 7 ${toString work} | sha256sum >> "$out/data/f$i"
              i=$((i + 1))
            done
            cat "$out/inputs" "$out/data/"* | sha256sum | cut -d' ' -f1 > "$out/sum"
          ''
        ];
      };

      # Node n of layer l depends on nodes n, n+1 and (for even n) n+7 of layer l-1.
      parentsOf = n: [ n (mod (n + 1) width) ] ++ (if mod n 2 == 0 then [ (mod (n + 7) width) ] else [ ]);
      mod = a: b: a - (a / b) * b;

      # Each layer is built from the previous one's list, so every node is evaluated once.
      layerOf = keep: l: prev:
        builtins.genList
          (n: mk keep "wide-${toString l}-${toString n}"
            (if l == 0 then [ ] else map (builtins.elemAt prev) (parentsOf n))
            2000)
          width;
      top = keep:
        let
          layersList = builtins.genList
            (l: layerOf keep l (if l == 0 then [ ] else builtins.elemAt layersList (l - 1)))
            layers;
        in
        mk keep "wide-top" (builtins.elemAt layersList (layers - 1)) 2000;
    in
    {
      packages.${system} = {
        default = top false;
        closure = top true;
      };
    };
}
