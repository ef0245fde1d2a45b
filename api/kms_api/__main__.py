"""`kubekms-api`: parse settings, then run one worker or a supervisor of N workers.

Security property: configuration errors are reported by name (never a secret's value) and exit
non-zero before the process writes anything.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Sequence

from kms_api.settings import load_settings
from kms_core.errors import ConfigError

log = logging.getLogger("kubekms.api")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        print(f"kubekms-api: {exc}", file=sys.stderr)
        return 2
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before prometheus_client is imported, so workers share their counters.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kubekms-metrics-")
    from kms_api.http import server
    from kms_api.observe.logs import configure_logging

    configure_logging(settings.log_level)
    try:
        server.prepare_data_dir(settings)
    except (ConfigError, OSError) as exc:
        log.error("refusing to start", extra={"reason": str(exc)})
        return 2
    if settings.workers > 1:
        return server.supervise(settings)
    return server.run_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
