{
  description = "nix-cache-action: build flake outputs, account for every cache hit and miss, check reproducibility";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      # pyproject.toml holds the one version; the package must not drift from it.
      version = (builtins.fromTOML (builtins.readFile ./pyproject.toml)).project.version;
      runtimeDeps = ps: with ps; [ jq tenacity pygithub ];
      # What the unit tier imports besides the runtime dependencies.
      unitTestDeps = ps: with ps; [ pytest pytest-httpserver cmarkgfm jsonschema ruamel-yaml ];
      package = pkgs: pkgs.python3Packages.buildPythonApplication {
        pname = "nix-cache-action";
        inherit version;
        pyproject = true;
        src = self;
        build-system = [ pkgs.python3Packages.setuptools ];
        dependencies = runtimeDeps pkgs.python3Packages;
        nativeCheckInputs = unitTestDeps pkgs.python3Packages;
        # The unit tier only: the other tiers need Nix, npm packages and a runner.
        checkPhase = ''
          runHook preCheck
          pytest tests/unit -q -p no:cacheprovider
          runHook postCheck
        '';
        meta.mainProgram = "nix-cache-action";
      };
    in
    {
      packages = forAll (_system: pkgs: rec {
        nix-cache-action = package pkgs;
        default = nix-cache-action;
      });

      apps = forAll (system: _pkgs: {
        default = {
          type = "app";
          program = nixpkgs.lib.getExe self.packages.${system}.default;
          meta.description = "Build flake outputs, account for cache hits and misses, check reproducibility";
        };
      });

      devShells = forAll (_system: pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (ps: runtimeDeps ps ++ unitTestDeps ps ++ [ ps.mypy ]))
            pkgs.ruff pkgs.jq pkgs.diffoscope pkgs.nodejs
          ];
        };
      });

      checks = forAll (system: pkgs: {
        package = self.packages.${system}.default;
        lint = pkgs.runCommand "nix-cache-action-lint" { nativeBuildInputs = [ pkgs.ruff ]; } ''
          cd ${self}
          ruff check --no-cache .
          ruff format --check --no-cache .
          touch $out
        '';
      });
    };
}
