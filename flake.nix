{
  description = "nix-cache-action: build flake outputs, account for every cache hit and miss, check reproducibility";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      package = pkgs: pkgs.python3Packages.buildPythonApplication {
        pname = "nix-cache-action";
        version = "0.1.0";
        pyproject = true;
        src = self;
        build-system = [ pkgs.python3Packages.setuptools ];
        dependencies = with pkgs.python3Packages; [ jq tenacity pygithub ];
        nativeCheckInputs = with pkgs.python3Packages; [ pytest pytest-httpserver cmarkgfm ];
        # The pure tier only: the other tiers need Nix, npm packages and a runner.
        checkPhase = ''
          runHook preCheck
          pytest tests/unit -q -p no:cacheprovider
          runHook postCheck
        '';
        meta.mainProgram = "nix-cache-action";
      };
    in
    {
      packages = forAll (pkgs: rec {
        nix-cache-action = package pkgs;
        default = nix-cache-action;
      });

      apps = forAll (pkgs: {
        default = {
          type = "app";
          program = nixpkgs.lib.getExe self.packages.${pkgs.system}.default;
        };
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (ps: with ps; [
              jq tenacity pygithub pytest pytest-httpserver cmarkgfm mypy
            ]))
            pkgs.ruff pkgs.jq pkgs.diffoscope pkgs.nodejs
          ];
        };
      });

      checks = forAll (pkgs: {
        package = self.packages.${pkgs.system}.default;
        lint = pkgs.runCommand "nix-cache-action-lint" { nativeBuildInputs = [ pkgs.ruff ]; } ''
          cd ${self}
          ruff check --no-cache .
          ruff format --check --no-cache .
          touch $out
        '';
      });
    };
}
