# HTTP API: the Node SDK used by tests/integration/test_sdk_node.py (installed from npm when missing).
SDK_NODE_DIR := tests/integration/sdk
SDK_NODE_STAMP := $(SDK_NODE_DIR)/node_modules/@infisical/sdk/package.json

$(SDK_NODE_STAMP): $(SDK_NODE_DIR)/package.json $(wildcard $(SDK_NODE_DIR)/package-lock.json)
	@command -v npm >/dev/null || { echo "npm is required for the Node SDK tests: sudo apt-get install -y nodejs npm"; exit 1; }
	cd $(SDK_NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: sdk-node
sdk-node: $(SDK_NODE_STAMP)

TEST_DEPS += sdk-node
